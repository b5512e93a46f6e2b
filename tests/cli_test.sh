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
    echo "FAIL $name: rc=$rc (want $want_rc), pattern /$pattern/ in:"; echo "$out" | head -10; echo "..."; echo "$out" | tail -10
    fails=$((fails+1))
  else
    echo "ok   $name"; passes=$((passes+1))
  fi
}
check_that() {  # check_that NAME COMMAND...: passes when COMMAND (e.g. test -f FILE) succeeds
  local name="$1"; shift
  if "$@"; then echo "ok   $name"; passes=$((passes+1)); else echo "FAIL $name: $*"; fails=$((fails+1)); fi
}

# ---- grpo_train: config errors come before the model dir is touched (it does not exist here)
out=$("$bin/grpo_train" /nonexistent/model --set group_sizee=4 2>&1); rc=$?
check "train typo suggests" 1 "unknown config key 'group_sizee' \(--set\); did you mean 'group_size'\?" "$out" "$rc"
out=$("$bin/grpo_train" /nonexistent/model --set top_p=2 2>&1); rc=$?
check "train range error" 1 "'top_p' \(--set\): expected a value in \(0, 1\], found 2" "$out" "$rc"
out=$("$bin/grpo_train" /nonexistent/model 2>&1); rc=$?
check "train missing model dir" 1 "/nonexistent/model: model directory does not exist" "$out" "$rc"
out=$("$bin/grpo_train" --help 2>&1); rc=$?
check "train help lists keys" 0 "group_size +\[8\]" "$out" "$rc"
check "train help lists lr" 0 "learning_rate +\[1e-06\]" "$out" "$rc"
check "train help lists weights" 0 "reward_weights.format +\[0.1\]" "$out" "$rc"
"$bin/tests/make_test_model" "$tmp/model" tiny
out=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
check "train dry run" 0 "train: 7473 examples, eval: 10 examples, 935 steps of 8 prompts x 8 samples" "$out" "$rc"
check "train dry run memory" 0 "memory estimate: weights" "$out" "$rc"
check "train dry run phases" 0 "Dry run: config, model directory, tokenizer and data are valid" "$out" "$rc"
# With a BLAS that has its own threads, OpenMP's idle threads sleep unless the user chose otherwise
# (the program re-execs itself once with OMP_WAIT_POLICY=passive, keeping its arguments:
# eval_limit=10 above came through it); with MKL on LibTorch's OpenMP pool it runs as started.
ver=$("$bin/grpo_train" --version 2>&1); vrc=$?
check "train version" 0 "^grpo_train [0-9.]+, LibTorch [0-9.]+, (CPU build|CUDA build \(GRPO_CUDA, CUDA runtime [0-9.]+\), [0-9]+ GPU\(s\) visible), .*OMP_WAIT_POLICY default: (passive|libgomp's)\)$" "$ver" "$vrc"
if grep -q "OMP_WAIT_POLICY default: passive" <<< "$ver"; then
  check "train omp wait policy default" 0 "on [a-z0-9:]+ \(threads [0-9]+, OMP_WAIT_POLICY=passive\)" "$out" "$rc"
else
  check "train omp wait policy default (MKL)" 0 "on [a-z0-9:]+ \(threads [0-9]+, OMP_WAIT_POLICY=\(unset\)\)" "$out" "$rc"
fi
out=$(env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
check "train omp wait policy kept" 0 "OMP_WAIT_POLICY=active\)" "$out" "$rc"
out=$(env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
check "train gomp spincount kept" 0 "OMP_WAIT_POLICY=\(unset\), GOMP_SPINCOUNT=1000\)" "$out" "$rc"
# OMP_NUM_THREADS chooses the intra-op threads (two jobs sharing a box), as it does in PyTorch.
out=$(OMP_NUM_THREADS=3 "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
check "train omp num threads" 0 "on [a-z0-9:]+ \(threads 3, " "$out" "$rc"
loader=/lib64/ld-linux-x86-64.so.2  # started through the loader: no re-exec (it would misread argv)
if [[ -x "$loader" ]]; then
  out=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$loader" "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=10 2>&1); rc=$?
  check "train via the loader keeps argv" 0 "eval: 10 examples" "$out" "$rc"
  check "train via the loader runs as is" 0 "OMP_WAIT_POLICY=\(unset\)\)" "$out" "$rc"
fi
out=$("$bin/grpo_train" "$tmp/model" --print-config -c configs/gsm8k_qwen2.5_1.5b.yaml 2>&1); rc=$?
check "train shipped config 1.5b" 0 "^group_size: " "$out" "$rc"
for c in configs/*.yaml; do
  out=$("$bin/grpo_train" "$tmp/model" --print-config -c "$c" 2>&1); rc=$?
  check "config $c loads" 0 "^model_path: " "$out" "$rc"
done

# ---- grpo_train: a real run, interrupted by SIGINT, then resumed
small=(--set max_new_tokens=8 --set prompts_per_step=2 --set group_size=4 --set eval_limit=4 --set system_prompt=S
       --set save_steps=0 --set eval_every=0 --set reward_weights.length=1 --set length_target=4)
"$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=400 --set output_dir="$tmp/run" > "$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "^step 2/" "$tmp/run.log" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
out=$(cat "$tmp/run.log")
check "sigint exits 130" 130 "Interrupted at step [0-9]+: checkpoint saved" "$out" "$rc"
ck=$(ls -d "$tmp/run"/checkpoint-* 2>/dev/null | head -1)
check_that "sigint checkpoint $ck" test -f "$ck/trainer_state.json"
step=$(basename "$ck" | cut -d- -f2)
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=$((step + 2)) --set output_dir="$tmp/run" --resume auto 2>&1); rc=$?
check "resume after sigint" 0 "Resumed from .*checkpoint-$step at step $step" "$out" "$rc"
check "resume completes" 0 "Training completed!" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=3 --set output_dir="$tmp/run" 2>&1); rc=$?
check "fresh run refuses a used output_dir" 1 "already holds .*checkpoint-[0-9]+; pass --resume auto" "$out" "$rc"

# ---- grpo_train: static-shape decoding samples what eager decoding samples; its buffers persist
for mode in eager static; do
  "$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=3 --set decode_mode=$mode --set output_dir="$tmp/dec-$mode" > /dev/null 2>&1
done
want=$(grep -o '"reward_mean":[^,]*' "$tmp/dec-eager/metrics.jsonl" 2>/dev/null | tr '\n' ' ')
out=$(grep -o '"reward_mean":[^,]*' "$tmp/dec-static/metrics.jsonl" 2>/dev/null | tr '\n' ' ')
check "train static decode == eager rewards" 0 "^${want//./\\.}$" "$out" "$([[ -n "$want" ]] && echo 0 || echo 1)"
out=$(grep -o '"decode_new_shapes":[0-9]*' "$tmp/dec-static/metrics.jsonl" 2>/dev/null | tr '\n' ' ')
check "train static decode shapes set up at step 1" 0 '^"decode_new_shapes":[1-9]' "$out" 0

# ---- grpo_train --dump-rollouts: each step's trained groups as token ids (bench/vs_trl replays them)
"$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=2 --set output_dir="$tmp/dump" --dump-rollouts "$tmp/dump.jsonl" > /dev/null 2>&1
out=$(python3 - "$tmp/dump.jsonl" "$tmp/dump/metrics.jsonl" <<'PY' 2>&1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
metrics = [json.loads(l) for l in open(sys.argv[2])]
for r, m in zip(rows, metrics):
    # 2 prompts x 4 completions; each completion ends at a stop id or has max_new_tokens = 8 ids
    ok = (len(r["examples"]) == 2 and len(r["prompt_ids"]) == 2 and len(r["completion_ids"]) == 8 and len(r["rewards"]) == 8
          and all(c[-1] in r["stop_ids"] or len(c) == 8 for c in r["completion_ids"]) and r["lr"] == m["lr"]
          and abs(sum(r["rewards"]) / 8 - m["reward_mean"]) < 1e-6)
    print(r["step"], "ok" if ok else "bad")
PY
)
check "train --dump-rollouts writes every step" 0 "^1 ok 2 ok$" "$(echo $out)" 0

# ---- TRL's dataset formats: conversational prompts, string golds and extra columns of any JSON type
# reach the reward program, each completion with its own example's columns, and samples.jsonl.
python3 - "$tmp/conv.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(6):
        prompt = [{"role": "system", "content": "Answer with a number."}, {"role": "user", "content": f"Q{i}: what is {i} + 1?"}]
        if i % 2:
            prompt[1:1] = [{"role": "user", "content": "warm-up"}, {"role": "assistant", "content": "ok"}]
        f.write(json.dumps({"prompt": prompt, "gold": f"{i + 1:,}" if i % 3 else i + 1, "uid": i,
                            "meta": {"tags": ["a", str(i)], "nested": {"w": i / 2}}, "flag": i % 2 == 0, "none": None}) + "\n")
PY
cat > "$tmp/columns.py" <<'PY'
import json, sys
log = open(sys.argv[1], "a")
for line in sys.stdin:
    q = json.loads(line)
    # golds arrive as given: the string ones as strings, the numbers as numbers
    ok = len(q["columns"]) == len(q["completions"]) and all(
        f"Q{c['uid']}:" in p and c["meta"] == {"tags": ["a", str(c["uid"])], "nested": {"w": c["uid"] / 2}}
        and c["flag"] == (c["uid"] % 2 == 0) and c["none"] is None and set(c) == {"uid", "meta", "flag", "none"}
        and g == (f"{c['uid'] + 1:,}" if c["uid"] % 3 else c["uid"] + 1) and isinstance(g, str) == (c["uid"] % 3 != 0)
        for p, c, g in zip(q["prompts"], q["columns"], q["golds"]))
    log.write(f"{q['step']} {'ok' if ok else 'bad'}\n"); log.flush()
    print(json.dumps({"rewards": {"seen": [1.0] * len(q["completions"])}}), flush=True)
PY
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=2 --set train_data="$tmp/conv.jsonl" --set eval_data="$tmp/conv.jsonl" \
      --set output_dir="$tmp/conv" --set log_samples_every=1 --set "reward_command=[\"python3\", \"$tmp/columns.py\", \"$tmp/columns.log\"]" 2>&1); rc=$?
check "train on conversational prompts with columns" 0 "Training completed" "$out" "$rc"
check "the reward program saw each completion's own columns" 0 "^1 ok 2 ok$" "$(echo $(cat "$tmp/columns.log" 2>/dev/null))" 0
check "samples.jsonl keeps the columns" 0 '"columns":\{"flag":(true|false),"meta":\{' "$(head -1 "$tmp/conv/samples.jsonl" 2>/dev/null)" 0

# ---- answer_mode math: MATH-style string golds train; strict mode refuses them before any step.
printf '%s\n' '{"prompt": "half?", "solution": "It is $\\boxed{\\dfrac{1}{2}}$."}' '{"prompt": "point?", "gold": "(1, -2)"}' \
  '{"prompt": "roots?", "gold": "\\frac{\\pi}{2}"}' > "$tmp/math.jsonl"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=1 --set train_data="$tmp/math.jsonl" --set eval_data="$tmp/math.jsonl" \
      --set output_dir="$tmp/math_strict" 2>&1); rc=$?
check "strict mode refuses a gold that is not a number" 1 "math.jsonl:2: the gold '\(1, -2\)' is not one number, and answer_mode strict" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=1 --set train_data="$tmp/math.jsonl" --set eval_data="$tmp/math.jsonl" \
      --set output_dir="$tmp/math_run" --set answer_mode=math 2>&1); rc=$?
check "answer_mode math trains on string golds" 0 "Training completed" "$out" "$rc"
out=$(printf '%s\n' '{"completion": "so $\\boxed{\\dfrac{\\sqrt{2}}{2}}$", "gold": "\\frac{1}{\\sqrt2}"}' \
      '{"completion": "so $\\boxed{(2, 1)}$", "gold": "(1, 2)"}' | "$bin/grpo_reward" --mode math 2>&1); rc=$?
check "grpo_reward --mode math compares as math-verify" 0 '"correct":true,"extracted":null,.*"span":"\\\\dfrac\{\\\\sqrt\{2\}\}\{2\}"\} \{"correct":false,.*"span":"\(2, 1\)"\}$' "$(echo $out)" "$rc"

# ---- zero_stage 2 in one process: the shards are checked as they load; a truncated one is named
# before any step and the checkpoint it came from stays.
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=2 --set zero_stage=2 --set output_dir="$tmp/zero" --stop-after=1 2>&1); rc=$?
check "train with zero_stage 2 writes optimizer shards" 0 "ZeRO-2: AdamW's fp32 masters and moments sharded over 1 rank" "$out" "$rc"
truncate -s -8 "$tmp/zero/checkpoint-1/optimizer/shard-0-of-1.safetensors"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=2 --set zero_stage=1 --set output_dir="$tmp/zero" --resume auto 2>&1); rc=$?
check "a truncated optimizer shard is named before any step" 1 "shard-0-of-1.safetensors: checksum [0-9a-f]+ differs from the [0-9a-f]+ recorded in optimizer/index.json" "$out" "$rc"
check_that "no step ran and the checkpoint stays" bash -c "! grep -q 'step 2/2' <<<\"\$1\" && test -f \"\$2\"" _ "$out" "$tmp/zero/checkpoint-1/optimizer/index.json"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set zero_stage=3 --set output_dir="$tmp/zero3" 2>&1); rc=$?
check "zero_stage outside 0-2" 1 "config key 'zero_stage' \(--set\): expected 0, 1 or 2, found 3" "$out" "$rc"

# ---- grpo_train: an external reward program that dies for good at step 3 (every restart too):
# one clear error, exit 1, the checkpoint of step 2 intact, and the run resumes from it.
cat > "$tmp/reward.py" <<'PY'
import json, sys
for line in sys.stdin:
    q = json.loads(line)
    if q["step"] >= int(sys.argv[1]):
        sys.exit(1)
    print(json.dumps({"rewards": {"short": [1.0 if len(c) < 12 else 0.0 for c in q["completions"]]}}), flush=True)
PY
rp=("${small[@]}" --set max_steps=4 --set save_steps=1 --set save_total_limit=0 --set output_dir="$tmp/rp" --set reward_restarts=1)
out=$("$bin/grpo_train" "$tmp/model" "${rp[@]}" --set "reward_command=[\"python3\", \"$tmp/reward.py\", \"3\"]" 2>&1); rc=$?
check "reward program dies: one clear error" 1 'error: reward_command \["python3",".*reward.py","3"\]: it closed its stdout before replying \(it exited with status 1\); gave up after 1 restart\(s\)' "$out" "$rc"
check "reward program restarted once" 1 "restarting it \(1 of 1\) and sending step 3's request again" "$out" "$rc"
check_that "reward program: checkpoint-2 intact" test -f "$tmp/rp/checkpoint-2/model.safetensors"
check_that "reward program: no checkpoint-3" test ! -e "$tmp/rp/checkpoint-3"
out=$(grep -c '"reward/short":' "$tmp/rp/metrics.jsonl" 2>&1); rc=$?
check "reward program components logged" 0 "^2$" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" "${rp[@]}" --set "reward_command=[\"python3\", \"$tmp/reward.py\", \"99\"]" --resume auto 2>&1); rc=$?
check "resume refuses a changed reward_command" 1 'these settings differ from the run the checkpoint belongs to' "$out" "$rc"
check "resume lists the changed reward_command" 1 '^  reward_command: .*reward.py.*3.* -> .*reward.py.*99' "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" "${rp[@]}" --set "reward_command=[\"python3\", \"$tmp/reward.py\", \"99\"]" --resume auto --allow-config-change 2>&1); rc=$?
check "reward program: resume with --allow-config-change" 0 "Resuming with changed settings" "$out" "$rc"
check "reward program: resume from step 2" 0 "Resumed from .*checkpoint-2 at step 2" "$out" "$rc"
check "reward program: resumed run completes" 0 "Training completed!" "$out" "$rc"
out=$(printf '%s\n' '{"completion": "a #### 7", "gold": 7}' '{"completion": "a longer one #### 8", "gold": 7}' |
      "$bin/grpo_reward" --set "reward_command=[\"python3\", \"$tmp/reward.py\", \"99\"]" --set reward_weights.correctness=0 | tr '\n' ' '); rc=$?
check "grpo_reward uses reward_command" 0 '"reward":1\.0,"rewards":\{[^}]*"short":1\.0.*"reward":0\.0,"rewards":\{[^}]*"short":0\.0' "$out" "$rc"
out=$(printf '%s\n' '{"completion": "因为 a 所以 b 但是 c 然而 d 因为 #### 7", "gold": 7}' | "$bin/grpo_reward" -c configs/rewards/words_connectives.yaml 2>&1); rc=$?
check "grpo_reward rule config" 0 '"coherence":0\.3.*"words50":0\.3' "$out" "$rc"

# ---- grpo_train: bad inputs, one clear error each, nothing written
out=$("$bin/grpo_train" "$tmp/model" --set train_data=/nonexistent/x.jsonl --set output_dir="$tmp/bad1" 2>&1); rc=$?
check "train unreadable data" 1 "config key 'train_data' \\(--set\\): '/nonexistent/x.jsonl': no such file" "$out" "$rc"
check_that "nothing written for bad data" test ! -e "$tmp/bad1"
out=$("$bin/grpo_train" "$tmp/model" --set enable_thinking=false --set output_dir="$tmp/bad2" 2>&1); rc=$?
check "train enable_thinking without the switch" 1 "config key chat_template_kwargs: 'enable_thinking' is not a variable of the chat template built-in ChatML \\(.*has no chat template\\)" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --set chat_template_kwargs='[true]' --set output_dir="$tmp/bad2" 2>&1); rc=$?
check "train chat_template_kwargs not a map" 1 "config key 'chat_template_kwargs' \\(--set\\): expected a map such as \\{enable_thinking: false\\}" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --set chat_template=no/such.jinja --set output_dir="$tmp/bad2" 2>&1); rc=$?
check "train chat_template path missing" 1 "config key 'chat_template' \\(--set\\): '[^']*': no such file \\(expected auto, chatml or the path of an existing .jinja file\\)" "$out" "$rc"
printf '{%% for m in messages %%}{{ m.content }\n' > "$tmp/broken.jinja"
out=$("$bin/grpo_train" "$tmp/model" --set chat_template="$tmp/broken.jinja" --set output_dir="$tmp/bad2" 2>&1); rc=$?
check "train chat template that does not parse" 1 "broken.jinja:1:[0-9]+: " "$out" "$rc"
check_that "no model loaded for a bad template" bash -c "! grep -q 'Loading tokenizer' <<< \"\$1\"" _ "$out"
# A template no hand-written renderer knew (Mistral-like) is run as it is; --dry-run shows the first prompt.
mkdir -p "$tmp/mistral" && cp "$tmp/model"/* "$tmp/mistral/"
printf '{"chat_template": "{%% for m in messages %%}[INST] {{ m.content }} [/INST]{%% endfor %%}"}' > "$tmp/mistral/tokenizer_config.json"
out=$("$bin/grpo_train" "$tmp/mistral" --dry-run --set system_prompt=Solve. --set output_dir="$tmp/bad3" 2>&1); rc=$?
check "train dry run shows the rendered prompt" 0 "as the model reads it \\([0-9]+ tokens; chat template .*tokenizer_config.json: field \"chat_template\"\\):$" "$out" "$rc"
check "train dry run prompt text" 0 "^\\[INST\\] Solve\\. \\[/INST\\]\\[INST\\] Natalia sold clips" "$out" "$rc"
check_that "nothing written for a bad template or a dry run" test ! -e "$tmp/bad2" -a ! -e "$tmp/bad3"

# ---- a TRL user's first day: a checkpoint evaluated as trained, TRL's key names, gold-less data, -c twice
tiny=(data/tiny-model -c configs/tiny_demo.yaml --set max_steps=2 --set eval_limit=24 --set eval_samples=2 --set prompts_per_step=4)
"$bin/grpo_train" "${tiny[@]}" --set output_dir="$tmp/first" > "$tmp/first.log" 2>&1
acc() { python3 -c 'import json,sys; a=json.load(sys.stdin); a=a.get("after", a); print(a["greedy_strict"], a["greedy_flexible"], a["sampled"], a["n"])'; }
want=$(acc < "$tmp/first/summary.json" 2>/dev/null)
out=$("$bin/grpo_eval" "$tmp/first/checkpoint-2" 2>"$tmp/first-eval.err" | acc 2>&1); rc=$?
check "eval a checkpoint as it was trained (no flags)" 0 "^${want//./\\.}$" "$out" "$([[ -n "$want" ]] && echo $rc || echo 1)"
check "eval says what it uses" 0 "settings: the checkpoint's training config \(.*/first/config\.yaml\)" "$(cat "$tmp/first-eval.err")" 0
check "eval says its data and prompt" 0 "data: data/tiny-math/test\.jsonl, 24 questions; system prompt: 'Solve\.'" "$(cat "$tmp/first-eval.err")" 0
check "the console's reward is metrics.jsonl's" 0 "^step 1/2 \| reward_mean [0-9.]+( \(dynamic_sampling/reward_mean_all [0-9.]+\))? \| accuracy [0-9.]+ \|" "$(cat "$tmp/first.log")" 0
check_that "samples are logged at step 1" test -s "$tmp/first/samples.jsonl"
printf 'num_generations: 4\nmax_completion_length: 64\ngradient_accumulation_steps: 2\nper_device_train_batch_size: 8\nepsilon_high: 0.28\nloss_type: dr_grpo\nadam_epsilon: 1.0e-7\nnum_train_epochs: 2\nlr_scheduler_type: cosine\nlora_r: 16\neval_steps: 10\nbf16: true\nmax_prompt_length: 200\nepsilon: 0.1\nreport_to: tensorboard\n' > "$tmp/trl.yaml"
printf 'group_size: 4\nmax_new_tokens: 64\ngrad_accum: 2\nprompts_per_step: 4\nclip_eps_high: 0.28\nloss_aggregation: dr_grpo\nadam_eps: 1.0e-7\nnum_epochs: 2\nlr_schedule: cosine\nlora_rank: 16\neval_every: 10\ndtype: bfloat16\nmax_prompt_tokens: 200\nclip_eps_low: 0.1\n' > "$tmp/ours.yaml"
a=$("$bin/grpo_train" "$tmp/model" -c "$tmp/trl.yaml" --print-config 2>"$tmp/trl.err"); b=$("$bin/grpo_train" "$tmp/model" -c "$tmp/ours.yaml" --print-config 2>&1)
check_that "TRL's names resolve to the same config as ours" test "$a" == "$b"
check "TRL names are said once each" 0 "TRL's per_device_train_batch_size .* is prompts_per_step 4 here: per_device_train_batch_size 8 x gradient_accumulation_steps 2 x WORLD_SIZE 1 = 16 completions a step, / group_size 4" "$(cat "$tmp/trl.err")" 0
out=$("$bin/grpo_train" "$tmp/model" --set num_generation=8 2>&1); rc=$?
check "a misspelt TRL name suggests ours" 1 "unknown config key 'num_generation' \(--set\); did you mean 'group_size' \(TRL's num_generations\)\?" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --set use_vllm=true 2>&1); rc=$?
check "a TRL name that means something else" 1 "config key 'use_vllm' \(--set\): TRL's setting means something else here" "$out" "$rc"
printf '{"prompt": "Write a haiku"}\n{"prompt": "Write a poem about rain"}\n' > "$tmp/haiku.jsonl"
out=$("$bin/grpo_train" "${tiny[@]}" -c configs/rewards/words_connectives.yaml --set train_data="$tmp/haiku.jsonl" --set reward_weights.correctness=0 --set eval_samples=0 --set output_dir="$tmp/haiku" 2>&1); rc=$?
check "gold-less prompts train with rule rewards" 0 "step 2/2 \| reward" "$out" "$rc"
out=$("$bin/grpo_train" "${tiny[@]}" --set train_data="$tmp/haiku.jsonl" --set output_dir="$tmp/haiku2" 2>&1); rc=$?
check "a gold-less line with correctness weighted names the line" 1 "haiku\.jsonl:1: no gold \(fields \"gold\", \"answer\" or \"solution\"\), and it is needed: reward_weights\.correctness is not 0" "$out" "$rc"
printf 'group_size: 4\nseed: 1\n' > "$tmp/c1.yaml"; printf 'seed: 2\n' > "$tmp/c2.yaml"
out=$("$bin/grpo_train" "$tmp/model" -c "$tmp/c1.yaml" -c "$tmp/c2.yaml" --print-config 2>&1); rc=$?
check "two -c files merge in order (first)" 0 "^group_size: 4 " "$out" "$rc"
check "two -c files merge in order (later wins)" 0 "^seed: 2 " "$out" "$rc"
mkdir -p "$tmp/noweights" && cp "$tmp/model"/*.json "$tmp/noweights/" && rm -f "$tmp/noweights"/model.safetensors*
out=$("$bin/grpo_train" "$tmp/noweights" --dry-run --set eval_limit=4 2>&1); rc=$?
check "dry run without weights is an error" 1 "noweights: no model.safetensors or model.safetensors.index.json" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=4 2>&1); rc=$?
check "dry run checks the weights' shapes" 0 "weights: the [0-9]+ tensors config.json implies are there with its shapes .*; not checked: their values" "$out" "$rc"
out=$("$bin/grpo_train" --shapes configs/models/qwen2.5-1.5b.json 2>&1); rc=$?
check "--shapes without --dry-run is an error" 1 "grpo_train: error: --shapes 'configs/models/qwen2.5-1.5b.json' plans memory only: give --dry-run with it" "$out" "$rc"
out=$("$bin/grpo_train" --dry-run --shapes configs/models/qwen3-0.6b.json --set device=cpu --set dtype=float32 2>&1); rc=$?
check "--dry-run --shapes plans a model without its directory" 0 "^Memory plan for the shapes in configs/models/qwen3-0.6b.json .*  model: qwen3, 596.0 M params, Float on cpu" "$(tr -d '\n' <<<"$out")" "$rc"
abs_bin=$(cd "$bin" && pwd) root=$PWD
out=$(cd "$tmp" && "$abs_bin/grpo_train" -c "$root/configs/tiny_demo.yaml" --dry-run --set eval_limit=4 2>&1); rc=$?
check "a config run from another directory finds its model and data" 0 "train: [0-9]+ examples, eval: 4 examples" "$out" "$rc"
mkdir -p "$tmp/proj/configs" && printf 'train_data: data/nowhere.jsonl\n' > "$tmp/proj/configs/lost.yaml"
out=$(cd "$tmp" && "$abs_bin/grpo_train" "$root/data/tiny-model" -c "$tmp/proj/configs/lost.yaml" --dry-run 2>&1); rc=$?
check "a missing relative path names every place looked in" 1 "config key 'train_data' \\(.*lost\.yaml:1\\): 'data/nowhere\.jsonl': no such file; looked in .*/data/nowhere\.jsonl, .*/proj/configs/data/nowhere\.jsonl, .*/proj/data/nowhere\.jsonl, " "$out" "$rc"
if cmake --install "$bin" --prefix "$tmp/inst" > "$tmp/install.log" 2>&1; then
  out=$(cd / && "$tmp/inst/bin/grpo_train" -c "$tmp/inst/share/grpo_train/configs/tiny_demo.yaml" --dry-run --set eval_limit=4 2>&1); rc=$?
  check "cmake --install: the installed program runs an installed config from /" 0 "train: [0-9]+ examples, eval: 4 examples" "$out" "$rc"
  out=$(cd / && "$tmp/inst/bin/grpo_eval" --help 2>&1); rc=$?
  check "cmake --install: grpo_eval starts" 0 "Usage" "$out" "$rc"
else
  check "cmake --install" 0 "" "$(cat "$tmp/install.log")" 1
fi
check_that "docs/configuration.md is what grpo_train --help-config prints" diff <("$bin/grpo_train" --help-config) docs/configuration.md
printf '%s\n' '{"prompt": "What is 2+3?", "responses": ["2+3=5\n#### 5", "2+3=6\n#### 6"], "rewards": [1, 0]}' \
  '{"prompt": "What is 4+4?", "responses": ["4+4=7\n#### 7", "4+4=8\n#### 8"], "rewards": [0, 1]}' > "$tmp/groups.jsonl"
for objective in ppo softmax; do
  out=$("$bin/grpo_sft" data/tiny-model --offline-groups "$tmp/groups.jsonl" --objective $objective --set max_steps=2 --set prompts_per_step=2 \
    --set grad_accum=1 --set eval_data=none --set output_dir="$tmp/offline-$objective" 2>&1); rc=$?
  check "grpo_sft --offline-groups ($objective) trains 2 steps on scored groups" 0 "offline step 2/2 \\| loss " "$out" "$rc"
  check_that "grpo_sft --offline-groups ($objective): a metrics line a step" test "$(wc -l < "$tmp/offline-$objective/metrics.jsonl")" = 2
done
out=$("$bin/grpo_sft" data/tiny-model --offline-groups "$tmp/groups.jsonl" --data data/tiny-math/sft.jsonl 2>&1); rc=$?
check "grpo_sft: --data and --offline-groups exclude each other" 1 "grpo_sft: error: .*excludes" "$out" "$rc"
for t in grpo_train grpo_eval grpo_generate grpo_sft grpo_tokenize grpo_reward grpo_synth grpo_export; do
  out=$("$bin/$t" --version 2>&1); rc=$?
  check "$t --version" 0 "^$t [0-9]+\.[0-9]+\.[0-9]+, LibTorch [0-9.]+" "$out" "$rc"
done
out=$("$bin/grpo_train" "$tmp/model" --no-such-option 2>&1); rc=$?
check "a parse error is one tool error line" 1 "^grpo_train: error: The following argument was not expected: --no-such-option" "$out" "$rc"

# ---- models from a (fake) Hugging Face cache: refs/main and a tag, by every tool's model argument
hub="$tmp/hub/models--org--tiny"
mkdir -p "$hub/refs" "$hub/snapshots/c0ffee" "$hub/snapshots/beef01"
cp "$tmp/model"/* "$hub/snapshots/c0ffee/" && cp "$tmp/model"/* "$hub/snapshots/beef01/"
printf c0ffee > "$hub/refs/main"; printf beef01 > "$hub/refs/v1"
out=$(HF_HUB_CACHE="$tmp/hub" "$bin/grpo_train" org/tiny --set output_dir="$tmp/hubrun" --dry-run 2>&1); rc=$?
check "train from the cache" 0 "Model org/tiny: .*/models--org--tiny/snapshots/c0ffee \\(Hugging Face cache\\)" "$out" "$rc"
out=$(HF_HUB_CACHE="$tmp/hub" "$bin/grpo_generate" org/tiny@v1 --prompt-ids 1,2,3 --greedy --print-ids --max-new-tokens 3 2>&1); rc=$?
check "generate from the cache at a tag" 0 "loaded .*/snapshots/beef01" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" -c configs/gsm8k_qwen2.5_1.5b.yaml --set max_prompt_tokens=1024 --dry-run 2>&1); rc=$?
check "dry-run of a GPU config without a GPU plans its device" 0 "BFloat16 on cuda:0.*memory estimate.*planned for cuda:0: CUDA is not available" "$(tr '\n' ' ' <<<"$out")" "$rc"
out=$(HF_HUB_CACHE="$tmp/hub" "$bin/grpo_generate" org/missing --prompt-ids 1,2 2>&1); rc=$?
check "generate a model not in the cache" 1 "org/missing: not a directory, and not in the Hugging Face cache \\(looked for .*models--org--missing.*hf download org/missing" "$out" "$rc"
mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
if [[ $(id -u) != 0 ]]; then
  out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=1 --set output_dir="$tmp/ro/run" 2>&1); rc=$?
  check "train output dir not writable" 1 "output_dir '.*' is not writable" "$out" "$rc"
fi
touch "$tmp/file_not_dir"
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set max_steps=1 --set output_dir="$tmp/file_not_dir/run" 2>&1); rc=$?
check "train output dir under a file" 1 "output_dir '.*file_not_dir/run' is not writable" "$out" "$rc"
"$bin/tests/make_test_model" "$tmp/other" odd
cp "$ck/trainer_state.json" "$tmp/other/" 2>/dev/null
out=$("$bin/grpo_train" "$tmp/model" "${small[@]}" --set output_dir="$tmp/run2" --resume "$tmp/other" 2>&1); rc=$?
check "resume from another shape" 1 "is a different model shape" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/missing_model" 2>&1); rc=$?
check "train missing model dir 2" 1 "missing_model: model directory does not exist" "$out" "$rc"

# ---- grpo_eval
printf '%s\n' '{"question": "What is 2+2?", "answer": "#### 4"}' '{"question": "What is 3+3?", "answer": "#### 6"}' > "$tmp/ev.jsonl"
out=$("$bin/grpo_eval" "$tmp/model" --data "$tmp/ev.jsonl" --samples 2 --samples-out "$tmp/ev_out.jsonl" --set max_new_tokens=4 2>&1); rc=$?
check "eval summary line" 0 '^\{"greedy_flexible":0\.0,"greedy_strict":0\.0,"n":2,"sampled":0\.0,"seconds":' "$out" "$rc"
check_that "eval samples-out" test "$(wc -l < "$tmp/ev_out.jsonl")" = 2
out=$("$bin/grpo_eval" "$tmp/model" --data "$tmp/nope.jsonl" 2>&1); rc=$?
check "eval missing data" 1 "config key 'eval_data' \\(--data\\): '[^']*nope.jsonl': no such file" "$out" "$rc"

# ---- grpo_reward
out=$(printf '%s\n' '{"completion": "<think>48/2=24</think><answer>72</answer>", "answer": "x\n#### 72"}' \
                    '{"completion": "The answer is 1,080", "gold": 1080}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward line 1" 0 '^\{"correct":true,"extracted":72.0,"reward":1.100000023841858,"rewards":\{"correctness":1.0,"digit":1.0,"format":1.0,"length":0.0,"overlong":0.0,"tags":1.0\},"span":"72"\}$' "$out" "$rc"
check "reward line 2 strict" 0 '"correct":false,"extracted":null' "$out" "$rc"
out=$(echo '{"completion": "The answer is 1,080", "gold": 1080}' | "$bin/grpo_reward" --mode flexible --weights format=0,tags=1 2>&1); rc=$?
check "reward flexible + weights" 0 '"correct":true,"extracted":1080.0,"reward":1.0,' "$out" "$rc"
out=$(printf '%s\n' '{"completion": "<answer>1</answer>", "gold": 1}' 'not json' '{"completion": "x", "gold": 2}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward bad line named" 1 "stdin:2: invalid JSON" "$out" "$rc"
check "reward earlier lines kept" 1 '^\{"correct":true' "$out" "$rc"
[[ $(grep -c '^{' <<<"$out") == 1 ]] || { echo "FAIL reward wrote output past the bad line"; fails=$((fails+1)); }
out=$(echo '{"completion": "x"}' | "$bin/grpo_reward" 2>&1); rc=$?
check "reward missing gold" 1 'stdin:1: missing field "gold" \(format: prompt \+ gold, or an "answer" / "solution" holding it\); fields found: "completion"' "$out" "$rc"
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
out=$("$bin/grpo_generate" $ts --score-ids 1,80,147 --logits-out "$tmp/logits.safetensors" 2>/dev/null); rc=$?
check "generate score ids + logits file" 0 "^-[0-9]+\.[0-9]{6},-[0-9]+\.[0-9]{6}$" "$out" "$rc"
# The file holds (3, 2048) F32 logits: an 8-byte header length, the JSON header, 3*2048*4 bytes.
size=$(stat -c %s "$tmp/logits.safetensors" 2>/dev/null || echo 0)
hdr=$(head -c 200 "$tmp/logits.safetensors" 2>/dev/null | tr -d '\0' | grep -ao '"logits":{[^}]*}')
check "logits file header" 0 '"data_offsets":\[0,24576\],"dtype":"F32","shape":\[3,2048\]' "$hdr" "$rc"
check_that "logits file size $size" test "$size" -gt 24576 -a "$size" -lt $((24576 + 200))
out=$("$bin/grpo_generate" $ts --prompt-ids 1,80,147,201,282,215,286,64,207,161 --max-new-tokens 40 --greedy --print-ids --ignore-eos --decode-mode static 2>/dev/null); rc=$?
check "generate static decode ids" 0 "^152,64,101,829,463,444,698,100,258,461,715,299,93,64,101,829,1361,598,1475,303,1864,617,242,1407,251,64,101,829,195,114,122,216,1738,585,965,380,160,1690,2012,467$" "$out" "$rc"
out=$("$bin/grpo_generate" $ts --prompt-ids 1,80,147,201,282,215,286,64,207,161 --max-new-tokens 5 --greedy --print-ids --ignore-eos --attention sdpa 2>&1); rc=$?
if [[ $rc == 0 ]]; then check "generate sdpa ids" 0 "^152,64,101,829,463$" "$out" "$rc"
else check "generate sdpa needs LibTorch 2" 1 "attention sdpa needs LibTorch >= 2.0 \(scaled_dot_product_attention\); this build uses LibTorch 1\." "$out" "$rc"; fi
out=$("$bin/grpo_generate" $ts --prompt-ids 1,2 --device cpu --decode-mode cuda_graph 2>&1); rc=$?
check "generate graph decode needs cuda" 1 "decode_mode cuda_graph needs a CUDA build of grpo_train and a CUDA device \(model is on cpu\)" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --set device=cpu --set decode_mode=cuda_graph --set output_dir="$tmp/graph-run" 2>&1); rc=$?
check "train graph decode needs cuda" 1 "decode_mode cuda_graph needs a CUDA build" "$out" "$rc"
check_that "graph decode error wrote nothing" test ! -e "$tmp/graph-run"
out=$("$bin/grpo_train" "$tmp/model" --set attention=flash 2>&1); rc=$?
check "train attention choices" 1 "config key 'attention' \(--set\): expected eager or sdpa, found 'flash'" "$out" "$rc"
out=$("$bin/grpo_generate" /nonexistent/model --prompt-ids 1,2 2>&1); rc=$?
check "generate missing dir" 1 "/nonexistent/model: model directory does not exist" "$out" "$rc"

# ---- every numeric option range-checked: one line naming the option, expected vs found, exit 1
out=$("$bin/grpo_train" "$tmp/model" --stop-after -3 2>&1); rc=$?
check "train --stop-after negative" 1 "^grpo_[a-z]+: error: --stop-after: expected an integer >= 0, found -3$" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --stop-after 99999999999999999999 2>&1); rc=$?
check "train --stop-after too large" 1 "^grpo_[a-z]+: error: --stop-after: out of range: expected an integer >= 0, found 99999999999999999999$" "$out" "$rc"
out=$("$bin/grpo_eval" "$tmp/model" --limit -1 2>&1); rc=$?
check "eval --limit negative" 1 "^grpo_[a-z]+: error: --limit: expected an integer in \[0, 2147483647\], found -1$" "$out" "$rc"
out=$("$bin/grpo_generate" "$tmp/model" --top-k -1 2>&1); rc=$?
check "generate --top-k negative" 1 "^grpo_[a-z]+: error: --top-k: expected an integer in \[0, 2147483647\], found -1$" "$out" "$rc"
out=$("$bin/grpo_generate" "$tmp/model" --max-new-tokens -5 2>&1); rc=$?
check "generate --max-new-tokens negative" 1 "^grpo_[a-z]+: error: --max-new-tokens: expected an integer in \[1, 1048576\], found -5$" "$out" "$rc"
out=$("$bin/grpo_generate" "$tmp/model" --top-p 1.5 2>&1); rc=$?
check "generate --top-p above 1" 1 "^grpo_[a-z]+: error: --top-p: expected a number in \[1e-09, 1\], found 1.5$" "$out" "$rc"
out=$("$bin/grpo_tokenize" --tokenizer "$tmp/model" --threads -3 2>&1); rc=$?
check "tokenize --threads negative" 1 "^grpo_[a-z]+: error: --threads: expected an integer in \[0, 1024\], found -3$" "$out" "$rc"
out=$("$bin/grpo_reward" --length-target -5 </dev/null 2>&1); rc=$?
check "reward --length-target negative" 1 "^grpo_[a-z]+: error: --length-target: expected an integer in \[1, 2147483647\], found -5$" "$out" "$rc"
out=$("$bin/grpo_synth" --out "$tmp/synth" --max-number -5 2>&1); rc=$?
check "synth --max-number negative" 1 "^grpo_[a-z]+: error: --max-number: expected an integer in \[1, 1000000000\], found -5$" "$out" "$rc"
check_that "synth wrote nothing" test ! -e "$tmp/synth"
out=$("$bin/grpo_train" "$tmp/model" --no-such-option 2>&1); rc=$?
check "train unknown option exits 1" 1 "^grpo_train: error: The following argument was not expected: --no-such-option" "$out" "$rc"

# ---- LoRA: settings checked with the config, grpo_export's errors
out=$("$bin/grpo_train" "$tmp/model" --set lora_rank=8 --set lora_target_modules=q_proj,qproj 2>&1); rc=$?
check "lora unknown target" 1 "config key 'lora_target_modules' \(--set\): expected a comma-separated list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj \(fused: qkv_proj, gate_up_proj\), found q_proj,qproj" "$out" "$rc"
out=$("$bin/grpo_train" "$tmp/model" --set lora_rank=8 --set beta=0.04 --set sync_ref_model=true 2>&1); rc=$?
check "lora with sync_ref_model" 1 "config key 'sync_ref_model' \(--set\): expected false with lora_rank > 0" "$out" "$rc"
out=$("$bin/grpo_train" --help 2>&1); rc=$?
check "train help lists lora" 0 "lora_rank +\[0\]" "$out" "$rc"
out=$("$bin/grpo_export" "$tmp/model" --adapter "$tmp/none" --out "$tmp/merged" 2>&1); rc=$?
check "export needs --merge" 1 "^grpo_export: error: --merge is required" "$out" "$rc"
out=$("$bin/grpo_export" "$tmp/model" --adapter "$tmp/none" --merge --out "$tmp/merged" 2>&1); rc=$?
check "export missing adapter" 1 "^grpo_export: error: $tmp/none/adapter_config.json" "$out" "$rc"
check_that "export wrote nothing" test ! -e "$tmp/merged"

# ---- several processes: the launcher's environment checked before anything loads; torchrun itself
out=$(RANK=0 "$bin/grpo_train" "$tmp/model" --dry-run 2>&1); rc=$?
check "dist RANK without WORLD_SIZE" 1 "environment: RANK is set but WORLD_SIZE is not" "$out" "$rc"
out=$(RANK=0 WORLD_SIZE=3 "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=4 2>&1); rc=$?
check "dist batch not divisible" 1 "prompts_per_step = 8 is not a multiple of WORLD_SIZE = 3" "$out" "$rc"
out=$(RANK=0 WORLD_SIZE=2 "$bin/grpo_train" "$tmp/model" --dry-run --set eval_limit=4 --set dist_backend=nccl 2>&1); rc=$?
check "dist nccl on cpu" 1 "config key 'dist_backend': nccl" "$out" "$rc"
out=$(RANK=1 WORLD_SIZE=2 MASTER_PORT=9 "$bin/grpo_train" "$tmp/model" --set eval_limit=4 --set dist_timeout_s=2 --set output_dir="$tmp/dist-none" 2>&1); rc=$?
check "dist store unreachable" 1 "^grpo_train\[rank 1\]: error: rank 1: cannot reach the rendezvous store at 127.0.0.1:9 .*within dist_timeout_s = 2 s" "$out" "$rc"
# torchrun from the pip leg's .venv or PATH, of the same PyTorch major version as this build's
# LibTorch: torch 2.x's store protocol is not 1.x's, and a 1.13 grpo_train waits on a 2.x agent's
# store until dist_timeout_s. (Debian 12's torch 1.13 spells the flag --no_python and dies at start
# without --redirects 1 --tee 1.)
# A torchrun that exists may still not start (Debian 13's python3-torch: its c10d store needs libuv):
# each candidate first starts two ranks of /bin/true, and is skipped with its reason when it cannot.
torchrun="" no_python="" skipped=""
major=$("$bin/grpo_train" --version | sed -n 's/.*LibTorch \([0-9]*\)\..*/\1/p')
for t in "$bin/../.venv/bin/torchrun" "$(command -v torchrun || true)"; do
  [[ -n "$t" && -x "$t" ]] || continue
  py=$(head -1 "$t" | sed 's/^#! *//')
  [[ "$($py -c 'import torch; print(torch.__version__.split(".")[0])' 2>/dev/null)" == "$major" ]] || continue
  np=--no-python
  "$t" --help 2>&1 | grep -q -- --no-python || np="--no_python --redirects 1 --tee 1"
  if timeout 120 "$t" --standalone --nproc_per_node=2 $np /bin/true > "$tmp/torchrun-smoke.log" 2>&1; then
    torchrun="$t" no_python="$np"
    break
  fi
  skipped="$t cannot start two ranks of /bin/true ($(grep -E '[A-Za-z]+Error' "$tmp/torchrun-smoke.log" | tail -1 | cut -c1-160))"
done
if [[ -n "$torchrun" ]]; then
  out=$("$torchrun" --standalone --nproc_per_node=2 $no_python "$bin/grpo_train" data/tiny-model -c configs/tiny_demo.yaml \
        --set max_steps=2 --set eval_limit=8 --set prompts_per_step=4 --set group_size=4 --set output_dir="$tmp/torchrun" 2>&1); rc=$?
  check "torchrun 2 ranks" 0 "Data parallel: 2 ranks \(gloo\), 2 of the 4 prompts per step on each" "$out" "$rc"
  check "torchrun one voice" 0 "Training completed!" "$out" "$rc"
  check_that "torchrun metrics: 2 steps" test "$(wc -l < "$tmp/torchrun/metrics.jsonl")" = 2
  check_that "torchrun checkpoint" test -f "$tmp/torchrun/checkpoint-2/trainer_state.json"
elif [[ -n "$skipped" ]]; then
  echo "skip torchrun: $skipped; scripts/launch.sh (below) runs the ranks on such a machine"
else
  echo "skip torchrun: none of PyTorch $major.x in .venv/bin or PATH (scripts/venv.sh makes .venv for the pip leg)"
fi
# scripts/launch.sh: torchrun's environment without torchrun, on every LibTorch
out=$(scripts/launch.sh -n 2 --port $((20000 + RANDOM % 20000)) -- "$bin/grpo_train" data/tiny-model -c configs/tiny_demo.yaml \
      --set max_steps=2 --set eval_limit=8 --set prompts_per_step=4 --set group_size=4 --set output_dir="$tmp/launch" 2>&1); rc=$?
check "launch.sh 2 ranks" 0 "Data parallel: 2 ranks \(gloo\), 2 of the 4 prompts per step on each" "$out" "$rc"
check_that "launch.sh metrics: 2 steps" test "$(wc -l < "$tmp/launch/metrics.jsonl")" = 2
out=$(scripts/launch.sh -n 2 --port $((20000 + RANDOM % 20000)) -- "$bin/grpo_train" data/tiny-model --set prompts_per_step=3 --dry-run 2>&1); rc=$?
check "launch.sh: a rank's failure is the exit status" 1 "prompts_per_step = 3 is not a multiple of WORLD_SIZE = 2" "$out" "$rc"
# Tools (issue 34): two ranks with the calculator; tool metrics, transcripts, the report's exchanges
out=$(scripts/launch.sh -n 2 --port $((20000 + RANDOM % 20000)) -- "$bin/grpo_train" data/tiny-tools-model -c configs/tiny_tools_demo.yaml \
      --set max_steps=2 --set eval_limit=8 --set eval_samples=0 --set prompts_per_step=4 --set group_size=4 --set log_samples_every=1 \
      --set output_dir="$tmp/tools" 2>&1); rc=$?
check "tools: 2 ranks train and evaluate with the calculator" 0 "tools: [0-9.]+ calls per answer" "$out" "$rc"
check_that "tools: tool metrics logged" grep -q '"tool_calls_mean":' "$tmp/tools/metrics.jsonl"
check_that "tools: samples show transcripts" grep -q '<tool_response>' "$tmp/tools/samples.jsonl"
check_that "tools: the report shows the exchanges" grep -q '<tool_response>' "$tmp/tools/report.md"
out=$("$bin/grpo_train" data/tiny-model -c configs/tiny_demo.yaml --set 'tools=["calculator"]' --dry-run 2>&1); rc=$?
check "tools: a tokenizer without </tool_call> fails the dry run" 1 "config key 'tools': the tokenizer has no </tool_call> token" "$out" "$rc"
out=$("$bin/grpo_train" data/tiny-tools-model -c configs/tiny_tools_demo.yaml --dry-run 2>&1); rc=$?
check "tools: the dry run measures prompts with the tools' system turn" 0 "longest 1[0-9][0-9] tokens" "$out" "$rc"

echo "$passes passed, $fails failed"
[[ $fails == 0 ]]
