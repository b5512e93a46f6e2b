#!/usr/bin/env bash
# Every memory figure the README, docs/ and configs/ give as `--dry-run`'s estimate is the one
# `grpo_train --dry-run --shapes` prints today for the settings the text names.
# The convention it enforces: "~12.34 GB" (a tilde and a figure in GB) in those files is always such
# an estimate, and each one is listed below with the command that prints it; a measured or rounded
# figure is written without the tilde ("about 5 GB", "3,626 MB").
# Usage: tests/doc_figures_test.sh BUILD_DIR   (from the project root)
set -u
bin="$1"
fails=0 passes=0
declare -A listed  # "file|figure" -> 1

# figure FILE FIGURE LABEL ARGS...: FILE holds FIGURE, and `grpo_train --dry-run ARGS` prints
# "LABEL FIGURE" ("=" for the total, or a part's name: "AdamW", "KV cache").
figure() {
  local file="$1" fig="$2" label="$3"
  shift 3
  listed["$file|$fig"]=1
  local out
  out=$("$bin/grpo_train" --dry-run "$@" 2>&1 | grep "memory estimate")
  if ! grep -qF -- "$fig" "$file"; then
    echo "FAIL $file does not say $fig"
    fails=$((fails + 1))
  elif ! grep -qF -- "$label $fig" <<<"$out"; then
    echo "FAIL $file: $fig is not what grpo_train --dry-run $* prints ('$label ...'):"
    echo "  ${out:-(no memory estimate printed)}"
    fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}

m=configs/models
c15=configs/gsm8k_qwen2.5_1.5b.yaml
# The 1.5B config with a frozen reference (beta 0.04): the LoRA and ZeRO tables.
ref=(-c "$c15" --set beta=0.04)
lora=(--set lora_rank=16)

for f in README.md docs/models.md configs/gsm8k_qwen2.5_1.5b.yaml; do
  figure "$f" "~39.59 GB" "=" -c "$c15" --shapes $m/qwen2.5-1.5b.json
done
figure docs/models.md "~11.17 GB" "=" -c "$c15" --shapes $m/qwen2.5-1.5b.json "${lora[@]}"
figure configs/gsm8k_qwen2.5_0.5b.yaml "~23.38 GB" "=" -c configs/gsm8k_qwen2.5_0.5b.yaml --shapes $m/qwen2.5-0.5b.json
figure configs/gsm8k_qwen2.5_7b.yaml "~162.14 GB" "=" -c configs/gsm8k_qwen2.5_7b.yaml --shapes $m/qwen2.5-7b.json
figure configs/gsm8k_qwen2.5_7b.yaml "~23.53 GB" "=" -c configs/gsm8k_qwen2.5_7b.yaml --shapes $m/qwen2.5-7b.json "${lora[@]}"
# Full fine-tuning and LoRA of three sizes at the 1.5B config's settings, beta 0.04 (docs/lora.md).
figure docs/lora.md "~16.27 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-0.5b.json
figure docs/lora.md "~5.98 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-0.5b.json "${lora[@]}"
for f in docs/lora.md docs/benchmarks.md; do
  figure "$f" "~42.68 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-1.5b.json
  figure "$f" "~11.17 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-1.5b.json "${lora[@]}"
  figure "$f" "~185.73 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-7b.json
  figure "$f" "~31.89 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-7b.json "${lora[@]}"
done
# Qwen2.5-7B over 8 ranks by zero_stage (docs/distributed.md's ZeRO table, docs/benchmarks.md).
z=("${ref[@]}" --shapes $m/qwen2.5-7b.json --world-size 8)
figure docs/distributed.md "~185.73 GB" "=" "${ref[@]}" --shapes $m/qwen2.5-7b.json
figure docs/distributed.md "60.92 GB" "AdamW" "${ref[@]}" --shapes $m/qwen2.5-7b.json
figure docs/distributed.md "30.46 GB" "master" "${ref[@]}" --shapes $m/qwen2.5-7b.json
figure docs/distributed.md "45.69 GB" "grads" "${ref[@]}" --shapes $m/qwen2.5-7b.json
figure docs/distributed.md "7.62 GB" "AdamW" "${z[@]}" --set zero_stage=1
figure docs/distributed.md "3.81 GB" "master" "${z[@]}" --set zero_stage=1
figure docs/distributed.md "19.11 GB" "grads" "${z[@]}" --set zero_stage=2
figure docs/lora.md "~67.78 GB" "=" "${z[@]}" --set zero_stage=2
for f in docs/distributed.md docs/benchmarks.md; do
  figure "$f" "~174.34 GB" "=" "${z[@]}"
  figure "$f" "~94.37 GB" "=" "${z[@]}" --set zero_stage=1
  figure "$f" "~67.78 GB" "=" "${z[@]}" --set zero_stage=2
done
# Each model's own config (beta 0; docs/models.md).
figure docs/models.md "~38.34 GB" "=" -c configs/gsm8k_qwen3_0.6b.yaml --shapes $m/qwen3-0.6b.json
figure docs/models.md "18.79 GB" "KV cache" -c configs/gsm8k_qwen3_0.6b.yaml --shapes $m/qwen3-0.6b.json
figure docs/models.md "~27.15 GB" "=" -c configs/gsm8k_qwen3_0.6b.yaml --shapes $m/qwen3-0.6b.json "${lora[@]}"
figure docs/models.md "~64.30 GB" "=" -c configs/gsm8k_qwen3_1.7b.yaml --shapes $m/qwen3-1.7b.json
figure docs/models.md "~32.36 GB" "=" -c configs/gsm8k_qwen3_1.7b.yaml --shapes $m/qwen3-1.7b.json "${lora[@]}"
figure docs/models.md "~36.35 GB" "=" -c configs/gsm8k_llama3.2_1b.yaml --shapes $m/llama3.2-1b.json
figure docs/models.md "~13.23 GB" "=" -c configs/gsm8k_llama3.2_1b.yaml --shapes $m/llama3.2-1b.json "${lora[@]}"
# The other families' configs (LoRA figures at r=16 whatever the config says; full: lora_rank 0).
family_figure() {  # family_figure CONFIG SHAPES FULL LORA [KV]
  figure docs/models.md "$3" "=" -c "configs/gsm8k_$1.yaml" --shapes "$m/$2.json" --set lora_rank=0
  figure docs/models.md "$4" "=" -c "configs/gsm8k_$1.yaml" --shapes "$m/$2.json" "${lora[@]}" --set lora_alpha=32
  [[ -z "${5:-}" ]] || figure docs/models.md "$5" "KV cache" -c "configs/gsm8k_$1.yaml" --shapes "$m/$2.json" --set lora_rank=0
}
family_figure gemma3_1b gemma3-1b "~27.33 GB" "~8.33 GB" "1.91 GB"
family_figure olmo2_1b olmo2-1b "~49.92 GB" "~22.56 GB" "13.96 GB"
family_figure smollm3_3b smollm3-3b "~77.39 GB" "~21.47 GB"
family_figure phi4_mini phi4-mini "~103.11 GB" "~31.97 GB"
family_figure ministral_8b ministral-8b "~190.69 GB" "~44.88 GB"

# Every "~N GB" of those files is one of the above.
while IFS=: read -r file _ fig; do
  if [[ -z "${listed["$file|$fig"]:-}" ]]; then
    echo "FAIL $file says $fig, which no --dry-run command of this test prints (write a measured figure without the ~)"
    fails=$((fails + 1))
  fi
done < <(grep -noP '~[0-9][0-9.,]* GB(?!/)' README.md docs/*.md configs/*.yaml)

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
