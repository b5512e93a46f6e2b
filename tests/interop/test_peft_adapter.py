#!/usr/bin/env python3
"""Interop 6: LoRA adapters, ours <-> PEFT, on the embedded tiny Qwen2, a tiny Qwen3 (q/k norms,
head_dim != hidden / heads), a tiny OLMo 2 (norms after each block), a tiny SmolLM3 (NoPE layers), a tiny Mistral, a tiny
Phi-3 (fused qkv_proj and gate_up_proj: the run's default targets map onto them), a tiny Gemma 3 and a tiny OLMo 3 that transformers made, fp32.
  1. ours -> PEFT: the checkpoint-2/ of a LoRA grpo_train run loads unchanged with
     peft.PeftModel.from_pretrained(base, checkpoint); its logits equal ours (grpo_generate --adapter).
  2. PEFT -> ours: an adapter that PEFT wrote (random A and B, other targets, another rank and alpha)
     loads in grpo_generate --adapter with the same logits as PeftModel's.
  3. grpo_export --merge: the merged directory loads in transformers alone with the logits of PEFT's
     merge_and_unload().
Judged at 1e-5 x max |logit|.
  test_peft_adapter.py BUILD_DIR
"""
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from common import ROOT, check, finish, our_logits, temp_dir, tiny_gemma3, tiny_mistral, tiny_olmo2, tiny_olmo3, tiny_phi3, tiny_qwen3, tiny_qwen3_moe, tiny_smollm3, tool

IDS = [151644, 8948, 198, 50, 3582, 13, 151645, 198, 151644, 872, 198, 18, 10, 19, 28, 30, 151645][:12]
TOL = 1e-5


def base_model(base):
    return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager").eval()


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()


def judge(name, ref, mine, base):
    rel = ((mine - ref).abs().max() / ref.abs().max()).item()
    moved = ((ref - base).abs().max() / ref.abs().max()).item()
    check(moved > 1e-3, f"{name}: the adapter does not change the logits ({moved:.1e}): nothing is compared")
    check(rel <= TOL, f"{name}: logits differ by {rel:.2e} of max |logit| (> {TOL})")
    print(f"| {name} | {moved:.2e} | {rel:.2e} |", flush=True)


def main():
    root = temp_dir()
    print("| base | direction | adapter's change of the logits (/ max) | ours vs the referee (/ max) |\n|---|---|---|---|")
    for family, base in (("qwen2", os.path.join(ROOT, "data/tiny-model")), ("qwen3", tiny_qwen3(root)), ("olmo2", tiny_olmo2(root)),
                         ("smollm3", tiny_smollm3(root)), ("mistral", tiny_mistral(root)), ("phi3", tiny_phi3(root)),
                         ("gemma3", tiny_gemma3(root)), ("olmo3", tiny_olmo3(root)),
                         ("qwen3_moe", tiny_qwen3_moe(root))):
        compare(family, base, os.path.join(root, family))
    finish()


def compare(family, base, root):
    vocab = base_model(base).config.vocab_size
    ids = [i % vocab for i in IDS]
    base_logits = hf_logits(base_model(base), ids)

    # 1. ours -> PEFT
    run = os.path.join(root, "run")
    tool("grpo_train", base, "-c", os.path.join(ROOT, "configs/tiny_demo.yaml"), "--set", f"output_dir={run}",
         "--set", "max_steps=2", "--set", "save_steps=2", "--set", "prompts_per_step=4", "--set", "eval_limit=4",
         "--set", "lora_rank=4", "--set", "lora_alpha=8", "--set", "learning_rate=0.01",
         # the random models never answer right: a length penalty gives their groups rewards that differ
         *(["--set", "reward_weights.length=1", "--set", "length_target=4"] if family != "qwen2" else []))
    ckpt = os.path.join(run, "checkpoint-2")
    peft_model = PeftModel.from_pretrained(base_model(base), ckpt).eval()
    judge(f"{family} | ours -> PeftModel.from_pretrained", hf_logits(peft_model, ids), our_logits(base, ids, "float32", ckpt),
          base_logits)

    # 2. PEFT -> ours
    written = os.path.join(root, "peft_adapter")
    targets = {"phi3": ["qkv_proj", "gate_up_proj", "down_proj"],  # fused projections
               "qwen3_moe": ["q_proj", "v_proj", "o_proj"]}.get(family, ["q_proj", "v_proj", "gate_proj", "down_proj"])  # experts: not yet
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets,
                     init_lora_weights=False, task_type="CAUSAL_LM")
    torch.manual_seed(0)
    theirs = get_peft_model(base_model(base), cfg).eval()
    theirs.save_pretrained(written)
    judge(f"{family} | PEFT save_pretrained -> ours", hf_logits(theirs, ids), our_logits(base, ids, "float32", written), base_logits)

    # 3. merged export
    merged = os.path.join(root, "merged")
    tool("grpo_export", base, "--adapter", ckpt, "--merge", "--out", merged)
    ref = hf_logits(PeftModel.from_pretrained(base_model(base), ckpt).merge_and_unload().eval(), ids)
    mine = hf_logits(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32, attn_implementation="eager").eval(), ids)
    judge(f"{family} | grpo_export --merge -> transformers", ref, mine, base_logits)


if __name__ == "__main__":
    main()
