#!/usr/bin/env bash
# Soak: grpo_train for STEPS steps (default 1000) on the embedded tiny model (data/tiny-model), a
# checkpoint every 100 steps (2 kept), an evaluation every 250, samples every 10: every file the
# trainer opens is opened many times. A sampler reads the process's /proc every 0.5 s: resident
# memory (VmRSS), open file descriptors and threads, with the step reached. Prints a table: peak
# RSS (the trainer's own peak_mem_mb, VmHWM on CPU) at step 50 and at the end, and the range of
# RSS, fds and threads after step 50. Goals (issue 18): peak RSS grows < 2% after step 50; fds and
# threads flat. Usage: bench/soak.sh [build_dir=build] [steps=1000] [grpo_train args...]
# (e.g. `--set device=cuda` on a GPU: peak_mem_mb is then the CUDA allocator's per-step peak).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build}"; steps="${2:-1000}"; shift $(( $# < 2 ? $# : 2 ))
out=$(mktemp -d /tmp/grpo-soak.XXXXXX)
"$bin/grpo_train" data/tiny-model -c configs/tiny_demo.yaml --set output_dir="$out/run" --set max_steps="$steps" \
  --set prompts_per_step=4 --set group_size=4 --set save_steps=100 --set save_total_limit=2 --set eval_every=250 \
  --set eval_limit=20 --set log_samples_every=10 "$@" > "$out/train.log" 2>&1 &
pid=$!
samples="$out/proc.tsv"
echo -e "t\tstep\trss_kb\tfds\tthreads" > "$samples"
start=$SECONDS
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  thr=$(awk '/^Threads/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  step=0; [[ -f "$out/run/metrics.jsonl" ]] && step=$(wc -l < "$out/run/metrics.jsonl")
  [[ -n "$rss" ]] && echo -e "$((SECONDS - start))\t$step\t$rss\t$fds\t$thr" >> "$samples"
  sleep 0.5
done
wait "$pid" || { echo "soak: grpo_train failed:"; tail -5 "$out/train.log"; exit 1; }
python3 - "$out" "$steps" <<'PY'
import json, sys
out, steps = sys.argv[1], int(sys.argv[2])
m = [json.loads(l) for l in open(out + "/run/metrics.jsonl")]
assert len(m) == steps, f"{len(m)} metric lines, expected {steps}"
peak50, peak_end = m[49]["peak_mem_mb"], m[-1]["peak_mem_mb"]
rows = [l.split("\t") for l in open(out + "/proc.tsv").read().split("\n")[1:] if l]
after = [(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows if int(r[1]) >= 50]
rss = [a[1] / 1024 for a in after]; fds = [a[2] for a in after]; thr = [a[3] for a in after]
growth = 100 * (peak_end - peak50) / peak50
print(f"soak: {steps} steps, {m[-1]['time_step_s']:.2f} s/step at the end, {len(after)} /proc samples after step 50")
print("| measure | at step 50 | at the end | growth | goal |")
print("|---|---|---|---|---|")
print(f"| peak RSS (peak_mem_mb) | {peak50:.1f} MB | {peak_end:.1f} MB | {growth:+.2f}% | < 2% |")
print(f"| RSS (VmRSS) after step 50, min .. max | {min(rss):.1f} MB | {max(rss):.1f} MB | {100 * (max(rss) - min(rss)) / min(rss):+.2f}% | |")
print(f"| open fds after step 50, min .. max | {min(fds)} | {max(fds)} | {max(fds) - min(fds):+d} | flat (+-2 while a file is open) |")
print(f"| threads after step 50, min .. max | {min(thr)} | {max(thr)} | {max(thr) - min(thr):+d} | flat |")
ok = growth < 2 and max(fds) - min(fds) <= 2 and max(thr) == min(thr)
print("soak:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
rc=$?
echo "logs: $out"
exit $rc
