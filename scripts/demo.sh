#!/usr/bin/env bash
# README command 1: setup + build, then GRPO on the embedded tiny model (data/tiny-model) with
# configs/tiny_demo.yaml on CPU. Ends with the report: runs/tiny-demo/report.md (before/after
# accuracy, curves, answers). Extra arguments go to grpo_train, e.g. --set seed=7.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPO_TARGETS=grpo_train scripts/setup.sh build  # the demo runs grpo_train alone: no tests, no benchmarks
out=$(mktemp -d /tmp/grpo-demo.XXXXXX)
build/grpo_train data/tiny-model -c configs/tiny_demo.yaml --set output_dir="$out" "$@"
rm -rf runs/tiny-demo && mkdir -p runs && mv "$out" runs/tiny-demo
echo
sed -n '/^## What changed/,/^## Algorithm/p' runs/tiny-demo/report.md | head -n -1
echo "Full report: runs/tiny-demo/report.md"
