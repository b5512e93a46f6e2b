#!/usr/bin/env bash
# Setup, build, then run the main job. Until the embedded tiny model lands (issue #8) the model is a
# tiny *random* Qwen2 generated here (it cannot learn GSM8K): the demo validates the GSM8K setup
# with --dry-run, then runs 6 real GRPO steps to show the loop, the logs, the checkpoints and the
# report (build/demo-run/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
model=build/demo-model
rm -rf "$model" build/demo-run
build/tests/make_test_model "$model" tiny
build/grpo_train "$model" -c configs/gsm8k_qwen2.5_0.5b.yaml --set device=cpu --set dtype=float32 --dry-run
build/grpo_train "$model" --set output_dir=build/demo-run --set max_steps=6 --set prompts_per_step=2 \
  --set group_size=4 --set max_new_tokens=16 --set eval_limit=8 --set eval_every=3 --set save_steps=3 \
  --set log_samples_every=3 --set reward_weights.length=1 --set length_target=8 --set learning_rate=1e-3 "$@"
echo "Report: build/demo-run/report.md"
