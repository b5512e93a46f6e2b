#!/usr/bin/env python3
"""Interop 3: HF `tokenizers` and transformers' chat template vs ours, on the real Qwen2.5
tokenizer (tests/data/qwen2.5/tokenizer.json).
  - ids: every line of the reference corpus, every GSM8K question and answer (train and test):
    HF `tokenizers` encode(add_special_tokens=False) == grpo_tokenize;
  - chat: our ChatML prompt (grpo_tokenize --chat: the trainer's tokenize_prompt) of (system, user)
    == transformers' apply_chat_template(..., add_generation_prompt=True) with Qwen2.5's template
    (written below: no hub here, so the real tokenizer_config.json is not at hand), text and ids,
    both branches: a given system message, and none (Qwen2.5 then inserts its default one).
  test_tokenizers.py BUILD_DIR
"""
import json
import os
import shutil

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from common import QWEN25_TEMPLATE, ROOT, check, finish, read_jsonl, temp_dir, tool

TOKENIZER = os.path.join(ROOT, "tests/data/qwen2.5/tokenizer.json")

def compare_ids(name, texts, hf):
    ours = [json.loads(l) for l in tool("grpo_tokenize", "--tokenizer", TOKENIZER, "--threads", 0,
                                        stdin="".join(json.dumps(t) + "\n" for t in texts)).splitlines()]
    theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    check(len(ours) == len(theirs), f"{name}: {len(ours)} lines from us, {len(theirs)} from tokenizers")
    if bad:
        i = bad[0]
        check(False, f"{name}: {len(bad)} of {len(texts)} lines differ; first, line {i + 1}: {texts[i]!r}\n"
                     f"  ours   {ours[i]}\n  theirs {theirs[i]}")
    tokens = sum(map(len, theirs))
    print(f"| {name} | {len(texts)} | {tokens} | {len(texts) - len(bad)} |", flush=True)


def main():
    hf = Tokenizer.from_file(TOKENIZER)
    corpus = read_jsonl(os.path.join(ROOT, "tests/data/qwen2.5/corpus.jsonl"))
    gsm = read_jsonl(os.path.join(ROOT, "data/gsm8k/train.jsonl")) + read_jsonl(os.path.join(ROOT, "data/gsm8k/test.jsonl"))
    print("| texts | lines | tokens | identical lines |\n|---|---|---|---|")
    compare_ids("reference corpus", corpus, hf)
    compare_ids("GSM8K questions", [e["question"] for e in gsm], hf)
    compare_ids("GSM8K answers", [e["answer"] for e in gsm], hf)

    fast = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER)
    system = "Please reason step by step, and put your final answer after ####."
    users = [e["question"] for e in gsm[:200]] + [t for t in corpus if "<|" not in t][:100] + [
        "\nA question that starts with a newline", "  two leading spaces", "trailing newline\n", "", "数学 题?"]
    requests, expected = [], []
    for i, user in enumerate(users):
        msgs = [{"role": "user", "content": user}]
        req = {"user": user}
        if i % 2 == 0:  # both branches: a given system message, and none
            msgs.insert(0, {"role": "system", "content": system})
            req["system"] = system
        requests.append(req)
        text = fast.apply_chat_template(msgs, chat_template=QWEN25_TEMPLATE, add_generation_prompt=True, tokenize=False)
        ids = fast.apply_chat_template(msgs, chat_template=QWEN25_TEMPLATE, add_generation_prompt=True, tokenize=True,
                                       return_dict=False)
        expected.append((text, list(ids)))
    # A model directory as Qwen2.5's: its tokenizer and a tokenizer_config.json holding its template,
    # from which grpo_tokenize recognises the family (and the default system turn).
    model_dir = temp_dir()
    shutil.copy(TOKENIZER, model_dir)
    json.dump({"chat_template": QWEN25_TEMPLATE}, open(os.path.join(model_dir, "tokenizer_config.json"), "w"))
    ours = [json.loads(l) for l in tool("grpo_tokenize", "--tokenizer", model_dir, "--chat",
                                        stdin="".join(json.dumps(r) + "\n" for r in requests)).splitlines()]
    same_text = sum(o["text"] == t for o, (t, _) in zip(ours, expected))
    same_ids = sum(o["ids"] == i for o, (_, i) in zip(ours, expected))
    for o, (t, i), r in zip(ours, expected, requests):
        if o["text"] != t or o["ids"] != i:
            check(False, f"chat prompt differs for {r!r}:\n  ours   {o}\n  theirs {t!r} {i}")
            break
    print(f"| ChatML prompts (apply_chat_template; {len(users) // 2 + len(users) % 2} with a system message, "
          f"{len(users) // 2} without) | {len(users)} | text {same_text}, ids {same_ids} identical | |")
    check(len(ours) == len(users), "chat: line count")
    finish()


if __name__ == "__main__":
    main()
