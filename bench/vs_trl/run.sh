#!/usr/bin/env bash
# Side by side with TRL's GRPOTrainer on this machine (docs/benchmarks.md, "Against TRL"). Both
# trainers load the same Hugging Face model directory, the same JSONL data, our YAML config
# (trl_side.py maps every key to its GRPOConfig name and refuses one it cannot honour), the same
# ChatML prompt text, the same correctness reward and our learning-rate schedule, on the CPU with
# the same thread count and the same malloc settings (ours sets them with mallopt, TRL's Python
# gets them as GLIBC_TUNABLES). TRL has no dynamic sampling: both sides run without it.
#
# Sections (SECTIONS="speed learn replay", any subset):
#   speed   seconds per step, split into generation (sampling + rewards) and update (everything
#           else: reference log-probs, loss, backward, clipping, optimizer, scheduler, zero_grad),
#           tokens/s, peak RSS, RSS at the first step, start-up; RUNS runs per side, alternating
#           ours / TRL, medians over the steps after the first; median and range over the runs.
#           Workloads: the embedded tiny model (demo config) at grad_accum 1 and 4; a random Qwen2
#           with the real 151,936-id vocabulary (bench/vs_trl/mid.yaml); with REALISTIC=1 a
#           Qwen2.5-0.5B-shaped random model (bench/vs_trl/realistic.yaml, 128 new tokens). On 2
#           cores a step takes ~25 s / ~95 s (ours / TRL) on mid and ~2 / ~3.3 minutes on the 0.5B
#           shape: WORKLOADS="mid 1" RUNS=3 STEPS_MID=11 takes ~70 minutes, WORKLOADS="real 1"
#           RUNS=1 STEPS_REAL=4 ~25 (docs/benchmarks.md, 2026-12-07).
#   learn   the demo task (configs/tiny_demo.yaml, LEARN_STEPS steps) from the same initial model,
#           for each seed: ours writes its prompt order (--dump-rollouts), TRL trains on the same
#           prompts in the same order (asserted token for token, and the stop ids); every final
#           model and the untrained model as TRL saves it judged by grpo_eval (500 questions, greedy
#           + 2 samples each at T = 1, the same draws for every model); then mean, median, std,
#           collapses (sampled after < before + 15 points) and Welch's t-test with its 95% interval.
#   replay  one run of ours (REPLAY_STEPS, every checkpoint kept), then TRL fed our completions of
#           every step: parameters, lr, grad norm, loss, KL and reward compared after every step.
#   bench/vs_trl/run.sh [build_dir=build-pip] [threads=2]   (venv from scripts/venv.sh; a missing
#   build-pip/ is built by scripts/setup.sh --torch pip)
# Env: RUNS (3), STEPS_TINY (21), STEPS_MID (21), STEPS_REAL (6), LEARN_STEPS (80),
#      SEEDS (42 7 1 2 3 4 5 6 8 9), REPLAY_STEPS (80), RESULTS (a directory that keeps the raw
#      per-run files; default a temporary one), SECTIONS, REALISTIC, WORKLOADS ("tiny 1,tiny 4,mid 1":
#      model and grad_accum pairs of the speed section).
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build-pip}"
threads="${2:-2}"
py="$(scripts/venv.sh | tail -1)"
# A clean clone: build the pip leg first (the venv's torch, as TRL uses).
[[ -x "$build/grpo_train" ]] || { [[ "$build" == build-pip ]] && scripts/setup.sh --torch pip > /dev/null; } ||
  { echo "run.sh: no $build/grpo_train; build it first (scripts/setup.sh)" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
res="${RESULTS:-$tmp/results}"; mkdir -p "$res"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
# grpo_train's mallopt (src/base/device.cpp: init_runtime), for TRL's process
trl_env=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864)
side=bench/vs_trl/trl_side.py
sections="${SECTIONS:-speed learn replay}"
echo "# $(date -u +%F), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $threads threads each, build $build: $("$build"/grpo_train --version)"
"$py" -c 'import trl, transformers, torch; print(f"# trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")'
echo "# command: SECTIONS=\"$sections\" bench/vs_trl/run.sh $build $threads; raw files in $res"

# The tiny model serves every section; the random 152K-vocabulary ones only the speed workloads
# that name them (made on first use).
"$py" "$side" model "$tmp/tiny" --from data/tiny-model > /dev/null
make_model() {  # mid | real
  [[ -d "$tmp/$1" ]] && return
  "$py" "$side" model "$tmp/$1" --qwen-vocab tests/data/qwen2.5/tokenizer.json \
    --shape "$([[ $1 == mid ]] && echo mid || echo qwen2.5-0.5b)" > /dev/null 2>&1
}
field() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# ---------------------------------------------------------------------------------------------
# 1. speed
if [[ " $sections " == *" speed "* ]]; then
  echo
  echo "Speed: ${RUNS:-3} runs per side, alternating; each run's figure is its median over the steps after the first;"
  echo "the table gives the median over runs and [min, max]."
  echo
  IFS=, read -ra workloads <<< "${WORKLOADS:-tiny 1,tiny 4,mid 1}"
  [[ "${REALISTIC:-0}" == 1 ]] && workloads+=("real 1")
  for w in "${workloads[@]}"; do
    read -r m K <<< "$w"
    case $m in
      tiny) cfg=configs/tiny_demo.yaml steps="${STEPS_TINY:-21}"
            extra=(--set eval_limit=1 --set eval_samples=0 --set save_steps=0 --set log_samples_every=0) ;;
      mid) cfg=bench/vs_trl/mid.yaml steps="${STEPS_MID:-21}" extra=(); make_model mid ;;
      real) cfg=bench/vs_trl/realistic.yaml steps="${STEPS_REAL:-6}" extra=(); make_model real ;;
    esac
    for ((r = 1; r <= ${RUNS:-3}; ++r)); do
      sets=(--set max_steps="$steps" --set grad_accum="$K" --set dynamic_sampling=false)
      "$py" "$side" measure "$res/speed_${m}_k${K}_ours_$r.json" -- "$build"/grpo_train "$tmp/$m" -c "$cfg" "${sets[@]}" \
        --set output_dir="$tmp/ours_${m}_${K}_$r" "${extra[@]}"
      cp "$tmp/ours_${m}_${K}_$r/metrics.jsonl" "$res/speed_${m}_k${K}_ours_$r.metrics.jsonl"
      "$py" "$side" measure "$res/speed_${m}_k${K}_trl_$r.json" -- "${trl_env[@]}" "$py" "$side" train "$tmp/$m" "$cfg" \
        "$tmp/trl_${m}_${K}_$r" "${sets[@]}"
      cp "$tmp/trl_${m}_${K}_$r/trl_steps.jsonl" "$res/speed_${m}_k${K}_trl_$r.steps.jsonl"
      rm -rf "$tmp/ours_${m}_${K}_$r" "$tmp/trl_${m}_${K}_$r"
    done
  done
  "$py" "$side" speed-table "$res" "${RUNS:-3}" "${workloads[@]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. learning
judge() {  # model dir -> "greedy sampled" in percent
  "$build"/grpo_eval "$1" -c configs/tiny_demo.yaml --limit 500 --samples 2 2>/dev/null | tail -1 |
    "$py" -c 'import json,sys; r=json.load(sys.stdin); print("%.1f %.1f" % (100 * r["greedy_strict"], 100 * r["sampled"]))'
}
if [[ " $sections " == *" learn "* ]]; then
  steps="${LEARN_STEPS:-80}"
  read -r bg bs <<< "$(judge "$tmp/tiny")"
  "$py" "$side" save-untrained "$tmp/tiny" "$tmp/tiny_trl_saved"
  read -r tbg tbs <<< "$(judge "$tmp/tiny_trl_saved")"
  echo "before $bg $bs ours_dir" > "$res/learn_before.txt"
  echo "before $tbg $tbs trl_saved" >> "$res/learn_before.txt"
  echo
  echo "Learning, $steps steps of the demo task: before, greedy $bg% / sampled $bs% (the untrained model as TRL saves it: $tbg% / $tbs%)"
  for seed in ${SEEDS:-42 7 1 2 3 4 5 6 8 9}; do
    # TRL samples from its own model (no vLLM): no sampler correction on either side
    sets=(--set seed="$seed" --set max_steps="$steps" --set dynamic_sampling=false --set vllm_importance_sampling_correction=false)
    "$py" "$side" measure "$tmp/learn_ours_$seed.json" -- "$build"/grpo_train "$tmp/tiny" -c configs/tiny_demo.yaml "${sets[@]}" \
      --set save_steps="$steps" --set eval_limit=1 --set eval_samples=0 --set output_dir="$tmp/learn_ours_$seed" \
      --dump-rollouts "$tmp/learn_ours_$seed.rollouts.jsonl"
    "$py" "$side" measure "$tmp/learn_trl_$seed.json" -- "${trl_env[@]}" "$py" "$side" train "$tmp/tiny" configs/tiny_demo.yaml \
      "$tmp/learn_trl_$seed" --save --order "$tmp/learn_ours_$seed.rollouts.jsonl" "${sets[@]}"
    for t in ours trl; do
      read -r g s <<< "$(judge "$tmp/learn_${t}_$seed/checkpoint-$steps")"
      echo "$seed $t $g $s $(field "$tmp/learn_${t}_$seed.json" wall_s)" | tee -a "$res/learn.txt"
    done
    cp "$tmp/learn_ours_$seed/metrics.jsonl" "$res/learn_ours_$seed.metrics.jsonl"
    cp "$tmp/learn_trl_$seed/trl_steps.jsonl" "$res/learn_trl_$seed.steps.jsonl"
    rm -rf "$tmp/learn_ours_$seed" "$tmp/learn_trl_$seed"
  done
  "$py" "$side" learn-table "$res/learn.txt" "$bs" "$res"
fi

# ---------------------------------------------------------------------------------------------
# 3. replay: TRL fed our completions, step by step
if [[ " $sections " == *" replay "* ]]; then
  steps="${REPLAY_STEPS:-80}"
  # TRL samples from its model (no vLLM): no sampler correction on either side
  sets=(--set max_steps="$steps" --set dynamic_sampling=false --set vllm_importance_sampling_correction=false)
  "$build"/grpo_train "$tmp/tiny" -c configs/tiny_demo.yaml "${sets[@]}" --set save_steps=1 --set save_total_limit=0 \
    --set eval_limit=1 --set eval_samples=0 --set output_dir="$tmp/replay_ours" --dump-rollouts "$tmp/replay.rollouts.jsonl" > /dev/null
  "${trl_env[@]}" "$py" "$side" train "$tmp/tiny" configs/tiny_demo.yaml "$tmp/replay_trl" --replay "$tmp/replay.rollouts.jsonl" \
    --compare-to "$tmp/replay_ours" "${sets[@]}" > "$res/replay_trl.log" 2>&1
  cp "$tmp/replay_trl/replay.jsonl" "$res/replay.jsonl"
  "$py" "$side" replay-table "$res/replay.jsonl"
fi
