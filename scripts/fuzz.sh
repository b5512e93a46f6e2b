#!/usr/bin/env bash
# Build and run a libFuzzer target with clang (Debian clang + libclang-rt-14-dev), ASan + UBSan.
#   scripts/fuzz.sh TARGET [seconds=180] [jobs=1]
#   TARGET: tokenizer safetensors gsm8k offline reward config trainer_state jinja
# The targets reach only torch-free sources (compiled once into build-fuzz/core.a), so a build takes
# a minute, not a LibTorch build. Corpus: build-fuzz/corpus-TARGET, seeded from the committed
# tests/fuzz/corpus/TARGET; at the end the inputs that found new coverage are merged back into
# tests/fuzz/corpus/TARGET (commit them: every ctest run replays them, fuzz_replay_TARGET).
# Prints "fuzz TARGET: N runs in S s, 0 crashes" last; a crash leaves TARGET-crash-* in build-fuzz/
# (one prefix per target, so that one target's crash is not counted against the next) and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
targets="tokenizer safetensors gsm8k offline reward config trainer_state jinja"
target="${1:?usage: scripts/fuzz.sh TARGET [seconds] [jobs]; TARGET one of: $targets}"
[[ " $targets " == *" $target "* ]] || { echo "fuzz.sh: unknown target '$target'; expected one of: $targets" >&2; exit 2; }
secs="${2:-180}"; jobs="${3:-1}"
out=build-fuzz; mkdir -p "$out/obj"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Iinclude)
core=(common config data_files reward reward_program reward_rules safetensors sentencepiece tokenizer tokenizer_decoder tokenizer_normalizer tokenizer_pre_tokenizer tokenizer_util trainer_state
      config_aliases config_validate special_ids chat_template tool_calls line_program math_answer jinja/builtins jinja/eval jinja/lexer jinja/methods jinja/parser jinja/tests_globals jinja/value)
objs=()
for s in "${core[@]}"; do
  o="$out/obj/${s//\//_}.o"; objs+=("$o")
  if [[ ! -f "$o" || "src/$s.cpp" -nt "$o" || -n "$(find include src -newer "$o" -name '*.h' -print -quit)" ]]; then
    echo "fuzz.sh: compiling src/$s.cpp"
    clang++ "${flags[@]}" -c "src/$s.cpp" -o "$o"
  fi
done
clang++ "${flags[@]/fuzzer-no-link/fuzzer}" "tests/fuzz/fuzz_$target.cpp" "${objs[@]}" -o "$out/fuzz_$target" \
  -lyaml-cpp -lpcre2-8 -lutf8proc -ldl -lpthread -lstdc++
corpus="$out/corpus-$target"; seeds="tests/fuzz/corpus/$target"
mkdir -p "$corpus" "$seeds"
cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
log="$out/fuzz_$target.log"
fork=(); ((jobs > 1)) && fork=(-fork="$jobs")
# The tokenizer target: inputs up to 512 bytes (its bugs show in short texts; 4 KB inputs spent most
# of the time in BPE's heap under -fsanitize=fuzzer's comparison tracing), and no leak check: the
# word cache keeps what it learns by design (bounded), which made libFuzzer re-run nearly every
# input to look for a leak. 197 -> 679 runs/s on 2 cores (docs/reliability.md).
max_len=4096; leaks=1
[[ $target == tokenizer ]] && max_len=512 leaks=0
set +e
GRPO_SOURCE_DIR="$PWD" "$out/fuzz_$target" -max_total_time="$secs" -max_len="$max_len" -detect_leaks="$leaks" -print_final_stats=1 -timeout=10 \
  -rss_limit_mb=4096 -artifact_prefix="$out/$target-" "${fork[@]}" "$corpus" > "$log" 2>&1
rc=$?
set -e
runs=$( (grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" || true) | awk '{s+=$2} END {print s+0}')
if [[ "$runs" == 0 ]]; then runs=$( (grep -oE '^#[0-9]+' "$log" || true) | tail -1 | tr -d '#'); fi
crashes=$(find "$out" -maxdepth 1 \( -name "$target-crash-*" -o -name "$target-leak-*" -o -name "$target-timeout-*" -o -name "$target-oom-*" \) | wc -l)
# keep only the inputs that add coverage, as the committed seeds
"$out/fuzz_$target" -merge=1 "$seeds" "$corpus" > "$out/merge_$target.log" 2>&1 || true
echo "fuzz $target: ${runs:-?} runs in $secs s, $crashes crashes (rc $rc), $(ls "$seeds" | wc -l) seeds in $seeds; log $log"
[[ $rc == 0 && $crashes == 0 ]]
