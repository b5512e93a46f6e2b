#!/usr/bin/env bash
# Install the build dependencies (idempotent) and configure + build grpo_train.
#   scripts/setup.sh [--torch debian|pip] [build_dir]     (scripts/setup.sh --packages: the Debian packages)
#     debian (default): Debian's libtorch-dev 1.13 (CPU), into build/
#     pip:              the LibTorch inside the pinned pip torch 2.x of .venv (its CUDA build, as on
#                       GPU hosts; made by scripts/venv.sh), into build-pip/; GRPO_CUDA is on, every
#                       CUDA code path is compiled and linked, and the `interop` tests are enabled
# Env: GRPO_SKIP_APT=1 skips apt-get; GRPO_CMAKE_ARGS adds cmake arguments; GRPO_TARGETS builds only
# the targets it names (space-separated).
set -euo pipefail
cd "$(dirname "$0")/.."
# ---- packages (libopenblas0-pthread: without it LibTorch's matmuls fall back to reference BLAS, ~20x slower)
pkgs=(build-essential cmake ninja-build ccache pkg-config libtorch-dev libopenblas0-pthread
      nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libpcre2-dev libutf8proc-dev
      libgtest-dev libsentencepiece-dev libgloo-dev)
# `setup.sh --packages` prints them (scripts/debian13.sh installs the same list into its root)
if [[ "${1:-}" == --packages ]]; then echo "${pkgs[*]}"; exit 0; fi

torch_choice=debian
if [[ "${1:-}" == --torch ]]; then torch_choice="${2:?--torch needs debian or pip}"; shift 2; fi
case "$torch_choice" in
  debian) build_dir="${1:-build}" ;;
  pip) build_dir="${1:-build-pip}" ;;
  *) echo "setup: --torch must be debian or pip, found '$torch_choice'" >&2; exit 1 ;;
esac

if [[ "${GRPO_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""; [[ $(id -u) != 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# ---- LibTorch choice
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [[ "$torch_choice" == pip ]]; then
  python="$(scripts/venv.sh | tail -1)"
  # Torch_ROOT (not CMAKE_PREFIX_PATH) so that TorchConfig's find_library calls look in the pip
  # package first: with libtorch-dev installed they would otherwise pick /usr/lib's 1.13 libraries.
  torch_root="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
  cmake_args+=(-DTorch_ROOT="$torch_root" -DGRPO_PYTHON="$python")
fi

# ---- configure + build
# Paths relative to the checkout in ccache's hashes: a fresh clone elsewhere (CI) reuses the cache.
export CCACHE_BASEDIR="$PWD"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${gen[@]}" "${cmake_args[@]}" ${GRPO_CMAKE_ARGS:-}
fi
# GRPO_TARGETS: only these targets (scripts/demo.sh builds grpo_train alone, not the tests and benchmarks)
cmake --build "$build_dir" -j "$(nproc)" ${GRPO_TARGETS:+--target $GRPO_TARGETS}
