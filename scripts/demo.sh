#!/usr/bin/env bash
# README command 1: setup + build, then GRPO on the embedded tiny model (data/tiny-model) with
# configs/tiny_demo.yaml on CPU. Ends with the report: runs/tiny-demo/report.md (before/after
# accuracy, curves, answers). Extra arguments go to grpo_train, e.g. --set seed=7.
# `scripts/demo.sh tools [...]`: the tool demo instead (issue 34): GRPO with the calculator on
# data/tiny-tools-model (configs/tiny_tools_demo.yaml), report in runs/tiny-tools-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
model=data/tiny-model config=configs/tiny_demo.yaml run=runs/tiny-demo
if [ "${1:-}" = tools ]; then
  shift
  model=data/tiny-tools-model config=configs/tiny_tools_demo.yaml run=runs/tiny-tools-demo
fi
GRPO_TARGETS=grpo_train scripts/setup.sh build  # the demo runs grpo_train alone: no tests, no benchmarks
out=$(mktemp -d /tmp/grpo-demo.XXXXXX)
build/grpo_train "$model" -c "$config" --set output_dir="$out" "$@"
rm -rf "$run" && mkdir -p runs && mv "$out" "$run"
echo
sed -n '/^## What changed/,/^## Algorithm/p' "$run/report.md" | head -n -1
echo "Full report: $run/report.md"
