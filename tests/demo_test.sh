#!/usr/bin/env bash
# Slow test (ctest -L slow): a shortened CPU demo. GRPO on the embedded tiny model for a few minutes
# must raise the rollout reward and the held-out sampled accuracy.   demo_test.sh <bin_dir>
set -euo pipefail
bin="$1"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$bin/grpo_train" data/tiny-model -c configs/tiny_demo.yaml --set output_dir="$out/run" \
  --set max_steps=40 --set eval_limit=200 --set save_steps=0 > "$out/log" 2>&1 || { tail -20 "$out/log"; exit 1; }
first=$(head -10 "$out/run/metrics.jsonl" | grep -o '"reward_mean":[-0-9.e]*' | cut -d: -f2 | awk '{s+=$1} END {print s/NR}')
last=$(tail -10 "$out/run/metrics.jsonl" | grep -o '"reward_mean":[-0-9.e]*' | cut -d: -f2 | awk '{s+=$1} END {print s/NR}')
flat=$(tr -d ' \n' < "$out/run/summary.json")
before=$(sed -E 's/.*"before":\{[^}]*"sampled":([0-9.e-]+).*/\1/' <<<"$flat")
after=$(sed -E 's/.*"after":\{[^}]*"sampled":([0-9.e-]+).*/\1/' <<<"$flat")
echo "rollout reward: first 10 steps $first, last 10 steps $last; sampled accuracy: before $before, after $after"
awk -v f="$first" -v l="$last" -v b="$before" -v a="$after" 'BEGIN { exit !(l > f + 0.05 && a > b + 0.05) }' \
  && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed: no improvement"; exit 1; }
