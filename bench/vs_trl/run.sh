#!/usr/bin/env bash
# Side by side with TRL's GRPOTrainer on this machine, in one run (docs/benchmarks.md, "Against
# TRL"). Both trainers load the same Hugging Face model directory, the same JSONL data, our YAML
# config (trl_side.py maps every key to its GRPOConfig name and refuses one it cannot honour), the
# same ChatML prompt text and the same correctness reward, on the CPU with the same thread count.
#   1. speed: seconds per step split into generation (sampling + rewards) and update, tokens/s of
#      each, peak RSS and start-up (process start -> first step), on the embedded tiny model (demo
#      config) and on a random Qwen2 with the real 151,936-id vocabulary (~42 M params,
#      bench/vs_trl/mid.yaml); medians over the steps after the first.
#   2. learning: the demo task (configs/tiny_demo.yaml, 80 steps) from the same initial model with
#      two seeds each; every final model judged by the same evaluator (grpo_eval: 500 questions,
#      greedy + 2 samples each at temperature 1, the same draws for every model).
#   bench/vs_trl/run.sh [build_dir=build-pip] [threads=2]   (the venv comes from scripts/venv.sh; a
#   missing build-pip/ is built by scripts/setup.sh --torch pip)
# Env: STEPS_TINY (6), STEPS_MID (4), LEARN_STEPS (80), SEEDS ("42 7"), SKIP_SPEED=1, SKIP_LEARN=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build-pip}"
threads="${2:-2}"
py="$(scripts/venv.sh | tail -1)"
# A clean clone: build the pip leg first (the venv's torch, as TRL uses).
[[ -x "$build/grpo_train" ]] || { [[ "$build" == build-pip ]] && scripts/setup.sh --torch pip > /dev/null; } ||
  { echo "run.sh: no $build/grpo_train; build it first (scripts/setup.sh)" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
side=bench/vs_trl/trl_side.py
echo "# $(date -u +%F), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $threads threads each, build $build: $("$build"/grpo_train --version)"
"$py" -c 'import trl, transformers, torch; print(f"# trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")'
echo "# command: bench/vs_trl/run.sh $build $threads"

"$py" "$side" model "$tmp/tiny" --from data/tiny-model > /dev/null
"$py" "$side" model "$tmp/mid" --qwen-vocab tests/data/qwen2.5/tokenizer.json > /dev/null 2>&1

# ---- 1. speed
# median over steps 2.. of a JSONL field list -> "gen update gen_tokens update_tokens"
medians() {  # file kind(ours|trl)
  "$py" - "$1" "$2" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]
if sys.argv[2] == "ours":
    rows = [{"gen_s": r["time_rollout_s"], "update_s": r["time_update_s"],
             "gen_tokens": r["rollout_tokens_per_s"] * r["time_rollout_s"],
             "update_tokens": r["update_tokens_per_s"] * r["time_update_s"]} for r in rows]
m = {k: statistics.median(r[k] for r in rows) for k in ("gen_s", "update_s", "gen_tokens", "update_tokens")}
print(m["gen_s"], m["update_s"], m["gen_tokens"], m["update_tokens"])
EOF
}
field() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# TRL has no dynamic sampling: both sides run the demo config without it.
same=(--set dynamic_sampling=false)

if [[ "${SKIP_SPEED:-0}" != 1 ]]; then

echo
echo "| model | trainer | s/step | generation s | update s | generation tok/s | update tok/s | peak RSS MiB | start-up s | TRL / ours (step, RSS) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for m in tiny mid; do
  if [[ $m == tiny ]]; then
    cfg=configs/tiny_demo.yaml steps="${STEPS_TINY:-6}"
    extra=(--set eval_limit=1 --set eval_samples=0 --set save_steps=0 --set log_samples_every=0)
  else
    cfg=bench/vs_trl/mid.yaml steps="${STEPS_MID:-4}" extra=()
  fi
  "$py" "$side" measure "$tmp/ours_$m.json" -- "$build"/grpo_train "$tmp/$m" -c "$cfg" --set max_steps="$steps" \
    --set output_dir="$tmp/ours_$m" "${same[@]}" "${extra[@]}"
  "$py" "$side" measure "$tmp/trl_$m.json" -- "$py" "$side" train "$tmp/$m" "$cfg" "$tmp/trl_$m" --set max_steps="$steps" "${same[@]}"
  read -r og ou ogt out <<< "$(medians "$tmp/ours_$m/metrics.jsonl" ours)"
  read -r tg tu tgt tut <<< "$(medians "$tmp/trl_$m/trl_steps.jsonl" trl)"
  ors="$(field "$tmp/ours_$m.json" peak_rss_mib)" trs="$(field "$tmp/trl_$m.json" peak_rss_mib)"
  osu="$(field "$tmp/ours_$m.json" startup_s)" tsu="$(field "$tmp/trl_$m.json" startup_s)"
  name="$([[ $m == tiny ]] && echo "tiny (0.82 M, vocab 259, demo config)" || echo "random Qwen2 (41.8 M, vocab 151,936, mid.yaml)")"
  awk -v n="$name" -v og="$og" -v ou="$ou" -v ogt="$ogt" -v out="$out" -v tg="$tg" -v tu="$tu" -v tgt="$tgt" -v tut="$tut" \
      -v ors="$ors" -v trs="$trs" -v osu="$osu" -v tsu="$tsu" 'BEGIN{
    printf "| %s | grpo_train | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %.2f | **%.2fx**, **%.2fx** |\n", n, og+ou, og, ou, ogt/og, out/ou, ors, osu, (tg+tu)/(og+ou), trs/ors;
    printf "| | TRL GRPOTrainer | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %.2f | |\n", tg+tu, tg, tu, tgt/tg, tut/tu, trs, tsu}'
done
fi

[[ "${SKIP_LEARN:-0}" == 1 ]] && exit 0

# ---- 2. learning
steps="${LEARN_STEPS:-80}"
judge() {  # model dir -> "greedy sampled" in percent
  "$build"/grpo_eval "$1" -c configs/tiny_demo.yaml --limit 500 --samples 2 2>/dev/null | tail -1 |
    "$py" -c 'import json,sys; r=json.load(sys.stdin); print("%.1f %.1f" % (100 * r["greedy_strict"], 100 * r["sampled"]))'
}
read -r bg bs <<< "$(judge "$tmp/tiny")"
echo
echo "Demo task, $steps steps from the same initial model (before: greedy $bg%, sampled $bs%), judged by grpo_eval (500 questions, greedy + 2 samples each):"
echo
echo "| seed | trainer | wall s | greedy after | sampled after | sampled gain |"
echo "|---|---|---|---|---|---|"
for seed in ${SEEDS:-42 7}; do
  "$py" "$side" measure "$tmp/learn_ours_$seed.json" -- "$build"/grpo_train "$tmp/tiny" -c configs/tiny_demo.yaml \
    --set seed="$seed" --set max_steps="$steps" --set save_steps="$steps" --set eval_limit=1 --set eval_samples=0 \
    --set output_dir="$tmp/learn_ours_$seed" "${same[@]}"
  "$py" "$side" measure "$tmp/learn_trl_$seed.json" -- "$py" "$side" train "$tmp/tiny" configs/tiny_demo.yaml \
    "$tmp/learn_trl_$seed" --save --set seed="$seed" --set max_steps="$steps" "${same[@]}"
  for t in ours trl; do
    read -r g s <<< "$(judge "$tmp/learn_${t}_$seed/checkpoint-$steps")"
    w="$(field "$tmp/learn_${t}_$seed.json" wall_s)"
    awk -v seed="$seed" -v t="$([[ $t == ours ]] && echo grpo_train || echo "TRL GRPOTrainer")" -v w="$w" -v g="$g" -v s="$s" -v bs="$bs" \
      'BEGIN{printf "| %s | %s | %.0f | %.1f%% | %.1f%% | %+.1f |\n", seed, t, w, g, s, s - bs}'
  done
done
