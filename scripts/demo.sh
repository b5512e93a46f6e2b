#!/usr/bin/env bash
# Setup, build, then run the main job. Until the tiny embedded model lands (issue #8) this is a
# dry run of grpo_train on a stub model dir: config, data and statistics, no training.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
model_dir=$(mktemp -d); trap 'rm -rf "$model_dir"' EXIT
echo '{"model_type": "qwen2"}' > "$model_dir/config.json"
build/grpo_train "$model_dir" -c configs/gsm8k_qwen2.5_0.5b.yaml --dry-run "$@"
