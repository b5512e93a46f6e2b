#!/usr/bin/env python3
"""Interop 5: TRL's GRPOTrainer as the referee of our loss. The same tiny Qwen2 (made by
transformers), prompt and completion ids (left-padded prompts of different lengths, completions of
different lengths), masks, advantages and old/reference log-probs go to TRL's own
GRPOTrainer._compute_loss (the trainer built once, its loss settings set per case: the shim is
those attribute assignments) and to ours (tests/loss_referee: the pieces update_policy runs).
The loss and every parameter's gradient agree within 1e-5 relative (of the loss; of each
gradient's largest element), for loss_type grpo / bnpo / dr_grpo / dapo x beta 0 / 0.04 x
importance sampling level token / sequence x without / with old log-probs (num_iterations 1 / 2),
at epsilon_high 0.28 != epsilon 0.2 and temperature 0.7, plus temperature 1, delta 1.3, bias-corrected KL off and
mask_truncated_completions cases.
  test_trl_loss.py BUILD_DIR
"""
import itertools
import json
import os
import shutil
import subprocess

import torch
from safetensors.torch import load_file

from common import ROOT, bin_dir, check, finish, temp_dir

N, G, TP, TC, V = 8, 4, 7, 6, 259


def make_model(d):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=V, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=256, eos_token_id=258)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(d)
    shutil.copy(os.path.join(ROOT, "data/tiny-model/tokenizer.json"), d)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, f)


def make_inputs():
    g = torch.Generator().manual_seed(1)
    plen = [7, 4]                                   # prompt b's real length (left padding)
    clen = [6, 3, 1, 5, 6, 2, 4, 6]                 # completion n's real length (pad after)
    pid, pmask, cid, cmask = [], [], [], []
    for n in range(N):
        b = n // G
        ids = torch.randint(3, 250, (TP,), generator=torch.Generator().manual_seed(10 + b)).tolist()
        pid.append([0] * (TP - plen[b]) + ids[:plen[b]])
        pmask.append([0] * (TP - plen[b]) + [1] * plen[b])
        c = torch.randint(3, 250, (TC,), generator=g).tolist()
        cid.append(c[:clen[n]] + [256] * (TC - clen[n]))
        cmask.append([1] * clen[n] + [0] * (TC - clen[n]))
    adv = [1.2, -0.4, 0.0, -0.8, 0.5, 0.5, -1.5, 0.5]
    noise_old = (torch.rand(N, TC, generator=g) - 0.5) * 0.8   # ratios up to e^0.4: both clips bite
    noise_ref = (torch.rand(N, TC, generator=g) - 0.5) * 1.0
    return {"prompt_ids": pid, "prompt_mask": pmask, "completion_ids": cid, "completion_mask": cmask,
            "advantages": adv, "group_size": G, "truncated": [1 if clen[n] == TC else 0 for n in range(N)]}, noise_old, noise_ref


def trl_trainer(model_dir, temperature):
    """TRL bakes the temperature into the fused LM head it patches in at construction: one trainer per T."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    args = GRPOConfig(output_dir=temp_dir(), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=N,
                      num_generations=G, max_completion_length=TC, beta=0.04, gradient_checkpointing=False,
                      temperature=temperature,
                      disable_tqdm=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    tr = GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=args,
                     train_dataset=Dataset.from_list([{"prompt": "a"}] * N), processing_class=AutoTokenizer.from_pretrained(model_dir))
    tr.model.train()
    tr.current_gradient_accumulation_steps = 1
    return tr


def trl_loss(tr, inp, case, logp0, noise_old, noise_ref):
    """TRL's loss and gradients; its settings are the trainer attributes _compute_loss reads."""
    tr.loss_type, tr.beta = case["loss"], case["beta"]
    tr.epsilon_low, tr.epsilon_high = 0.2, 0.28
    tr.importance_sampling_level = case["level"]
    tr.args.delta = case["delta"]
    tr.args.use_bias_correction_kl = case["bias_kl"]
    tr.max_completion_length = TC
    cmask = torch.tensor(inp["completion_mask"])
    if case["mask_truncated"]:  # TRL applies it to the mask when it scores completions
        cmask = cmask * (1 - torch.tensor(inp["truncated"])).unsqueeze(1)
    x = {"prompt_ids": torch.tensor(inp["prompt_ids"]), "prompt_mask": torch.tensor(inp["prompt_mask"]),
         "completion_ids": torch.tensor(inp["completion_ids"]), "completion_mask": cmask,
         "advantages": torch.tensor(inp["advantages"]), "num_items_in_batch": cmask.sum().float()}
    if case["old"]:
        x["old_per_token_logps"] = logp0 + noise_old
    if case["beta"]:
        x["ref_per_token_logps"] = logp0 + noise_ref
    tr.model.zero_grad()
    loss = tr._compute_loss(tr.model, x)
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in tr.model.named_parameters()}


def our_loss(model_dir, inp, case, logp0, noise_old, noise_ref):
    d = temp_dir()
    j = dict(inp)
    if case["old"]:
        j["old_logps"] = (logp0 + noise_old).tolist()
    if case["beta"]:
        j["ref_logps"] = (logp0 + noise_ref).tolist()
    with open(os.path.join(d, "in.json"), "w") as f:
        json.dump(j, f)
    sets = [f"temperature={case['temperature']}", f"loss_aggregation={case['loss']}", f"beta={case['beta']}",
            "clip_eps_low=0.2", "clip_eps_high=0.28", f"importance_sampling_level={case['level']}",
            f"delta={case['delta'] or 0}", f"max_new_tokens={TC}",
            f"mask_truncated_completions={'true' if case['mask_truncated'] else 'false'}",
            f"use_bias_correction_kl={'true' if case['bias_kl'] else 'false'}"]
    r = subprocess.run([os.path.join(bin_dir(), "tests", "loss_referee"), model_dir, os.path.join(d, "in.json"),
                        os.path.join(d, "out.safetensors"), *sets], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"loss_referee failed: {r.stderr}")
    out = load_file(os.path.join(d, "out.safetensors"))
    return out["loss"].item(), {k[5:]: v for k, v in out.items() if k.startswith("grad.")}, out["logps"]


def main():
    model_dir = os.path.join(temp_dir(), "tiny")
    make_model(model_dir)
    inp, noise_old, noise_ref = make_inputs()
    trainers = {}
    # The old/reference log-probs are the policy's own at temperature T plus fixed noise, so the
    # ratios are known to leave the clip band (ours computes logp0, then both sides get the same numbers).
    base = {"temperature": 0.7, "delta": None, "mask_truncated": False, "bias_kl": True}
    cases = [dict(base, loss=l, beta=b, level=lv, old=o) for l, b, lv, o in
             itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], [0.0, 0.04], ["token", "sequence"], [False, True])]
    cases += [dict(base, loss="dapo", beta=0.04, level="token", old=True, temperature=1.0),
              dict(base, loss="grpo", beta=0.0, level="token", old=True, delta=1.3),
              dict(base, loss="dapo", beta=0.04, level="sequence", old=True, mask_truncated=True),
              dict(base, loss="grpo", beta=0.04, level="token", old=True, mask_truncated=True),
              dict(base, loss="dapo", beta=0.04, level="token", old=True, bias_kl=False),
              dict(base, loss="bnpo", beta=0.04, level="sequence", old=True, bias_kl=False)]
    print("| loss_type | beta | level | old log-probs | T | delta | mask truncated | bias-corrected KL | loss (TRL) | loss rel diff | worst grad rel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    logp_at = {}
    for case in cases:
        T = case["temperature"]
        if T not in logp_at:  # the policy's log-probs at T (ours; TRL's agree below) for old/ref
            logp_at[T] = our_loss(model_dir, inp, dict(case, old=False, beta=0.0), torch.zeros(N, TC), noise_old, noise_ref)[2]
        logp0 = logp_at[T]
        if T not in trainers:
            trainers[T] = trl_trainer(model_dir, T)
        lt, gt = trl_loss(trainers[T], inp, case, logp0, noise_old, noise_ref)
        lo, go, _ = our_loss(model_dir, inp, case, logp0, noise_old, noise_ref)
        rel = abs(lo - lt) / max(abs(lt), 1e-2)  # a loss near 0 is a sum of cancelling terms of ~1e-1
        worst, worst_name = 0.0, ""
        scale = max(g.abs().max().item() for g in gt.values())
        for name, g in gt.items():
            if name not in go:
                check(False, f"{case}: TRL parameter {name} has no gradient of ours")
                continue
            # k_proj.bias's true gradient is 0 (it shifts all of a query's scores alike): its rounding
            # noise is judged against the largest gradient of the model
            d = ((go[name] - g).abs().max() / max(g.abs().max().item(), 1e-3 * scale)).item()
            if d > worst:
                worst, worst_name = d, name
        ok = check(rel <= 1e-5 and worst <= 1e-5, f"{case}: loss {lo} vs TRL {lt} ({rel:.1e}); worst gradient {worst_name} {worst:.1e}")
        print(f"| {case['loss']} | {case['beta']} | {case['level']} | {'yes' if case['old'] else 'no'} | {T} | "
              f"{case['delta'] or '-'} | {'yes' if case['mask_truncated'] else 'no'} | {'yes' if case['bias_kl'] else 'no'} | {lt:.6f} | {rel:.1e} | "
              f"{worst:.1e} ({worst_name}){'' if ok else ' FAIL'} |", flush=True)
    finish()


if __name__ == "__main__":
    main()
