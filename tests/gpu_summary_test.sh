#!/usr/bin/env bash
# The goals table that ends scripts/gpu_session.sh (scripts/gpu_summary.py), read from the files of
# a real run: tests/data/gpu_session is `REHEARSAL=1 scripts/gpu_session.sh` on the 2-core CPU
# machine, 2026-12-07 (small shapes; the tables as bench_decode, bench_update, bench_grpo_step,
# hf_reference.py and trl_side.py printed them). A GPU session has one call to get this right, so
# the figures each verdict rests on are checked here, and each verdict must turn when its check
# fails: a failed unit test, a crashed device-test run, an fp32 logit off by more than 1e-4, a cut
# interop run, a phase cut at its limit, a missing table.
#   tests/gpu_summary_test.sh       (python3, standard library only)
set -euo pipefail
cd "$(dirname "$0")/.."
w="$(mktemp -d)"; trap 'rm -rf "$w"' EXIT
cp -r tests/data/gpu_session/. "$w/"
s="$(python3 scripts/gpu_summary.py "$w")"
expect() { grep -qF -- "$1" <<< "$s" || { echo "gpu_summary_test: missing line: $1"; echo "$s"; exit 1; }; }

expect "| phases | 9 of 9 ok |"
expect "| unit suite on the device (ctest -LE 'slow|interop') | 36 of 36 passed | all pass | **met** |"
expect "| device tests on the device only (Devices/*) | 31 passed | all pass | **met** |"
expect "| parity qwen2.5-1.5b-bf16 fp32 (max abs logit diff, greedy 32) | 2.98e-07, greedy equal: yes | <= 1e-4, equal | **met** |"
expect "| parity odd-f32 bf16 (reported) | 4.70e-01 (transformers bf16 vs fp64: 5.99e-01), greedy equal: no"
expect "| transformers-made Qwen2 / Qwen3 / Llama 3 models, every decode mode | 12 of 12 within 1e-4 with equal greedy ids | all | **met** |"
# the best of the decode rows at each N (eager 1093 > static at N = 4; static 1275 > eager, > sdpa at N = 8)
expect "| decode tokens/s at N = 4: ours (eager) / transformers generate | 1093 / 430 = 2.5x | >= 5x | **missed** |"
expect "| decode tokens/s at N = 8: ours (static) / transformers generate | 1275 / 713 = 1.8x | >= 5x | **missed** |"
expect "| decode at N = 8: share of the HBM roofline | 20% | >= 70% | **missed** |"
expect "| update MFU, best of eager / sdpa x checkpointing | 14.0% of the measured matmul peak (- of the datasheet), eager attention, checkpointing off, 643 tokens/s | >= 40% | **missed** |"
expect "TRL's time / ours | 7.7x (ours 0.47 s: rollout 0.13, update 0.34; TRL 3.65 s: generation 0.67, update 2.98) | >= 5x (ours <= 1/5 of TRL's) | **met** |"
expect "| GRPO step: peak memory, TRL / ours (the GPU allocator's) | 2.13x (process RSS) |"
# the timed step (not the warm-up) and the peak over both
expect "| GRPO step, Qwen2.5-7B shape, LoRA r=16, 16 new tokens, checkpointing on | 0.37 s a step (rollout 0.13 s, update 0.24 s), peak 607 MiB |"
expect "| e2e: grpo_train on the device, TensorBoard file read by tensorboard | 37 scalar tags | read | **met** |"
expect "| soak: the allocator's step peak, step 50 -> the end | 441.7 MB -> 441.7 MB (+0.00%) | < 2% growth, fds and threads flat | **met** |"

# each failure turns its verdict
sed -i 's/100% tests passed, 0 tests failed out of 36/94% tests passed, 2 tests failed out of 36/' "$w/logs/ctest.log"
sed -i 's/| 2.98e-07 |/| 2.98e-03 FAIL |/' "$w/tables/parity.md"
sed -i '/all comparisons agree/d' "$w/logs/interop_models.log"
echo "| steps | cut at its limit | 90 |" >> "$w/phases.md"
rm "$w/tables/update.md"
printf '[ RUN      ] Devices/Qwen2Device.GoldenLogits/cuda\nSegmentation fault\n' > "$w/logs/device_tests.log"
s="$(python3 scripts/gpu_summary.py "$w")"
expect "| phases | 9 of 10 ok (steps: cut at its limit) |"
expect "| unit suite on the device (ctest -LE 'slow|interop') | 34 of 36 passed | all pass | **missed** |"
expect "| parity qwen2.5-1.5b-bf16 fp32 (max abs logit diff, greedy 32) | 2.98e-03 FAIL, greedy equal: yes | <= 1e-4, equal | **missed** |"
expect "| transformers-made Qwen2 / Qwen3 / Llama 3 models, every decode mode | 12 of 12 within 1e-4 with equal greedy ids, the test did not finish | all | **missed** |"
expect "| update MFU | not measured | >= 40% | not measured |"
expect "| device tests on the device only (Devices/*) | no result | all pass | **missed** |"
echo "gpu_summary_test: ok"
