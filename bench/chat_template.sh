#!/usr/bin/env bash
# Chat-template rendering, ours beside transformers' apply_chat_template (jinja2 in its chat-template
# environment), the same prompts: every GSM8K test question as [system, user] with the generation
# prompt, rendered by Qwen3's template on one thread. RUNS runs of each side, alternating; each run
# reports its best pass; the table gives the median and range of renders/s and the ratio.
#   bench/chat_template.sh [build_dir=build] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}" runs="${RUNS:-3}"
py="$(scripts/venv.sh | tail -1)"
echo "# $(date -u +%F), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $("$build"/grpo_train --version | cut -d, -f1-2)"
"$py" -c 'import jinja2, transformers; print(f"# jinja2 {jinja2.__version__}, transformers {transformers.__version__}")'
theirs() {
  "$py" - <<'PY'
import json, time
from transformers.utils.chat_template_utils import _compile_jinja_template
t = _compile_jinja_template(json.load(open("tests/data/qwen3/tokenizer_config.json"))["chat_template"])
qs = [json.loads(l)["question"] for l in open("data/gsm8k/test.jsonl", encoding="utf-8")]
system = "You are a helpful assistant. Solve the math problem step by step."
best = 0
for _ in range(5):
    t0 = time.perf_counter()
    for q in qs:
        t.render(messages=[{"role": "system", "content": system}, {"role": "user", "content": q}], tools=None, documents=None,
                 add_generation_prompt=True)
    best = max(best, len(qs) / (time.perf_counter() - t0))
print(f"{best:.0f}")
PY
}
ours() { OMP_NUM_THREADS=1 "$build"/bench_chat_template --passes 5 | sed -n 's/.*renders\/s \([0-9]*\).*/\1/p'; }
a=() b=()
for ((r = 0; r < runs; ++r)); do a+=("$(ours)"); b+=("$(theirs)"); done
python3 - "${a[*]}" "${b[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print("| renderer | renders/s, median [range] |\n|---|---|")
print(f"| ours (Jinja engine, C++) | {statistics.median(a):,.0f} [{min(a):,.0f}, {max(a):,.0f}] |")
print(f"| transformers (jinja2) | {statistics.median(b):,.0f} [{min(b):,.0f}, {max(b):,.0f}] |")
ratios = [x / y for x, y in zip(a, b)]
print(f"ours / theirs: {statistics.median(ratios):.1f}x [{min(ratios):.1f}, {max(ratios):.1f}] (run by run)")
PY
