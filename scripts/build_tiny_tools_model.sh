#!/usr/bin/env bash
# Rebuild the tool demo's model (data/tiny-tools-model) and task (data/tiny-mult) from scratch with
# the project's own tools, deterministically from the seeds below (issue 34):
#   1. grpo_synth --multiply: products of two 2-digit numbers ("What is 47 * 83?"), train/test, and
#      sft.jsonl of calculator transcripts as a rollout writes them: 35% call it right, 15% call it
#      with a wrong factor, 50% guess without a call (right 1 time in 10)
#   2. grpo_sft --init with tools: a random 0.8M-parameter Qwen2 whose byte-level tokenizer has
#      <tool_call> and </tool_call> as tokens and 300 BPE merges (learned on the data and the tools'
#      system turn), then SFT on the transcripts (the tool responses are context, never trained):
#      the model learns the call format and to copy the result, and calls only part of the time.
# Takes ~15 minutes on 2 cores.   scripts/build_tiny_tools_model.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$build/grpo_synth" --out data/tiny-mult --seed 3 --n-train 4000 --n-test 300 --multiply --tool-good 0.35 --tool-bad 0.15
"$build/grpo_sft" "$tmp/init" --init configs/tiny_tools_model.json --data data/tiny-mult/sft.jsonl --merges 300 \
  --set output_dir="$tmp/sft" --set seed=42 --set max_steps=1000 --set prompts_per_step=32 --set learning_rate=3e-3 \
  --set warmup_steps=20 --set lr_schedule=cosine --set system_prompt=Solve. --set max_new_tokens=48 \
  --set 'tools=["calculator"]' --set max_prompt_tokens=400 \
  --set eval_data=data/tiny-mult/test.jsonl --set eval_limit=300 --set eval_samples=0 --set save_steps=0
rm -rf data/tiny-tools-model && mkdir -p data/tiny-tools-model
ck=$(ls -d "$tmp/sft"/checkpoint-* | sort -t- -k2 -n | tail -1)
cp "$ck"/{config.json,model.safetensors,tokenizer.json,generation_config.json} data/tiny-tools-model/
echo "data/tiny-tools-model: $(du -sh data/tiny-tools-model | cut -f1)"
