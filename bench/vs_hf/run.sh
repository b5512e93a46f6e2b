#!/usr/bin/env bash
# Side by side with the Hugging Face libraries on this machine, in one run (docs/benchmarks.md,
# "Against the Hugging Face stack"):
#   1. tokenizer: every GSM8K train+test question and answer with the Qwen2.5 tokenizer, ours
#      (grpo_tokenize --bench) vs HF `tokenizers` (Rust, encode_batch) at 1 thread and at all
#      threads; best of 3 warm passes each.
#   2. CPU decode: the same transformers-made random Qwen2 (small 1.3 M and mid 24.7 M params,
#      fp32), batch and lengths, ours (bench_decode, eager) vs transformers generate() with its KV
#      cache, all threads each.
#   bench/vs_hf/run.sh [build_dir=build]      (the venv comes from scripts/venv.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
py="$(scripts/venv.sh | tail -1)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
threads="$(nproc)"
echo "# $(date -u +%F), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), build $build: $("$build"/grpo_train --version)"
"$py" -c 'import tokenizers, transformers, torch; print(f"# tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")'

# ---- 1. tokenizer
tok=tests/data/qwen2.5/tokenizer.json
data=(data/gsm8k/train.jsonl data/gsm8k/test.jsonl)
"$py" -c 'import json,sys
for p in sys.argv[1:]:
    for l in open(p, encoding="utf-8"):
        e = json.loads(l); print(json.dumps(e["question"])); print(json.dumps(e["answer"]))' "${data[@]}" > "$tmp/texts.jsonl"
ours_tok() {  # threads -> best "tokens seconds" of 3 warm passes after one cold
  local best="" line
  for r in 0 1 2 3; do
    line="$("$build"/grpo_tokenize --tokenizer "$tok" --bench --threads "$1" < "$tmp/texts.jsonl" 2>&1 >/dev/null | tail -1)"
    ((r == 0)) && continue
    s="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<< "$line")"
    if [[ -z "$best" ]] || awk "BEGIN{exit !($s < ${best#* })}"; then best="$(sed -n 's/tokens=\([0-9]*\).*/\1/p' <<< "$line") $s"; fi
  done
  echo "$best"
}
echo
echo "| tokenizer | threads | texts | tokens | seconds | tokens/s | ours / HF |"
echo "|---|---|---|---|---|---|---|"
for t in 1 "$threads"; do
  read -r ot os <<< "$(ours_tok "$([[ $t == 1 ]] && echo 1 || echo 0)")"
  hf="$(RAYON_NUM_THREADS=$t "$py" bench/vs_hf/hf_side.py tokenize "$tok" "${data[@]}")"
  ht="$(sed -n 's/tokens=\([0-9]*\).*/\1/p' <<< "$hf")" hs="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<< "$hf")"
  n="$(wc -l < "$tmp/texts.jsonl")"
  [[ "$ot" == "$ht" ]] || echo "WARNING: token counts differ: ours $ot, HF $ht"
  awk -v t="$t" -v n="$n" -v ot="$ot" -v os="$os" -v ht="$ht" -v hs="$hs" 'BEGIN{
    printf "| ours (grpo_tokenize) | %s | %d | %d | %.3f | %.0f | **%.2fx** |\n", t, n, ot, os, ot/os, hs/os;
    printf "| HF tokenizers | %s | %d | %d | %.3f | %.0f | |\n", t, n, ht, hs, ht/hs}'
done

# ---- 2. CPU decode
ns=(4 16 64)
for size in small mid; do
  "$py" bench/vs_hf/hf_side.py make-model "$tmp/$size" --size "$size" > /dev/null 2>&1
  echo
  echo "CPU decode, $size model: $("$py" -c "import json;c=json.load(open('$tmp/$size/config.json'));print(f\"hidden {c['hidden_size']}, {c['num_hidden_layers']} layers, GQA {c['num_attention_heads']}/{c['num_key_value_heads']}, vocab {c['vocab_size']}\")"), fp32, prompt 32, 64 new tokens, greedy, no stop, $threads threads"
  OMP_NUM_THREADS=$threads "$build"/bench_decode --model "$tmp/$size" --device cpu --dtype float32 --n "$(IFS=,; echo "${ns[*]}")" \
    --prompt 32 --new 64 --modes eager --reps 3 > "$tmp/ours.txt"
  "$py" scripts/hf_reference.py bench-generate "$tmp/$size" --device cpu --dtype float32 --threads "$threads" \
    --n "${ns[@]}" --prompt 32 --new 64 --reps 3 > "$tmp/hf.txt" 2> /dev/null
  echo "| N | ours (bench_decode, eager) tokens/s | ms/step | transformers generate (sdpa, KV cache) tokens/s | ms/step | ours / generate |"
  echo "|---|---|---|---|---|---|"
  for n in "${ns[@]}"; do
    read -r o om <<< "$(awk -F'|' -v n="$n" '$2+0 == n && $3 ~ /eager/ {print $4+0, $5+0}' "$tmp/ours.txt")"
    read -r h hm <<< "$(awk -F'|' -v n="$n" '$2+0 == n {print $3+0, $4+0}' "$tmp/hf.txt")"
    awk -v n="$n" -v o="$o" -v om="$om" -v h="$h" -v hm="$hm" 'BEGIN{printf "| %d | %.0f | %.2f | %.0f | %.2f | **%.2fx** |\n", n, o, om, h, hm, o/h}'
  done
done
