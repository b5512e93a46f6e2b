#!/usr/bin/env bash
# Build and run a libFuzzer target with clang (Debian clang + libclang-rt-14-dev), ASan + UBSan.
#   scripts/fuzz.sh tokenizer|safetensors [seconds=180]
# Targets are built from the torch-free sources they need, so this takes seconds, not minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh tokenizer|safetensors [seconds]}"
secs="${2:-180}"
out=build-fuzz; mkdir -p "$out/corpus-$target"
case "$target" in
  tokenizer)   srcs=(src/tokenizer.cpp src/sentencepiece.cpp src/common.cpp); libs=(-lpcre2-8 -lutf8proc -ldl -lpthread)
               cp -n tests/data/qwen2.5/corpus.jsonl "$out/corpus-$target/seed.txt" 2>/dev/null || true ;;
  safetensors) srcs=(src/safetensors.cpp src/common.cpp); libs=(-lpthread) ;;
  *) echo "unknown target $target"; exit 2 ;;
esac
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude)
clang++ "${flags[@]}" "tests/fuzz/fuzz_$target.cpp" "${srcs[@]}" -o "$out/fuzz_$target" "${libs[@]}" -lstdc++
GRPO_SOURCE_DIR="$PWD" "$out/fuzz_$target" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
  "$out/corpus-$target"
