#!/usr/bin/env bash
# Rebuild the embedded tiny model (data/tiny-model) and its task (data/tiny-math) from scratch with
# the project's own tools, deterministically from the seeds below:
#   1. grpo_synth: the synthetic grade-school task, train/test, and an SFT copy with half-wrong labels
#   2. grpo_sft --init: a random 0.82M-parameter Qwen2 with a byte-level tokenizer (bytes + ChatML
#      specials; `--merges N` would add learned BPE merges), then a deliberately short SFT (400 steps)
#      on the noisy labels: the model learns the format and is only partly right (held-out: 65% greedy,
#      26% sampled at T=1), which leaves GRPO something to fix.
# Takes ~5 minutes on 2 cores.   scripts/build_tiny_model.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$build/grpo_synth" --out data/tiny-math --seed 1 --n-train 4000 --n-test 500 --max-number 9 --max-ops 1 --sft-noise 0.5
"$build/grpo_sft" "$tmp/init" --init configs/tiny_model.json --data data/tiny-math/sft.jsonl \
  --set output_dir="$tmp/sft" --set seed=42 --set max_steps=400 --set prompts_per_step=32 --set learning_rate=3e-3 \
  --set warmup_steps=20 --set lr_schedule=cosine --set system_prompt=Solve. --set max_new_tokens=24 \
  --set eval_data=data/tiny-math/test.jsonl --set eval_limit=500 --set eval_samples=2 --set save_steps=0
rm -rf data/tiny-model && mkdir -p data/tiny-model
ck=$(ls -d "$tmp/sft"/checkpoint-* | sort -t- -k2 -n | tail -1)
cp "$ck"/{config.json,model.safetensors,tokenizer.json,generation_config.json} data/tiny-model/
rm -f data/tiny-math/sft.jsonl.tmp.*
echo "data/tiny-model: $(du -sh data/tiny-model | cut -f1)"
