#!/usr/bin/env bash
# Install the Debian build dependencies (idempotent) and configure + build grpo_train.
#   scripts/setup.sh [build_dir]      (default: build)   env: GRPO_SKIP_APT=1 to skip apt-get
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"

# ---- packages (libopenblas0-pthread: without it LibTorch's matmuls fall back to reference BLAS, ~20x slower)
pkgs=(build-essential cmake ninja-build ccache pkg-config libtorch-dev libopenblas0-pthread
      nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev libpcre2-dev libutf8proc-dev
      libgtest-dev libsentencepiece-dev)
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

# ---- configure + build
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release ${GRPO_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$(nproc)"
