#!/usr/bin/env bash
# Peak RSS and step time of GRPO steps on a 38 M-parameter Qwen2 (hidden 768, 6 layers, random
# init, byte-level tokenizer), full fine-tuning against LoRA, side by side: each mode is one
# grpo_train process of 3 steps of the demo task (16 prompts x 8, 16 new tokens, beta 0.04);
# peak_mem_mb is the process's peak RSS after its last step (the same evaluation before training
# in both), step time the mean of steps 2-3.
#   bench/lora_memory.sh [build_dir] [lora_rank]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}" rank="${2:-16}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 768, "intermediate_size": 2048,
 "num_hidden_layers": 6, "num_attention_heads": 12, "num_key_value_heads": 4, "max_position_embeddings": 512,
 "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 256, "eos_token_id": 258,
 "torch_dtype": "float32"}
JSON
"$build/grpo_sft" "$tmp/model" --init "$tmp/config.json" --data data/tiny-math/train.jsonl --set max_steps=1 --set eval_limit=1 --set max_new_tokens=8 \
  --set output_dir="$tmp/sft" > "$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; exit 1; }
grep -m1 initialised "$tmp/init.log"
run() {  # run NAME [--set ...]
  local name="$1"; shift
  "$build/grpo_train" "$tmp/model" -c configs/tiny_demo.yaml --set max_steps=3 --set eval_limit=4 --set eval_samples=0 \
    --set save_steps=0 --set output_dir="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { tail -5 "$tmp/$name.log"; exit 1; }
  python3 - "$tmp/$name" "$name" "$(grep -m1 -o 'memory estimate.*= ~[0-9.]* GB' "$tmp/$name.log" | sed 's/.*= ~/~/')" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
print(f"{sys.argv[2]}\t{max(x['peak_mem_mb'] for x in m):.0f}\t{sum(x['time_step_s'] for x in m[1:]) / (len(m) - 1):.2f}\t{sys.argv[3]}")
PY
}
{
  run full
  run "lora_r$rank" --set lora_rank="$rank" --set lora_alpha=$((2 * rank))
} > "$tmp/rows.tsv"
python3 - "$tmp/rows.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
base = float(rows[0][1])
print("| mode | peak RSS (MB) | vs full | s/step (steps 2-3) | --dry-run estimate |\n|---|---|---|---|---|")
for name, rss, t, est in rows:
    print(f"| {name} | {float(rss):.0f} | {float(rss) / base:.2f}x | {t} | {est} |")
PY

# Rollout: the adapter unmerged (packed GEMMs + the low-rank terms) against merged into W first
# (grpo_export), 64 sequences x 64 new tokens, median of 3 grpo_generate runs each.
"$build/grpo_export" "$tmp/model" --adapter "$tmp/lora_r$rank/checkpoint-3" --merge --out "$tmp/merged" > /dev/null
ids=$(python3 -c "print(';'.join(','.join(str(3 + (7 * i + j) % 250) for j in range(48)) for i in range(64)))")
gen() { local t0 t1; t0=$(date +%s.%N); "$build/grpo_generate" "$@" --prompt-ids "$ids" --max-new-tokens 64 --ignore-eos --greedy --device cpu > /dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
median() { sort -n | sed -n 2p; }
unmerged=$(for i in 1 2 3; do gen "$tmp/model" --adapter "$tmp/lora_r$rank/checkpoint-3"; done | median)
merged=$(for i in 1 2 3; do gen "$tmp/merged"; done | median)
base_t=$(for i in 1 2 3; do gen "$tmp/model"; done | median)
echo
echo "| rollout, 64 x (48 + 64) tokens, greedy | seconds (median of 3, incl. load) |"
echo "|---|---|"
echo "| base model | $base_t |"
echo "| adapter unmerged (packed GEMMs + low-rank terms) | $unmerged |"
echo "| adapter merged into W (grpo_export) | $merged |"
