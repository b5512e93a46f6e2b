#!/usr/bin/env bash
# Build grpo_train against a CUDA LibTorch 2.x with no network: the pip `torch` of this host gives
# LibTorch (torch.utils.cmake_prefix_path); the other dependencies come from the .deb files that
# scripts/offline_deps.sh downloaded, unpacked into a local prefix (no root, nothing installed).
#   scripts/build_cuda.sh [deps_dir=.deps] [build_dir=build-pip]
# Env: PYTHON (default python3), TORCH_PREFIX (override the LibTorch cmake path).
set -euo pipefail
cd "$(dirname "$0")/.."
deps="${1:-.deps}" build="${2:-build-pip}"
mkdir -p "$deps"; prefix="$(cd "$deps" && pwd)/prefix"
torch_prefix="${TORCH_PREFIX:-$(${PYTHON:-python3} -c 'import torch; print(torch.utils.cmake_prefix_path)')}"
if [[ ! -d "$prefix/usr" ]]; then
  ls "$deps"/*.deb >/dev/null 2>&1 || { echo "no .deb files in $deps: run scripts/offline_deps.sh on a connected Debian 12 box"; exit 1; }
  for f in "$deps"/*.deb; do dpkg -x "$f" "$prefix"; done
fi
lib="$prefix/usr/lib/x86_64-linux-gnu"
# The .pc files say prefix=/usr: the sysroot maps that into our prefix.
export PKG_CONFIG_PATH="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$prefix"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$lib/cmake;$prefix/usr/share/cmake;$prefix/usr/lib/cmake;$torch_prefix" \
  -DCMAKE_BUILD_RPATH="$lib" ${GRPO_CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"
echo "built in $build; run the tests with: (cd $build && LD_LIBRARY_PATH=$lib ctest -LE slow)"
