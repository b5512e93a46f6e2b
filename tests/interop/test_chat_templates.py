#!/usr/bin/env python3
"""Interop 7: chat templates, ours (the Jinja engine running the template) vs transformers'
apply_chat_template. Part 1, the 13 real templates of tests/data/chat_templates (DeepSeek-R1-Distill,
Qwen2.5 with tools, Qwen3, Llama 3.1/3.2, Gemma 3, Mistral v0.3, Phi-4, Phi-4-mini, SmolLM3, OLMo 2,
Hermes 2 Pro, GLM-5.1), each with the model's special tokens added to the Qwen2.5 tokenizer: every
message list below (and the tool transcripts for templates that render tools) rendered by both; text
and ids equal, or both raise (ours with the template's own message). Part 2, for each template family
(Qwen2.5 ChatML with its default system turn; Qwen3 with enable_thinking true and false; Llama 3.0,
3.1 and 3.2, written out here) and 24 message lists (with and without a system turn, multi-turn with
earlier think blocks, non-ASCII text, contents with surrounding whitespace), our
`grpo_tokenize --chat` text and ids equal
  tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, ...)
and that text's ids (tok(text, add_special_tokens=False)), and the family is recognised from the
template text alone. With tools (issue 34): 4 transcripts of a rollout that called tools (calls,
results, errors, two tools) rendered by `grpo_tokenize --chat` from {"tools", "messages"} against
apply_chat_template(messages, tools=...) with Qwen2.5's tool template (written here) and Qwen3's.
Tokenizers: tests/data/qwen2.5 (Qwen2.5), the same plus Qwen3's four added tokens (Qwen3), the same plus Llama 3's four header tokens (a stand-in for Llama 3's own vocabulary: the
ids test where the markers go).
  test_chat_templates.py BUILD_DIR
"""
import glob
import json
import os
import re
import shutil
import subprocess

from transformers import AutoTokenizer

from common import QWEN25_TEMPLATE, ROOT, bin_dir, check, finish, temp_dir, tool

LLAMA30_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def llama31_template(date_rule):
    return (
        "{{- bos_token }}" + date_rule +
        "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
        "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}"
        "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
        "{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
        "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}"
        "{{- system_message }}{{- \"<|eot_id|>\" }}"
        "{%- for message in messages %}"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


LLAMA31_TEMPLATE = llama31_template("{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}")
LLAMA32_TEMPLATE = llama31_template(
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}"
    "{%- else %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}{%- endif %}")

SYSTEM = "You are a helpful assistant. Think in <think> tags, answer in <answer> tags."
MESSAGE_LISTS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "\nstarts with a newline"}],
    [{"role": "user", "content": "  padded question  \n"}],
    [{"role": "system", "content": "  padded system\n"}, {"role": "user", "content": "q"}],
    [{"role": "user", "content": "Combien coûte un café à 2,50 € ? 答えは何ですか。 Ответ? 🙂"}],
    [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Ünïcödé ñ ß 数学"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Q1"},
     {"role": "assistant", "content": "<think>\nreasoning one\n</think>\n\nA1"}, {"role": "user", "content": "Q2"}],
    [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<think>r</think>A1"},
     {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "<think>\n\nr2\n\n</think>\n\n\nA2"},
     {"role": "user", "content": "Q3"}],
    [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "no thinking here"}, {"role": "user", "content": "again"}],
    [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>only reasoning</think>"},
     {"role": "user", "content": "next"}],
    [{"role": "user", "content": "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
                                 "muffins for her friends every day with four. How much in dollars does she make every day?"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "empty system"}],
    [{"role": "user", "content": "tabs\tand\r\nwindows line ends\r\n"}],
    [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>\nlast turn reasoning\n</think>\n\nfinal"}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "1"}, {"role": "assistant", "content": "2"},
     {"role": "user", "content": "3"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "5"}],
    [{"role": "user", "content": "x" * 300}],
    [{"role": "user", "content": "numbers 1,234,567 and 3/4 and \\frac{1}{2} and \\boxed{7}"}],
    [{"role": "user", "content": "code:\n```python\nprint('hi')\n```\n"}],
    [{"role": "system", "content": "multi\nline\nsystem"}, {"role": "user", "content": "multi\n\nline\n\n\nuser"}],
    [{"role": "user", "content": "中文问题：小明有3个苹果，又买了4个，一共有几个？"}],
    [{"role": "user", "content": " "}],
]


# Qwen2.5-Instruct's whole chat template, the tool branches included (common.py's QWEN25_TEMPLATE is
# the part without tools).
QWEN25_TOOLS_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}"
    "{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}{%- endif %}"
    "{{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with "
    "function signatures within <tools></tools> XML tags:\\n<tools>\" }}"
    "{%- for tool in tools %}{{- \"\\n\" }}{{- tool | tojson }}{%- endfor %}"
    "{{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}"
    "{%- else %}{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == \"assistant\" %}{{- '<|im_start|>' + message.role }}"
    "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}"
    "{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}"
    "{%- endif %}{{- '\\n<tool_call>\\n{\"name\": \"' }}{{- tool_call.name }}{{- '\", \"arguments\": ' }}"
    "{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == \"tool\" %}"
    "{%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}"
    "{%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")

CALCULATOR = {"type": "function", "function": {"name": "calculator", "description": "Evaluate an arithmetic expression.",
                                               "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                                                              "required": ["expression"]}}}
LOOKUP = {"type": "function", "function": {"name": "lookup", "description": "Find a fact (units: \u00b0C).",
                                           "parameters": {"type": "object", "properties": {"q": {"type": "string"},
                                                                                            "k": {"type": "integer", "minimum": 1}},
                                                          "required": ["q"]}}}


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


# Transcripts of a rollout with tools: (tools, messages); the last ones end where decoding resumes.
TOOL_TRANSCRIPTS = [
    ([CALCULATOR], [{"role": "user", "content": "What is 12 * 34?"},
                    {"role": "assistant", "content": "", "tool_calls": [call("calculator", expression="12*34")]},
                    {"role": "tool", "content": "408"},
                    {"role": "assistant", "content": "12 * 34 = 408.\n#### 408"}]),
    ([CALCULATOR], [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 12 * 34?"},
                    {"role": "assistant", "content": "Let me use the calculator.", "tool_calls": [call("calculator", expression="12*34")]},
                    {"role": "tool", "content": "408"}]),
    ([CALCULATOR, LOOKUP], [{"role": "user", "content": "Two at once: 7/4 and 1/0, then the boiling point."},
                            {"role": "assistant", "content": "", "tool_calls": [call("calculator", expression="7/4"),
                                                                               call("calculator", expression="1/0")]},
                            {"role": "tool", "content": "1.75"}, {"role": "tool", "content": "error: division by zero"},
                            {"role": "assistant", "content": "", "tool_calls": [call("lookup", q="水の沸点", k=1)]},
                            {"role": "tool", "content": "{\"answer\": \"100 \u00b0C\"}"},
                            {"role": "assistant", "content": "1.75, undefined, and 100 °C."}]),
    ([LOOKUP], [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [call("lookup", q="x")]},
                {"role": "tool", "content": "{\"error\": \"unknown tool 'search'\"}"}]),
]


def write_dir(root, name, template, extra_tokens, bos=None):
    """A tokenizer directory: tests/data/qwen2.5's tokenizer.json plus `extra_tokens` as added tokens
    (special when they are Llama's markers), and a tokenizer_config.json holding `template`."""
    d = os.path.join(root, name)
    os.makedirs(d)
    tj = json.load(open(os.path.join(ROOT, "tests/data/qwen2.5/tokenizer.json"), encoding="utf-8"))
    next_id = 151665
    for text, special in extra_tokens:
        tj["added_tokens"].append({"id": next_id, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                                   "normalized": False, "special": special})
        next_id += 1
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    if name == "qwen3":
        shutil.copy(os.path.join(ROOT, "tests/data/qwen3/tokenizer_config.json"), d)
    else:
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template, "eos_token": "<|im_end|>",
               "pad_token": "<|endoftext|>", "bos_token": bos, "add_bos_token": False}
        json.dump(cfg, open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8"))
    return d


def compare(name, d, kwargs, thinking, cases, line_of):
    """Our grpo_tokenize --chat against apply_chat_template for each (messages, extra kwargs) case:
    the text, and its ids as the Hugging Face tokenizer encodes it."""
    tok = AutoTokenizer.from_pretrained(d)
    stdin = "".join(json.dumps(line_of(m, extra), ensure_ascii=False) + "\n" for m, extra in cases)
    ours = [json.loads(line) for line in tool("grpo_tokenize", "--tokenizer", d, "--chat", "--enable-thinking", thinking,
                                              stdin=stdin).splitlines()]
    same_text = same_ids = 0
    for (messages, extra), mine in zip(cases, ours):
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra, **kwargs)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        same_text += check(mine["text"] == text, f"{name}: text differs for {messages!r}:\n ours   {mine['text']!r}\n theirs {text!r}")
        same_ids += check(mine["ids"] == ids, f"{name}: ids differ for {messages!r}")
    check(len(ours) == len(cases), f"{name}: {len(ours)} answers for {len(cases)} lines")
    print(f"| {name} | {len(cases)} | {same_text} | {same_ids} |", flush=True)


MARKER = re.compile(r"<\|[^|\s]+\|>|<｜[^｜]+｜>|\[/?[A-Z_]+\]|\[gMASK\]|<sop>|<(?:start|end)_of_turn>|<bos>|<eos>|</?s>")


def write_real_dir(root, name, spec):
    """A tokenizer directory for one real template: Qwen2.5's tokenizer.json plus the template's markers
    (and its bos/eos) as special added tokens, and a tokenizer_config.json holding the template."""
    d = os.path.join(root, "real-" + name)
    os.makedirs(d)
    tj = json.load(open(os.path.join(ROOT, "tests/data/qwen2.5/tokenizer.json"), encoding="utf-8"))
    have = {t["content"] for t in tj["added_tokens"]}
    markers = sorted(set(MARKER.findall(spec["template"])) | {t for t in (spec["bos_token"], spec["eos_token"]) if t})
    next_id = 151665
    vocab = tj["model"]["vocab"]
    for text in markers:
        if text in have:
            continue
        # A marker that is already a vocabulary entry ("<s>" is one of Qwen's) keeps its id, as transformers keeps it.
        tj["added_tokens"].append({"id": vocab.get(text, next_id), "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                                   "normalized": False, "special": True})
        next_id += text not in vocab
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": spec["template"], "add_bos_token": False}
    for k in ("bos_token", "eos_token"):
        if spec[k]:
            cfg[k] = spec[k]
    json.dump(cfg, open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8"), ensure_ascii=False)
    return d


def ours(d, kwargs, lines):
    """grpo_tokenize --chat over `lines`: a list of {"text", "ids"} (one per line), or (None, stderr) when it failed."""
    r = subprocess.run([os.path.join(bin_dir(), "grpo_tokenize"), "--tokenizer", d, "--chat", "--chat-template-kwargs", json.dumps(kwargs)],
                       input="".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    if r.returncode != 0:
        return None, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()], None


def compare_real(root):
    """Part 1: every real template on every message list (plus tools where it renders them). The cases
    transformers renders go through one grpo_tokenize run; each one it raises for, through its own run."""
    print("| real template | cases | equal text and ids | both raise |\n|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/data/chat_templates/*.json"))):
        spec = json.load(open(path, encoding="utf-8"))
        name = os.path.basename(path)[:-5]
        d = write_real_dir(root, name, spec)
        tok = AutoTokenizer.from_pretrained(d)
        kwargs = {k: v for k, v in spec["render_kwargs"].items() if k != "tools"}
        fixed_tools = spec["render_kwargs"].get("tools")
        cases = [(m, fixed_tools) for m in MESSAGE_LISTS]
        if "tools" in spec["template"]:
            cases += [(m, t if fixed_tools is None else fixed_tools) for t, m in TOOL_TRANSCRIPTS]
        rendered, raised_cases = [], []
        for messages, tools in cases:
            line = {"messages": messages, **({"tools": tools} if tools is not None else {})}
            try:
                text = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False, **kwargs)
                rendered.append((line, text, tok(text, add_special_tokens=False)["input_ids"]))
            except Exception as e:  # noqa: BLE001 - the template's own error is an expected answer
                raised_cases.append((line, str(e)))
        same = raised = 0
        got, err = ours(d, kwargs, [line for line, _, _ in rendered])
        if check(err is None, f"{name}: ours failed where transformers rendered every line:\n {err}"):
            for (line, text, ids), mine in zip(rendered, got):
                ok = check(mine["text"] == text, f"{name}: text differs for {line['messages']!r}:\n ours   {mine['text']!r}\n theirs {text!r}")
                same += ok and check(mine["ids"] == ids, f"{name}: ids differ for {line['messages']!r}")
        for line, error in raised_cases:
            _, our_error = ours(d, kwargs, [line])
            raised += check(our_error is not None and error in our_error,
                            f"{name}: transformers raised {error!r}; ours {'raised ' + repr(our_error[-300:]) if our_error else 'rendered'}")
        print(f"| {name} | {len(cases)} | {same} | {raised} |", flush=True)


def main():
    root = temp_dir()
    compare_real(root)
    qwen3_tokens = [("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False)]
    llama_tokens = [("<|begin_of_text|>", True), ("<|start_header_id|>", True), ("<|end_header_id|>", True), ("<|eot_id|>", True)]
    families = [  # (name, dir, kwargs for apply_chat_template, our --enable-thinking)
        ("qwen2.5 chatml", write_dir(root, "qwen25", QWEN25_TEMPLATE, []), {}, "auto"),
        ("qwen3 thinking (default)", write_dir(root, "qwen3", None, qwen3_tokens), {}, "auto"),
        ("qwen3 enable_thinking=True", os.path.join(root, "qwen3"), {"enable_thinking": True}, "true"),
        ("qwen3 enable_thinking=False", os.path.join(root, "qwen3"), {"enable_thinking": False}, "false"),
        ("llama 3.0", write_dir(root, "llama30", LLAMA30_TEMPLATE, llama_tokens, "<|begin_of_text|>"), {}, "auto"),
        ("llama 3.1 (fixed date)", write_dir(root, "llama31", LLAMA31_TEMPLATE, llama_tokens, "<|begin_of_text|>"), {}, "auto"),
        ("llama 3.2 (today's date)", write_dir(root, "llama32", LLAMA32_TEMPLATE, llama_tokens, "<|begin_of_text|>"), {}, "auto"),
    ]
    print("| template | cases | text equal | ids equal |\n|---|---|---|---|")
    cases = [(m, {}) for m in MESSAGE_LISTS]
    for name, d, kwargs, thinking in families:
        compare(name, d, kwargs, thinking, cases, lambda m, extra: {"messages": m})
    # Tools (issue 34): the transcript of a rollout that called tools, rendered by our tool text
    # (grpo_tokenize --chat with "tools"), against apply_chat_template(messages, tools=...).
    tool_families = [("qwen2.5 with tools", write_dir(root, "qwen25tools", QWEN25_TOOLS_TEMPLATE, []), {}, "auto"),
                     ("qwen3 with tools", os.path.join(root, "qwen3"), {}, "auto"),
                     ("qwen3 with tools, enable_thinking=False", os.path.join(root, "qwen3"), {"enable_thinking": False}, "false")]
    cases = [(m, {"tools": t}) for t, m in TOOL_TRANSCRIPTS]
    for name, d, kwargs, thinking in tool_families:
        compare(name, d, kwargs, thinking, cases, lambda m, extra: {**extra, "messages": m})
    finish()


if __name__ == "__main__":
    main()
