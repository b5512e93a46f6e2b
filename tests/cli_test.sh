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

# ---- grpo_tokenize
q=tests/data/qwen2.5/tokenizer.json
out=$(printf '%s\n' '"Hello world"' '"<|im_end|>"' | "$bin/grpo_tokenize" --tokenizer $q 2>&1); rc=$?
check "tokenize encode" 0 $'^\\[9707,1879\\]\n\\[151645\\]$' "$out" "$rc"
out=$(echo '[9707,1879]' | "$bin/grpo_tokenize" --tokenizer $q --decode 2>&1); rc=$?
check "tokenize decode" 0 '^"Hello world"$' "$out" "$rc"
out=$(printf '%s\n' '"ok"' 'oops' | "$bin/grpo_tokenize" --tokenizer $q 2>&1); rc=$?
check "tokenize bad line" 1 "stdin:2: invalid JSON" "$out" "$rc"
out=$(echo '"x"' | "$bin/grpo_tokenize" --tokenizer /nonexistent.json 2>&1); rc=$?
check "tokenize missing file" 1 "/nonexistent.json" "$out" "$rc"
out=$(echo '"Hello"' | "$bin/grpo_tokenize" --tokenizer $q --bench 2>&1 >/dev/null); rc=$?
check "tokenize bench line" 0 "^tokens=1 seconds=[0-9.]+ tokens_per_s=[0-9.]+$" "$out" "$rc"

# ---- grpo_generate on the real TinyStories weights (reference ids from the fp64 reference)
ts=tests/data/tinystories-656k
out=$("$bin/grpo_generate" $ts --prompt-ids 1,80,147,201,282,215,286,64,207,161 --max-new-tokens 5 --greedy --print-ids --ignore-eos 2>/dev/null); rc=$?
check "generate greedy ids" 0 "^152,64,101,829,463$" "$out" "$rc"
out=$("$bin/grpo_generate" $ts --prompt "Once upon a time, there was a little" --raw --max-new-tokens 12 --greedy 2>&1); rc=$?
check "generate text + throughput" 0 "prefill_tokens_per_s=[0-9.]+ decode_tokens_per_s=[0-9.]+" "$out" "$rc"
check "generate reads as English" 0 "The large liked to go fast" "$out" "$rc"
out=$("$bin/grpo_generate" $ts --score-ids 1,80,147 2>/dev/null); rc=$?
check "generate score ids" 0 "^-[0-9]+\.[0-9]{6},-[0-9]+\.[0-9]{6}$" "$out" "$rc"
out=$("$bin/grpo_generate" /nonexistent/model --prompt-ids 1,2 2>&1); rc=$?
check "generate missing dir" 1 "/nonexistent/model: model directory does not exist" "$out" "$rc"

echo "$passes passed, $fails failed"
[[ $fails == 0 ]]
