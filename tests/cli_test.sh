#!/usr/bin/env bash
# CLI tests for the executables: exit codes and the exact messages users see.
# Usage: cli_test.sh <bin_dir>   (run from the repository root)
set -u
bin="$1"
fails=0; passes=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

check() {  # check NAME EXPECTED_RC PATTERN OUTPUT RC
  local name="$1" want_rc="$2" pattern="$3" out="$4" rc="$5"
  if [[ "$rc" != "$want_rc" ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: rc=$rc (want $want_rc), pattern /$pattern/ in:"; echo "$out" | head -20
    fails=$((fails+1))
  else
    echo "ok   $name"; passes=$((passes+1))
  fi
}

# ---- grpo_train: config errors come before the model dir is touched (it does not exist here)
out=$("$bin/grpo_train" /nonexistent/model --set group_sizee=4 2>&1); rc=$?
check "train typo suggests" 1 "unknown config key 'group_sizee' \(--set\); did you mean 'group_size'\?" "$out" "$rc"
out=$("$bin/grpo_train" /nonexistent/model --set top_p=2 2>&1); rc=$?
check "train range error" 1 "'top_p' \(--set\): expected a value in \(0, 1\], found 2" "$out" "$rc"
out=$("$bin/grpo_train" /nonexistent/model 2>&1); rc=$?
check "train missing model dir" 1 "model_path: '/nonexistent/model' is not a directory" "$out" "$rc"
out=$("$bin/grpo_train" --help 2>&1); rc=$?
check "train help lists keys" 0 "group_size +\[8\]" "$out" "$rc"
check "train help lists lr" 0 "learning_rate +\[1e-06\]" "$out" "$rc"
check "train help lists weights" 0 "reward_weights.format +\[0.1\]" "$out" "$rc"
mkdir -p "$tmp/model" && echo '{}' > "$tmp/model/config.json"
out=$("$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
check "train dry run" 0 "train: data/gsm8k/train.jsonl, 7473 examples" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --print-config -c configs/gsm8k_qwen2.5_1.5b.yaml 2>&1); rc=$?
check "train shipped config 1.5b" 0 "^group_size: " "$out" "$rc"
for c in configs/*.yaml; do
  out=$("$bin/grpo_train" "$tmp/model" --print-config -c "$c" 2>&1); rc=$?
  check "config $c loads" 0 "^model_path: " "$out" "$rc"
done

# ---- grpo_reward
out=$(printf '%s\n' '{"completion": "<think>48/2=24</think><answer>72</answer>", "answer": "x\n#### 72"}' \
                    '{"completion": "The answer is 1,080", "gold": 1080}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward line 1" 0 '^\{"correct":true,"extracted":72.0,"reward":1.100000023841858,"rewards":\{"correctness":1.0,"digit":1.0,"format":1.0,"length":0.0,"tags":1.0\}\}$' "$out" "$rc"
check "reward line 2 strict" 0 '"correct":false,"extracted":null' "$out" "$rc"
out=$(echo '{"completion": "The answer is 1,080", "gold": 1080}' | "$bin/grpo_reward" --mode flexible --weights format=0,tags=1 2>&1); rc=$?
check "reward flexible + weights" 0 '"correct":true,"extracted":1080.0,"reward":1.0,' "$out" "$rc"
out=$(printf '%s\n' '{"completion": "<answer>1</answer>", "gold": 1}' 'not json' '{"completion": "x", "gold": 2}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward bad line named" 1 "stdin:2: invalid JSON" "$out" "$rc"
check "reward earlier lines kept" 1 '^\{"correct":true' "$out" "$rc"
[[ $(grep -c '^{' <<<"$out") == 1 ]] || { echo "FAIL reward wrote output past the bad line"; fails=$((fails+1)); }
out=$(echo '{"completion": "x"}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward missing gold" 1 'stdin:1: missing field "answer" or "gold"' "$out" "$rc"
out=$(echo '{"completion": "x", "gold": 1}' | "$bin/grpo_reward" --weights corectness=1 2>&1); rc=$?
check "reward weight typo" 1 "did you mean 'reward_weights.correctness'" "$out" "$rc"

echo "$passes passed, $fails failed"
[[ $fails == 0 ]]
