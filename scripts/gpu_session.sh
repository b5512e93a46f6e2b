#!/usr/bin/env bash
# scripts/gpu_session.sh: issue 36's checks on a lent H100/H200 in ONE prepared call of ~9 minutes,
# and the rehearsal of that call on the CPU. A lent host has CUDA, PyTorch 2.x, transformers,
# tensorboard and peft in its python3 and no network; the session has ~15 minutes of device time in
# all, the machine's start included. So the phases run in order of what they settle, each with the
# time left as its limit, and a phase that would not fit is skipped and named in the summary,
# which always prints last:
#   setup    device facts; the carried wheels (trl and what it needs beyond the host's packages) into
#            /tmp/site; the carried prebuilt programs (build-cuda-pack/, made by `pack` here) when
#            they run there, else a build against the host's pip torch from the carried .deb files
#   models   random Qwen2s written by transformers (scripts/hf_reference.py make): tiny and odd fp32,
#            Qwen2.5-1.5B's shape in bf16; that one again with the real tokenizer, for the TRL step
#   checks   the unit suite on CUDA (ctest -LE 'slow|interop', in the background), the device tests
#            on cuda only, transformers parity (fp32 <= 1e-4, bf16 reported, 32 greedy tokens) for the
#            1.5B shape, and Qwen2 / Qwen3 / Llama 3 models in every decode mode
#   decode   bench_decode (N = 64, 128; eager, cuda_graph; cuda_graph + sdpa) and transformers
#            generate on the same batch and lengths; the roofline from the measured copy bandwidth
#   trl      one GRPO step of 16 x 8 x 256 (bench/vs_trl/gpu.yaml): grpo_train and TRL's
#            GRPOTrainer on the same prompts in the same order, 2 timed steps after a warm-up each
#   update   bench_update: forward + backward tokens/s and MFU, eager / sdpa x checkpointing on / off
#   steps    bench_grpo_step: 256 new tokens with checkpointing on and off (the memory of 1.5B full
#            fine-tuning), 512 with CUDA graphs + sdpa, and Qwen2.5-7B's shape with LoRA r = 16
#   e2e      a short grpo_train run whose TensorBoard file tensorboard reads; torchrun over NCCL;
#            a 100-step soak when time is left
#   summary  scripts/gpu_summary.py: each goal of issue 36 against its measurement
# $OUT (default gpu-results/) receives summary.md, tables.md (every table) and logs.tgz (every log):
# three files, inside the device tool's limit of eight.
#
#   scripts/gpu_session.sh pack        here, before the call: .deps/ (scripts/offline_deps.sh), .whl/
#                                      (trl, datasets, dill, multiprocess for python 3.12) and
#                                      build-cuda-pack/ (build-pip's programs and test lists,
#                                      stripped, in one archive); prints their sizes (a call carries
#                                      at most 64 MiB, the working tree included)
#   scripts/gpu_session.sh [PHASE...]  on the device: run(command="scripts/gpu_session.sh",
#                                      carry=[".deps", ".whl", "build-cuda-pack"], timeout_s=600); setup
#                                      and then the phases named (default: all)
#   REHEARSAL=1 scripts/gpu_session.sh the same phases here on the CPU with small shapes and
#                                      build-pip/: every command, parser and table exercised
# Env: BUDGET_S (540: the script's own wall clock, summary included), OUT, SESSION_DEVICE (cuda; cpu
# tries the carried programs' setup on a CPU host, e.g. `SESSION_DEVICE=cpu scripts/gpu_session.sh e2e`).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# ---------------------------------------------------------------------------------------------
# pack (here)
if [[ "${1:-}" == pack ]]; then
  set -e
  [[ -x build-pip/grpo_train ]] || scripts/setup.sh --torch pip > /dev/null
  ls .deps/*.deb > /dev/null 2>&1 || scripts/offline_deps.sh .deps > /dev/null
  py="$(scripts/venv.sh | tail -1)"
  rm -rf .whl && mkdir -p .whl
  # trl's needs that the host's image lacks (KINDS.md's package list): datasets, and datasets' dill
  # and multiprocess; versions as in scripts/requirements-pip.txt
  for p in trl datasets dill multiprocess; do
    v="$(grep -i "^$p==" scripts/requirements-pip.txt | cut -d= -f3)"
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$p==$v"
  done
  rm -rf build-cuda && mkdir -p build-cuda
  # every program and the test lists (ctest's files name /work/main/build-pip/...: the device links
  # /work/main and build-pip to these)
  (cd build-pip && find . -path ./CMakeFiles -prune -o -path '*/CMakeFiles' -prune -o -type f \
    \( -perm -u+x -o -name 'CTestTestfile.cmake' -o -name '*_include.cmake' -o -name '*_tests.cmake' \) -print |
    while read -r f; do mkdir -p "../build-cuda/$(dirname "$f")"; cp "$f" "../build-cuda/$f"; done)
  find build-cuda -type f -perm -u+x -exec strip --strip-unneeded {} + 2> /dev/null || true
  echo "$root" > build-cuda/.built_at
  # ~55 MB of programs (each links the library statically) travel as one ~6 MB archive
  rm -rf build-cuda-pack && mkdir build-cuda-pack && tar cJf build-cuda-pack/programs.tar.xz -C build-cuda . && rm -rf build-cuda
  du -sh .deps .whl build-cuda-pack
  echo "working tree: $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1 | numfmt --to=iec) (the call carries 64 MiB in all)"
  echo "carry: [\".deps\", \".whl\", \"build-cuda-pack\"]"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# the shapes: the issue's on a GPU, small ones for the rehearsal on the CPU
export rehearsal="${REHEARSAL:-0}" root
export out="${OUT:-gpu-results}" work=/tmp/grpo-gpu-session models=/tmp/grpo-hf-models
rm -rf "$work"; mkdir -p "$out" "$work/logs" "$work/tables"
export m15="$models/qwen2.5-1.5b-bf16" m15t="$models/qwen2.5-1.5b-bf16-tok"
if [[ "$rehearsal" == 1 ]]; then
  export dev=cpu dt=float32 bin=build-pip py="$(scripts/venv.sh | tail -1)"
  cat > "$work/small.json" <<'EOF'
{"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096, "rope_theta": 1000000.0,
 "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151645,
 "torch_dtype": "bfloat16"}
EOF
  export big="$work/small.json" big7="$work/small.json" models=/tmp/grpo-hf-models-rehearsal
  export m15="$models/qwen2.5-1.5b-bf16" m15t="$models/qwen2.5-1.5b-bf16-tok"
  export dec_n=4,8 gen_n="4 8" prompt=16 new=16 upd="--n 4 --prompt 16 --completion 32 --micro 2"
  export step="--prompts 2 --group 4 --micro 4" new1=16 new2=24 trl_sets="prompts_per_step=2 group_size=4 max_new_tokens=16 grad_accum=2"
  export ctest_args="-R ^(Devices|Sampler)" soak_steps=60 modes=eager,static
else
  export dev="${SESSION_DEVICE:-cuda}" dt=bfloat16 bin=build-cuda py=python3  # SESSION_DEVICE=cpu: a dry run of setup
  export big="$root/configs/models/qwen2.5-1.5b.json" big7="$root/configs/models/qwen2.5-7b.json"
  export dec_n=64,128 gen_n="64 128" prompt=128 new=256 upd="--n 16 --prompt 128 --completion 384 --micro 8"
  export step="--prompts 16 --group 8 --micro 16" new1=256 new2=512 trl_sets=""
  export ctest_args="" soak_steps=100 modes=eager,cuda_graph
  [[ "$dev" == cpu ]] && modes=eager,static
fi
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
deps_lib="$root/.deps/prefix/usr/lib/x86_64-linux-gnu"
# LibTorch and the CUDA runtime of the host's pip torch (the programs were linked against the same
# version's; libcudart comes from its nvidia/cu13 package, found by its own RPATH for libtorch only)
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2> /dev/null)"
export LD_LIBRARY_PATH="$deps_lib:$torch_lib:$torch_lib/../../nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

budget="${BUDGET_S:-540}" reserve=25
deadline=$((SECONDS + budget))
echo "| phase | status | seconds |" > "$work/phases.md"; echo "|---|---|---|" >> "$work/phases.md"

# phase NAME NEED_S: runs ph_NAME with the time left (less the summary's reserve) as its limit, its
# output in logs/NAME.log; skipped when less than NEED_S is left. A phase goes on past a failed
# command (the next benchmark still runs) and is marked failed when any command of it failed.
phase() {
  local name=$1 need=$2 left=$((deadline - SECONDS - reserve)) t0=$SECONDS rc
  if ((left < need)); then
    echo "| $name | skipped: $left s left, needs ~$need | 0 |" >> "$work/phases.md"; echo "== $name: skipped ($left s left)"; return
  fi
  echo "== $name (limit $left s)"
  timeout -k 10 "$left" bash -c "set -E -o pipefail; fails=0; trap 'fails=\$((fails + 1))' ERR; ph_$name; exit \$((fails > 0))" \
    > "$work/logs/$name.log" 2>&1; rc=$?
  local status=ok; ((rc == 124 || rc == 137)) && status="cut at its limit" || { ((rc)) && status="a command failed"; }
  echo "| $name | $status | $((SECONDS - t0)) |" >> "$work/phases.md"
  echo "   $status in $((SECONDS - t0)) s"
}
# table NAME TITLE CMD...: runs CMD, its stdout appended to tables/NAME.md under "## TITLE"
table() {
  local name=$1 title=$2; shift 2
  echo "+ $*"
  { echo; echo "## $title"; echo; } >> "$work/tables/$name.md"
  "$@" | tee -a "$work/tables/$name.md"
}
export -f table

# ---------------------------------------------------------------------------------------------
ph_setup() {
  if [[ "$dev" == cuda ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  else
    echo "CPU rehearsal: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
  fi
  "$py" -c 'import torch, transformers, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
  if ls .whl/*.whl > /dev/null 2>&1 && [[ "$rehearsal" != 1 ]]; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  fi
  "$py" -c 'import trl, datasets; print("trl", trl.__version__, "datasets", datasets.__version__)' || echo "trl: not importable (the TRL step will fail)"
  if [[ "$rehearsal" == 1 ]]; then "$bin/grpo_train" --version; return; fi
  [[ -d .deps/prefix/usr ]] || for f in .deps/*.deb; do dpkg -x "$f" .deps/prefix; done
  [[ -f build-cuda-pack/programs.tar.xz && ! -d build-cuda ]] && mkdir build-cuda && tar xJf build-cuda-pack/programs.tar.xz -C build-cuda
  # The prebuilt programs name /work/main/build-pip (test lists, compiled-in paths): link both here.
  if [[ -f build-cuda/.built_at && ! -e build-pip ]]; then
    [[ "$(cat build-cuda/.built_at)" == "$root" ]] || { mkdir -p "$(dirname "$(cat build-cuda/.built_at)")" && ln -sfn "$root" "$(cat build-cuda/.built_at)"; }
    ln -sfn build-cuda build-pip
  fi
  if build-cuda/grpo_train --version && build-cuda/tests/grpo_tests --gtest_list_tests > /dev/null; then
    echo "prebuilt programs run here"; ldd build-cuda/grpo_train | grep -E "libtorch_cuda|libcudart"
  else
    echo "prebuilt programs do not run here: building"
    rm -f build-pip; rm -rf build-cuda
    GRPO_CMAKE_ARGS="-DGRPO_BUILD_FUZZ=OFF" scripts/build_cuda.sh .deps build-cuda 2>&1 | tail -5
    build-cuda/grpo_train --version
  fi
}

ph_models() {
  "$py" scripts/hf_reference.py make "$models" --big "$big"
  mkdir -p "$m15t"
  for f in "$m15"/*; do ln -sfn "$f" "$m15t/"; done
  cp tests/data/qwen2.5/tokenizer.json "$m15t/"
  # AutoTokenizer needs the special tokens named: the tokenizer_config.json trl_side.py writes for its models
  (cd bench/vs_trl && "$py" -c 'import sys, trl_side; trl_side.write_tokenizer_config(sys.argv[1], "<|im_end|>", "<|endoftext|>")' "$m15t")
  ls -la "$m15t"
}

ph_checks() {
  # Correctness only, so three streams share the device: the suite, the ~100 grpo_generate runs of
  # the interop models (each starts CUDA), and the device tests then the 1.5B-shape parity.
  # shellcheck disable=SC2086
  (cd "$bin" && timeout 180 ctest -LE 'slow|interop' --timeout 150 -j 8 $ctest_args > "$work/logs/ctest.log" 2>&1) &
  local ctest_pid=$!
  (cd tests/interop && GRPO_INTEROP_DEVICE=$dev GRPO_INTEROP_DECODE_MODES=eager,static$([[ $dev == cuda ]] && echo ,cuda_graph) \
    timeout 400 "$py" test_transformers_models.py "$root/$bin" > "$work/logs/interop_models.log" 2>&1) &
  local interop_pid=$!
  GRPO_TEST_DEVICES=$dev "$bin/tests/grpo_tests" --gtest_filter='Devices/*' > "$work/logs/device_tests.log" 2>&1
  grep -E "^\[  (PASSED|FAILED)|tests ran|SKIPPED \]" "$work/logs/device_tests.log" | tail -8
  table parity "transformers parity, the 1.5B shape (scripts/hf_reference.py parity)" \
    "$py" scripts/hf_reference.py parity "$models" --bin "$bin" --device "$dev"
  wait "$interop_pid"
  table parity "every family's models made by transformers, sliding windows included (tests/interop/test_transformers_models.py)" \
    grep -v '^Loading\|^Writing' "$work/logs/interop_models.log"
  wait "$ctest_pid"
  tail -12 "$work/logs/ctest.log"
}

ph_decode() {
  table decode "decode, ours (eager attention)" "$bin/bench_decode" --model "$m15" --device "$dev" --n "$dec_n" --prompt "$prompt" --new "$new" --reps 2 --modes "$modes"
  table decode "decode, ours (sdpa)" "$bin/bench_decode" --model "$m15" --device "$dev" --n "${dec_n##*,}" --prompt "$prompt" --new "$new" --reps 2 --modes "${modes##*,}" --attention sdpa
  # shellcheck disable=SC2086
  table decode "decode, transformers generate" "$py" scripts/hf_reference.py bench-generate "$models" --n $gen_n --prompt "$prompt" --new "$new" --reps 2 \
    --device "$dev" --dtype "$dt"
}

ph_trl() {
  local res="$work/trl" side=bench/vs_trl/trl_side.py sets=() kv
  mkdir -p "$res"
  for kv in $trl_sets max_steps=3 dynamic_sampling=false vllm_importance_sampling_correction=false; do sets+=(--set "$kv"); done
  [[ "$rehearsal" == 1 ]] && sets+=(--set device=cpu --set dtype=float32)
  "$py" "$side" measure "$res/speed_gpu_k8_ours_1.json" -- "$bin/grpo_train" "$m15t" -c bench/vs_trl/gpu.yaml "${sets[@]}" \
    --set output_dir="$work/trl_ours" --dump-rollouts "$work/trl_ours.rollouts.jsonl"
  cp "$work/trl_ours/metrics.jsonl" "$res/speed_gpu_k8_ours_1.metrics.jsonl"
  "$py" "$side" measure "$res/speed_gpu_k8_trl_1.json" -- "$py" "$side" train "$m15t" bench/vs_trl/gpu.yaml "$work/trl_trl" \
    --order "$work/trl_ours.rollouts.jsonl" "${sets[@]}"
  cp "$work/trl_trl/trl_steps.jsonl" "$res/speed_gpu_k8_trl_1.steps.jsonl"
  table trl "one GRPO step, ours vs TRL (bench/vs_trl/gpu.yaml${trl_sets:+ with $trl_sets}; 1 run a side, steps 2-3 timed)" \
    "$py" "$side" speed-table "$res" 1 "gpu 8"
}

ph_update() {
  # shellcheck disable=SC2086
  table update "update (forward + backward), the 1.5B shape" "$bin/bench_update" --model "$m15" --device "$dev" $upd --reps 2
}

ph_steps() {
  # shellcheck disable=SC2086
  {
    table steps "GRPO step, $new1 new tokens, checkpointing on (eager decode, eager attention)" \
      "$bin/bench_grpo_step" --model "$m15" --device "$dev" $step --new "$new1" --checkpointing 1 --steps 2
    table steps "GRPO step, $new1 new tokens, checkpointing off" \
      "$bin/bench_grpo_step" --model "$m15" --device "$dev" $step --new "$new1" --checkpointing 0 --steps 2
    table steps "GRPO step, $new2 new tokens, ${modes##*,} decode, sdpa" \
      "$bin/bench_grpo_step" --model "$m15" --device "$dev" $step --new "$new2" --checkpointing 1 --steps 2 \
      --decode-mode "${modes##*,}" --attention sdpa
    table steps "GRPO step, Qwen2.5-7B shape, LoRA r=16, $new1 new tokens, checkpointing on" \
      "$bin/bench_grpo_step" --config "$big7" --device "$dev" --dtype "$dt" $step --new "$new1" --checkpointing 1 --steps 2 --lora-rank 16
  }
}

ph_e2e() {
  local e2e="$work/e2e"
  "$bin/tests/make_test_model" "$e2e/model" tiny > /dev/null
  "$bin/grpo_train" "$e2e/model" --set device="$dev" --set max_steps=4 --set prompts_per_step=4 --set group_size=4 \
    --set max_new_tokens=48 --set eval_limit=16 --set decode_mode="${modes##*,}" --set attention=sdpa \
    --set output_dir="$e2e/run" > "$work/logs/e2e_train.log" 2>&1
  echo "grpo_train exit $?"
  "$py" - "$e2e/run/tb" <<'PY'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
tags = acc.Tags()["scalars"]
print(f"tensorboard read {len(tags)} scalar tags:", ", ".join(sorted(tags)[:8]), "...")
for t in ("reward_mean", "loss", "decode_new_shapes"):
    if t in tags: print(t, [(e.step, round(e.value, 4)) for e in acc.Scalars(t)])
PY
  # data parallel at world size 1, launched by the host's torchrun (NCCL on a GPU, gloo here)
  "$py" -m torch.distributed.run --standalone --nproc_per_node=1 --no-python "$bin/grpo_train" "$e2e/model" --set device="$dev" \
    --set max_steps=2 --set prompts_per_step=4 --set group_size=4 --set max_new_tokens=32 --set eval_limit=8 \
    --set output_dir="$e2e/dp" > "$work/logs/e2e_torchrun.log" 2>&1
  echo "torchrun exit $?"
  grep -E "Data parallel|Training completed|rror" "$work/logs/e2e_torchrun.log" | tail -3
}

ph_soak() {
  bench/soak.sh "$bin" "$soak_steps" --set device="$dev"
}
export -f ph_setup ph_models ph_checks ph_decode ph_trl ph_update ph_steps ph_e2e ph_soak

# ---------------------------------------------------------------------------------------------
# the run: the phases named on the command line (default: all), most settling first; each one's
# estimate (seconds, H100, prebuilt programs) is what it needs left to start. A second call on the
# still-warm machine can run what the first skipped: its models and programs are still there.
declare -A need=([models]=40 [checks]=120 [decode]=90 [trl]=120 [update]=40 [steps]=90 [e2e]=30 [soak]=60)
order=(models checks decode trl update steps e2e soak)
want=" ${*:-${order[*]}} "
# the phases that read the models make them first (kept from an earlier call on a warm machine)
[[ "$want" =~ \ (checks|decode|trl|update|steps)\  ]] && want=" models$want"
for p in $want; do [[ -n "${need[$p]:-}" ]] || { echo "unknown phase '$p' (${order[*]}, or pack)"; exit 2; }; done
phase setup 30
for p in "${order[@]}"; do [[ "$want" == *" $p "* ]] && phase "$p" "${need[$p]}"; done
cat "$work"/tables/{parity,decode,trl,update,steps}.md > "$work/tables.md" 2> /dev/null
"$py" scripts/gpu_summary.py "$work" > "$work/summary.md" 2> "$work/logs/summary.log" || echo "summary failed: $(tail -3 "$work/logs/summary.log")"
cp "$work/summary.md" "$work/tables.md" "$out/" 2> /dev/null
tar czf "$out/logs.tgz" -C "$work" logs phases.md tables trl 2> /dev/null
cat "$work/summary.md"
