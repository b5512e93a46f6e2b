#!/usr/bin/env bash
# The tool demo over several seeds (issue 34): GRPO with the calculator (configs/tiny_tools_demo.yaml)
# on data/tiny-tools-model, then a table of greedy and sampled accuracy, calls per answer and the
# share of answers with a useful call (its result was the gold), before and after, with the mean
# change over the seeds and its 95% t interval; then rollout model-tokens/s with and without tools
# (the same model and schedule, `tools: []` on the other side), 3 runs per side alternating,
# median and range.     bench/tools_demo.sh [build_dir] [seeds...]      (~4 min per seed on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"; shift || true
seeds=("${@:-1 2 3 4 5}"); seeds=(${seeds[@]})
out=$(mktemp -d /tmp/tools-demo.XXXXXX)
for s in "${seeds[@]}"; do
  "$build/grpo_train" data/tiny-tools-model -c configs/tiny_tools_demo.yaml --set seed="$s" --set output_dir="$out/seed$s" \
    > "$out/seed$s.log" 2>&1 || { tail -20 "$out/seed$s.log"; exit 1; }
  echo "seed $s done"
done
for i in 1 2 3; do
  for side in tools plain; do
    extra=(); [ "$side" = plain ] && extra=(--set 'tools=[]')
    "$build/grpo_train" data/tiny-tools-model -c configs/tiny_tools_demo.yaml --set max_steps=10 --set eval_limit=1 \
      --set eval_samples=0 --set dynamic_sampling=false --set output_dir="$out/speed-$side-$i" "${extra[@]}" > "$out/speed-$side-$i.log" 2>&1
  done
done
python3 - "$out" "${seeds[@]}" <<'PY'
import json, math, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
rows = []
print("| seed | greedy before | greedy after | sampled before | sampled after | calls/answer before | after | useful calls before | after |")
print("|---|---|---|---|---|---|---|---|---|")
for s in seeds:
    sm = json.load(open(f"{out}/seed{s}/summary.json"))
    b, a = sm["before"], sm["after"]
    rows.append((b, a))
    print(f"| {s} | {100*b['greedy_strict']:.1f}% | {100*a['greedy_strict']:.1f}% | {100*b['sampled']:.1f}% | {100*a['sampled']:.1f}% "
          f"| {b['tool_calls_mean']:.2f} | {a['tool_calls_mean']:.2f} | {100*b['tool_useful_frac']:.1f}% | {100*a['tool_useful_frac']:.1f}% |")
def change(key, scale=100):
    d = [scale * (a[key] - b[key]) for b, a in rows]
    m = statistics.mean(d)
    if len(d) < 2:
        return f"{m:+.2f}"
    h = T95[len(d) - 1] * statistics.stdev(d) / math.sqrt(len(d))
    return f"{m:+.2f} (sd {statistics.stdev(d):.2f}, 95% interval [{m - h:+.2f}, {m + h:+.2f}])"
print()
print(f"Over {len(seeds)} seeds, after - before (points; calls per answer unscaled):")
for key, scale in [("greedy_strict", 100), ("sampled", 100), ("tool_useful_frac", 100), ("tool_calls_mean", 1)]:
    print(f"- {key}: {change(key, scale)}")
print()
def speed(side):
    v = []
    for i in (1, 2, 3):
        m = [json.loads(l) for l in open(f"{out}/speed-{side}-{i}/metrics.jsonl")][1:]  # step 1 warms up
        v.append(statistics.median(x["rollout_tokens_per_s"] for x in m))
    return v
t, p = speed("tools"), speed("plain")
print("| rollout model tokens/s (median of steps 2-10, 3 runs) | median | range |")
print("|---|---|---|")
print(f"| with the calculator | {statistics.median(t):.0f} | {min(t):.0f} - {max(t):.0f} |")
print(f"| without tools | {statistics.median(p):.0f} | {min(p):.0f} - {max(p):.0f} |")
print(f"| ratio with / without | {statistics.median(t) / statistics.median(p):.2f} | |")
PY
echo "runs in $out"
