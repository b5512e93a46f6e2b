#!/usr/bin/env bash
# Setup, build and run the default test suite (every label except `slow`), with one LibTorch.
#   scripts/test.sh [--torch debian|pip] [extra ctest args]
#     scripts/test.sh                   Debian's LibTorch 1.13, build/
#     scripts/test.sh --torch pip       pip torch 2.x (CUDA build) from .venv, build-pip/, with `interop`
#     scripts/test.sh -L slow           the slow tests
#     scripts/debian13.sh               Debian 13's LibTorch 2.6, build-deb13/, inside a trixie root
# Every test has a ctest timeout (tests/CMakeLists.txt); a hung test fails instead of blocking CI.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_args=() build_dir=build
if [[ "${1:-}" == --torch ]]; then
  torch_args=(--torch "${2:?--torch needs debian or pip}"); shift 2
  [[ "${torch_args[1]}" == pip ]] && build_dir=build-pip
fi
build_dir="${GRPO_BUILD_DIR:-$build_dir}"  # scripts/debian13.sh: build-deb13/
scripts/setup.sh "${torch_args[@]}" "$build_dir"
cd "$build_dir"
if (($#)); then
  ctest --output-on-failure --timeout 900 "$@"
else
  ctest --output-on-failure --timeout 900 -LE slow -j "$(nproc)"
fi
