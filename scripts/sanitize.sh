#!/usr/bin/env bash
# The unit suite (ctest -L unit: every GoogleTest and the fuzz-corpus replays) built with
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer at exit), against Debian's LibTorch.
#   scripts/sanitize.sh [ctest args...]        e.g. scripts/sanitize.sh -R Trainer
# gcc by default; GRPO_SAN_CXX=clang++ for clang. Any report fails the test that raised it
# (halt_on_error). LeakSanitizer suppressions: scripts/lsan.supp, LibTorch's own allocations only,
# each explained there. Build dir: build-asan (a full build: ~15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-asan
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="${GRPO_SAN_CXX:-g++}" \
    -DCMAKE_CXX_FLAGS="$san -O1 -g" -DCMAKE_EXE_LINKER_FLAGS="$san" -DGRPO_BUILD_BENCH=OFF
fi
cmake --build "$dir" -j "$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=1"
start=$SECONDS
set +e
ctest --test-dir "$dir" -L unit -j "$(nproc)" --timeout 1800 --output-on-failure "$@" > "$dir/sanitize.log" 2>&1
rc=$?
set -e
tail -5 "$dir/sanitize.log"
reports=$(grep -cE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$dir/sanitize.log" || true)
echo "sanitize: ctest rc $rc, $reports sanitizer reports, $((SECONDS - start)) s; log $dir/sanitize.log"
[[ $rc == 0 && $reports == 0 ]]
