#!/usr/bin/env python3
"""Interop 2: ours -> transformers. The checkpoint-N/ that grpo_train writes after 2 steps (fp32 and
bf16 policies, on the embedded tiny Qwen2 and its tokenizer; fp32 on a tiny Qwen3, a tiny
Llama 3.2-style model with "llama3" RoPE scaling, a tiny OLMo 2, a tiny SmolLM3, a tiny Mistral, a tiny Phi-3, a tiny Gemma 3 and a tiny OLMo 3 that
transformers made, loaded back as their own classes) loads unchanged with
AutoModelForCausalLM.from_pretrained and AutoTokenizer.from_pretrained; its logits equal
grpo_generate --score-ids on the same ids within 1e-4 x max |logit| (the bf16 policy: both sides
in bf16, error reported; and both in fp32 from the same bf16 weights, judged); the tokenizer
gives our ids.
  test_checkpoint_to_transformers.py BUILD_DIR
"""
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from common import (ROOT, check, finish, our_logits, temp_dir, tiny_gemma3, tiny_llama3, tiny_mistral, tiny_olmo2, tiny_olmo3, tiny_phi3, tiny_qwen3, tiny_qwen3_moe,
                    tiny_smollm3, tool)

TEXT = "Tom has 3 apples and buys 4 more. How many apples does he have?\n3+4=7\n#### 7"


def train(out, dtype, base):
    tool("grpo_train", base, "-c", os.path.join(ROOT, "configs/tiny_demo.yaml"),
         "--set", f"output_dir={out}", "--set", "max_steps=2", "--set", "save_steps=2", "--set", "prompts_per_step=4",
         "--set", "eval_limit=4", "--set", f"dtype={dtype}")
    ckpt = os.path.join(out, "checkpoint-2")
    check(os.path.isdir(ckpt), f"{ckpt} was not written")
    return ckpt


def main():
    root = temp_dir()
    print("| policy | loaded as | files | tokenizer ids equal | max abs logit diff / max abs logit |\n|---|---|---|---|---|")
    runs = [("qwen2", os.path.join(ROOT, "data/tiny-model"), "float32"), ("qwen2", os.path.join(ROOT, "data/tiny-model"), "bfloat16"),
            ("qwen3", tiny_qwen3(root), "float32"), ("llama3", tiny_llama3(root), "float32"), ("olmo2", tiny_olmo2(root), "float32"),
            ("smollm3", tiny_smollm3(root), "float32"), ("mistral", tiny_mistral(root), "float32"), ("phi3", tiny_phi3(root), "float32"),
            ("gemma3", tiny_gemma3(root), "float32"), ("olmo3", tiny_olmo3(root), "float32"),
            ("qwen3_moe", tiny_qwen3_moe(root), "float32")]
    for family, base, dtype in runs:
        ckpt = train(os.path.join(root, family + "-" + dtype), dtype, base)
        files = sorted(f for f in os.listdir(ckpt) if not f.startswith("."))
        tok = AutoTokenizer.from_pretrained(ckpt)
        ours_ids = json.loads(tool("grpo_tokenize", "--tokenizer", ckpt, stdin=json.dumps(TEXT) + "\n"))
        same_tok = tok(TEXT, add_special_tokens=False)["input_ids"] == ours_ids
        check(same_tok, f"{dtype}: AutoTokenizer ids {tok(TEXT)['input_ids']} != ours {ours_ids}")
        ids = ours_ids[:48]
        saved = json.load(open(os.path.join(ckpt, "config.json")))
        for load in ("float32", "bfloat16") if dtype == "bfloat16" else ("float32",):
            torch_dtype = getattr(torch, load)
            model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch_dtype, attn_implementation="eager").eval()
            want = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama3": "LlamaForCausalLM",
                    "olmo2": "Olmo2ForCausalLM", "smollm3": "SmolLM3ForCausalLM", "mistral": "MistralForCausalLM",
                    "phi3": "Phi3ForCausalLM", "gemma3": "Gemma3ForCausalLM", "olmo3": "Olmo3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}[family]
            check(type(model).__name__ == want, f"{family} checkpoint loaded as {type(model).__name__}, not {want}")
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].double()
            mine = our_logits(ckpt, ids, load)
            rel = ((mine - ref).abs().max() / ref.abs().max()).item()
            if load == "float32":
                check(rel <= 1e-4, f"{dtype} checkpoint loaded as {load}: logits differ by {rel:.2e} of max |logit|")
            print(f"| {family} {dtype} (config torch_dtype/dtype: {saved.get('dtype', saved.get('torch_dtype'))}) | {load} | "
                  f"{', '.join(files)} | {'yes' if same_tok else 'no'} | {rel:.2e}{'' if load == 'float32' else ' (reported)'} |",
                  flush=True)
    finish()


if __name__ == "__main__":
    main()
