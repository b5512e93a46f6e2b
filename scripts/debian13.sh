#!/usr/bin/env bash
# The Debian 13 (trixie) leg: the README's test command with Debian 13's own libtorch-dev 2.6 (CPU,
# built without libuv), in a trixie root made from Debian's packages by debootstrap, on any Debian
# host that can run it as root (CI's Debian 12 box).
#   scripts/debian13.sh [extra ctest args]     build-deb13/ in the checkout, from inside the root
# The root lives in $GRPO_TRIXIE_ROOT (default /var/cache/grpo_train/trixie) and is reused while its
# package list is unchanged (a stamp); ccache's directory is inside it, so a warm run rebuilds little.
# Cold: debootstrap + ~1.5 GB of packages; warm: the build and the tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"
root="${GRPO_TRIXIE_ROOT:-/var/cache/grpo_train/trixie}"
mirror="${GRPO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# setup.sh's packages, plus python3 for the cli tests' reward programs
pkgs="$(scripts/setup.sh --packages | tr ' ' ,),python3,ca-certificates"
stamp="$(echo "$pkgs $mirror" | sha256sum | cut -d' ' -f1)"
[[ $(id -u) == 0 ]] || { echo "debian13: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

# ---- the root (cached)
if [[ "$(cat "$root/.grpo-stamp" 2>/dev/null)" != "$stamp" ]]; then
  command -v debootstrap > /dev/null || { apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap > /dev/null; }
  t0=$SECONDS
  rm -rf "$root.tmp"; mkdir -p "$(dirname "$root")"
  echo "debian13: debootstrap trixie into $root (once per machine)"
  debootstrap --variant=minbase --include="$pkgs" trixie "$root.tmp" "$mirror" > "$root.log" 2>&1 ||
    { tail -20 "$root.log"; echo "debian13: debootstrap failed (log: $root.log)" >&2; exit 1; }
  rm -rf "$root"; mv "$root.tmp" "$root"
  echo "$stamp" > "$root/.grpo-stamp"
  echo "debian13: root ready in $((SECONDS - t0)) s"
fi

# ---- mounts: the checkout, /proc, /dev; undone whatever happens
mnt=("$root/src" "$root/proc" "$root/dev" "$root/dev/shm")
cleanup() { for ((i = ${#mnt[@]} - 1; i >= 0; --i)); do mountpoint -q "${mnt[i]}" && umount -l "${mnt[i]}"; done; return 0; }
trap cleanup EXIT
mkdir -p "${mnt[@]}"
cleanup
mount --bind "$src" "$root/src"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount -t tmpfs -o size=2g tmpfs "$root/dev/shm"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

echo "debian13: $(chroot "$root" dpkg-query -W -f '${Package} ${Version}' libtorch-dev), $(chroot "$root" sh -c '. /etc/os-release; echo $PRETTY_NAME')"
# A clean environment: nothing of the host's toolchain or Python leaks in.
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 CI="${CI:-}" \
  CCACHE_DIR=/root/.ccache GRPO_SKIP_APT=1 GRPO_BUILD_DIR=build-deb13 GRPO_CMAKE_ARGS="${GRPO_CMAKE_ARGS:-}" bash -c 'cd /src && scripts/test.sh "$@"' test.sh "$@"
