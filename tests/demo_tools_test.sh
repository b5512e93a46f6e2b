#!/usr/bin/env bash
# Slow test (ctest -L slow): a shortened tool demo (issue 34). GRPO with the calculator on
# data/tiny-tools-model for 20 steps must raise the rollouts' accuracy and their share of useful
# calls (a call whose result is the gold), and the run's logs must show the tool turns.
#   demo_tools_test.sh <bin_dir>
set -euo pipefail
bin="$1"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$bin/grpo_train" data/tiny-tools-model -c configs/tiny_tools_demo.yaml --set output_dir="$out/run" \
  --set max_steps=20 --set eval_limit=100 --set eval_samples=1 > "$out/log" 2>&1 || { tail -20 "$out/log"; exit 1; }
python3 - "$out/run" <<'PY'
import json, sys
run = sys.argv[1]
m = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
first = lambda k: sum(x[k] for x in m[:5]) / 5
last = lambda k: sum(x[k] for x in m[-5:]) / 5
acc0, acc1 = first("dynamic_sampling/accuracy_all"), last("dynamic_sampling/accuracy_all")
use0, use1 = first("tool_useful_frac"), last("tool_useful_frac")
print(f"rollout accuracy {acc0:.3f} -> {acc1:.3f}; useful-call share {use0:.3f} -> {use1:.3f}")
samples = [json.loads(l) for l in open(f"{run}/samples.jsonl")]
called = [c for s in samples for c in s["completions"] if c["tool_calls"] > 0]
ok = acc1 > acc0 + 0.15 and use1 > use0 + 0.15 and called and "<tool_response>" in called[0]["transcript"] \
    and [msg["role"] for msg in called[0]["messages"]][:2] == ["assistant", "tool"]
report = open(f"{run}/report.md").read()
ok = ok and "calls per answer" in report and "<tool_response>" in report
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
