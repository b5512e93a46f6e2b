#!/usr/bin/env bash
# Setup, build and run the default test suite (every label except `slow`).
#   scripts/test.sh [extra ctest args]      e.g. scripts/test.sh -L slow   for the slow tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
if (($#)); then
  ctest --output-on-failure "$@"
else
  ctest --output-on-failure -LE slow -j "$(nproc)"
fi
