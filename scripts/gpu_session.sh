#!/usr/bin/env bash
# The GPU checks of issue 9 in a few commands, for a lent H100/H200 (CUDA, PyTorch 2.x + transformers
# in python3, no network). Each phase fits one 10-minute call; run them back to back so the machine
# stays warm and keeps build-cuda/ (a phase that finds no build, on a fresh machine, builds first).
# Results (markdown tables + logs) go to $OUT (default gpu-results/).
#   scripts/gpu_session.sh build    # unpack .deps (scripts/offline_deps.sh, carried), build against pip torch
#   scripts/gpu_session.sh test     # ctest (CUDA is the default device there) + device tests on cuda only
#   scripts/gpu_session.sh parity   # transformers models, logits and greedy parity (fp32 judged at 1e-4)
#   scripts/gpu_session.sh bench    # decode vs generate vs roofline, update MFU, one full GRPO step
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}" build="${BUILD:-build-cuda}" models="${MODELS:-/tmp/grpo-hf-models}"
mkdir -p "$out"
m15="$models/qwen2.5-1.5b-bf16"
run() { echo "+ $*" | tee -a "$out/commands.log"; "$@"; }
build_all() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/device.csv"
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' | tee -a "$out/device.csv"
  time (GRPO_CMAKE_ARGS="-DGRPO_BUILD_FUZZ=OFF ${GRPO_CMAKE_ARGS:-}" run scripts/build_cuda.sh .deps "$build") > "$out/build.log" 2>&1
  tail -5 "$out/build.log"; grep -m1 "grpo: CUDA build" "$out/build.log"
}

for phase in "$@"; do
  [[ "$phase" == build || -x "$build/tests/grpo_tests" ]] || { echo "no build in $build: building first"; build_all; }
  case "$phase" in
    build) build_all ;;
    test)
      (cd "$build" && run ctest -LE slow --output-on-failure -j 8) > "$out/ctest.log" 2>&1; tail -15 "$out/ctest.log"
      GRPO_TEST_DEVICES=cuda run "$build/tests/grpo_tests" --gtest_filter='Devices/*' > "$out/device_tests.log" 2>&1
      tail -3 "$out/device_tests.log"
      # End to end on the GPU: a short run with graph decode and sdpa, its TensorBoard file read by tensorboard.
      e2e=/tmp/grpo-e2e; rm -rf "$e2e"; run "$build/tests/make_test_model" "$e2e/model" tiny > /dev/null
      run "$build/grpo_train" "$e2e/model" --set max_steps=4 --set prompts_per_step=4 --set group_size=4 \
        --set max_new_tokens=48 --set eval_limit=16 --set decode_mode=cuda_graph --set attention=sdpa \
        --set output_dir="$e2e/run" > "$out/e2e.log" 2>&1; echo "grpo_train exit $?"; grep -E "^step|decode|Training" "$out/e2e.log" | tail -6
      python3 - "$e2e/run/tb" <<'PY' 2>&1 | tee -a "$out/e2e.log"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
tags = acc.Tags()["scalars"]
print(f"tensorboard read {len(tags)} scalar tags:", ", ".join(sorted(tags)[:8]), "...")
for t in ("reward_mean", "loss", "decode_new_shapes"):
    if t in tags: print(t, [(e.step, round(e.value, 4)) for e in acc.Scalars(t)])
PY
      # Data parallel (issue 21): world size 1 over NCCL, launched by the host's torchrun.
      run python3 -m torch.distributed.run --standalone --nproc_per_node=1 --no-python "$build/grpo_train" "$e2e/model" \
        --set max_steps=2 --set prompts_per_step=4 --set group_size=4 --set max_new_tokens=32 --set eval_limit=8 \
        --set output_dir="$e2e/nccl" > "$out/nccl.log" 2>&1; echo "torchrun nccl exit $?"
      grep -E "Data parallel|^step|Training completed|error" "$out/nccl.log" | tail -5
      # Soak on CUDA (issue 18): 300 steps, the allocator's per-step peak flat after step 50.
      run bench/soak.sh "$build" 300 --set device=cuda > "$out/soak_cuda.log" 2>&1; tail -9 "$out/soak_cuda.log"
      ;;
    parity)
      run python3 scripts/hf_reference.py make "$models" 2>&1 | tail -3
      run python3 scripts/hf_reference.py parity "$models" --bin "$build" 2>&1 | tee "$out/parity.md"
      # Qwen2, Qwen3 and Llama 3 (llama3 RoPE scaling) models made by transformers: ours on the GPU in
      # every decode mode against transformers' fp32 on the CPU (issue 33).
      GRPO_INTEROP_DEVICE=cuda GRPO_INTEROP_DECODE_MODES=eager,static,cuda_graph \
        run python3 tests/interop/test_transformers_models.py "$build" 2>&1 | grep -v "^Loading\|^Writing" | tee -a "$out/parity.md"
      ;;
    bench)
      [[ -d "$m15" ]] || run python3 scripts/hf_reference.py make "$models" | tail -1
      {
        echo "## decode (ours)"; run "$build/bench_decode" --model "$m15" --n 64,128 --prompt 128 --new 256 --reps 2 --count-ops 1
        echo; echo "## decode (ours, sdpa)"; run "$build/bench_decode" --model "$m15" --n 128 --prompt 128 --new 256 --reps 2 --attention sdpa
        echo; echo "## decode (transformers generate)"; run python3 scripts/hf_reference.py bench-generate "$models" --n 64 128 --prompt 128 --new 256 --reps 2
        echo; echo "## update (forward + backward)"; run "$build/bench_update" --model "$m15" --n 16 --prompt 128 --completion 384 --micro 8 --reps 2
        echo; echo "## one GRPO step, 16 x 8, 256 new tokens (defaults: eager decode, eager attention)"; run "$build/bench_grpo_step" --model "$m15" --prompts 16 --group 8 --new 256 --micro 16 --checkpointing 1 --steps 2
        echo; echo "## one GRPO step, 16 x 8, 512 new tokens (CUDA-graph decode, sdpa)"; run "$build/bench_grpo_step" --model "$m15" --prompts 16 --group 8 --new 512 --micro 16 --checkpointing 1 --decode-mode cuda_graph --attention sdpa --steps 2
      } 2>&1 | tee "$out/bench.md"
      ;;
    *) echo "unknown phase '$phase' (build | test | parity | bench)"; exit 2 ;;
  esac
done
