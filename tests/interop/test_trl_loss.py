#!/usr/bin/env python3
"""Interop 5: TRL's GRPOTrainer as the referee of our loss. The same tiny Qwen2 (made by
transformers), prompt and completion ids (left-padded prompts of different lengths, completions of
different lengths, EOS-terminated unless cut at max_completion_length), rewards, sampler log-probs
and old/reference log-probs go through TRL's own code, GRPOTrainer._generate_and_score_completions
(advantages with scale_rewards, mask_truncated_completions, the vLLM importance-sampling
correction) then _compute_loss, and through ours (tests/loss_referee: the pieces update_policy
runs). The shim: the trainer is built once per temperature, its settings are assigned per case, and
its _generate / _calculate_rewards return the given ids, sampler log-probs and rewards.
The loss agrees within 64 units of fp32 rounding of the mean size of its per-token terms (see
term_mass) and every parameter's gradient within 1e-5 of its largest element, for loss_type grpo /
bnpo / dr_grpo / dapo x beta 0 / 0.04 x importance sampling level token / sequence x without / with old log-probs (num_iterations 1 / 2),
at epsilon_high 0.28 != epsilon 0.2 and temperature 0.7, plus temperature 1, delta 1.3,
bias-corrected KL off, mask_truncated_completions, scale_rewards group / batch / none, the four
sampler-correction modes (vllm_importance_sampling_*) and top_entropy_quantile cases.
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
        if clen[n] < TC:  # stopped: its last token is EOS; the others were cut at TC
            c[clen[n] - 1] = 258
        cid.append(c[:clen[n]] + [256] * (TC - clen[n]))
        cmask.append([1] * clen[n] + [0] * (TC - clen[n]))
    rewards = [1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.25]
    noise_old = (torch.rand(N, TC, generator=g) - 0.5) * 0.8   # ratios up to e^0.4: both clips bite
    noise_ref = (torch.rand(N, TC, generator=g) - 0.5) * 1.0
    noise_sampler = (torch.rand(N, TC, generator=g) - 0.5) * 1.2  # sequence ratios on both sides of 3 and 0.5
    return {"prompt_ids": pid, "prompt_mask": pmask, "completion_ids": cid, "completion_mask": cmask, "rewards": rewards,
            "group_size": G, "truncated": [1 if clen[n] == TC else 0 for n in range(N)], "plen": plen, "clen": clen}, \
        noise_old, noise_ref, noise_sampler


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


def trl_loss(tr, inp, case, logp0, noise_old, noise_ref, noise_sampler):
    """TRL's loss and gradients; its settings are the trainer attributes its code reads."""
    tr.loss_type, tr.beta = case["loss"], case["beta"]
    tr.epsilon_low, tr.epsilon_high = 0.2, 0.28
    tr.importance_sampling_level = case["level"]
    tr.args.delta = case["delta"]
    tr.args.use_bias_correction_kl = case["bias_kl"]
    tr.max_completion_length = TC
    tr.scale_rewards = case["scale"]
    tr.mask_truncated_completions = case["mask_truncated"]
    tr.top_entropy_quantile = case["top_entropy"]
    tr.use_vllm = tr.vllm_importance_sampling_correction = case["is_mode"] is not None
    tr.vllm_importance_sampling_mode = case["is_mode"]
    tr.vllm_importance_sampling_clip_min, tr.vllm_importance_sampling_clip_max = case["is_min"], 3.0
    prompts = [inp["prompt_ids"][n][TP - inp["plen"][n // G]:] for n in range(N)]
    completions = [inp["completion_ids"][n][:inp["clen"][n]] for n in range(N)]
    sampler = [(logp0 + noise_sampler)[n, :inp["clen"][n]].tolist() for n in range(N)]
    tr._generate = lambda _prompts: (prompts, completions, None, ["x"] * N, sampler if case["is_mode"] else None, {}, None, None)
    tr._calculate_rewards = lambda *_: torch.tensor(inp["rewards"]).unsqueeze(1)
    tr.model.zero_grad()
    x = tr._generate_and_score_completions([{"prompt": "a"}] * N)
    if case["old"]:
        x["old_per_token_logps"] = logp0 + noise_old
    if case["beta"]:
        x["ref_per_token_logps"] = logp0 + noise_ref
    loss = tr._compute_loss(tr.model, x)
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in tr.model.named_parameters()}, x["advantages"].detach()


def term_mass(inp, case, advantages, noise_old, noise_ref):
    """The mean size of the loss's per-token terms, |A| x ratio + beta x (ref/policy ratio + 1): the
    loss is a (weighted) mean of such terms, most of them cancelling, so this and not the loss is the
    scale its fp32 rounding lives on. The policy's log-probs are logp0, so ratio = exp(-noise_old)."""
    mask = torch.tensor(inp["completion_mask"], dtype=torch.float64)
    ratio = torch.exp(-noise_old.double()) if case["old"] else torch.ones_like(mask)
    terms = advantages.double().abs().unsqueeze(1) * ratio + case["beta"] * (torch.exp(-noise_ref.double()) + 1)
    return float((terms * mask).sum() / mask.sum())


def our_loss(model_dir, inp, case, logp0, noise_old, noise_ref, noise_sampler):
    d = temp_dir()
    j = dict(inp)
    j["sampler_logps"] = (logp0 + noise_sampler).tolist()
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
            f"use_bias_correction_kl={'true' if case['bias_kl'] else 'false'}", f"scale_rewards={case['scale']}",
            f"top_entropy_quantile={case['top_entropy']}",
            f"vllm_importance_sampling_correction={'true' if case['is_mode'] else 'false'}",
            f"vllm_importance_sampling_mode={case['is_mode'] or 'sequence_mask'}",
            f"vllm_importance_sampling_clip_min={case['is_min'] or 0}", "vllm_importance_sampling_clip_max=3"]
    r = subprocess.run([os.path.join(bin_dir(), "tests", "loss_referee"), model_dir, os.path.join(d, "in.json"),
                        os.path.join(d, "out.safetensors"), *sets], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"loss_referee failed: {r.stderr}")
    out = load_file(os.path.join(d, "out.safetensors"))
    return out["loss"].item(), {k[5:]: v for k, v in out.items() if k.startswith("grad.")}, out["logps"]


def main():
    model_dir = os.path.join(temp_dir(), "tiny")
    make_model(model_dir)
    inp, noise_old, noise_ref, noise_sampler = make_inputs()
    trainers = {}
    # The old/reference log-probs are the policy's own at temperature T plus fixed noise, so the
    # ratios are known to leave the clip band (ours computes logp0, then both sides get the same numbers).
    base = {"temperature": 0.7, "delta": None, "mask_truncated": False, "bias_kl": True, "scale": "group", "top_entropy": 1.0,
            "is_mode": None, "is_min": None}
    cases = [dict(base, loss=l, beta=b, level=lv, old=o) for l, b, lv, o in
             itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], [0.0, 0.04], ["token", "sequence"], [False, True])]
    cases += [dict(base, loss="dapo", beta=0.04, level="token", old=True, temperature=1.0),
              dict(base, loss="grpo", beta=0.0, level="token", old=True, delta=1.3),
              dict(base, loss="dapo", beta=0.04, level="sequence", old=True, mask_truncated=True),
              dict(base, loss="grpo", beta=0.04, level="token", old=True, mask_truncated=True),
              dict(base, loss="dapo", beta=0.04, level="token", old=True, bias_kl=False),
              dict(base, loss="bnpo", beta=0.04, level="sequence", old=True, bias_kl=False),
              dict(base, loss="dapo", beta=0.04, level="token", old=True, scale="batch"),
              dict(base, loss="dapo", beta=0.04, level="token", old=True, scale="none"),
              dict(base, loss="grpo", beta=0.0, level="sequence", old=False, scale="batch"),
              dict(base, loss="dapo", beta=0.04, level="token", old=True, top_entropy=0.5),
              dict(base, loss="grpo", beta=0.0, level="token", old=False, top_entropy=0.2)]
    # The sampler correction (TRL computes the old log-probs itself when it is on: none are given)
    cases += [dict(base, loss=l, beta=b, level="token", old=False, is_mode=m) for l, b, m in
              itertools.product(["dapo", "grpo"], [0.0, 0.04], ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"])]
    cases += [dict(base, loss="dapo", beta=0.04, level="token", old=False, is_mode="token_mask", is_min=0.8),
              dict(base, loss="dapo", beta=0.04, level="token", old=False, is_mode="token_truncate", is_min=0.8),
              dict(base, loss="dapo", beta=0.04, level="sequence", old=False, is_mode="sequence_truncate", is_min=0.5),
              dict(base, loss="dr_grpo", beta=0.04, level="token", old=False, is_mode="sequence_mask", mask_truncated=True,
                   top_entropy=0.5, scale="batch")]
    print("| loss_type | beta | level | old log-probs | T | delta | mask truncated | bias-corrected KL | scale_rewards | top entropy | sampler correction | loss (TRL) | loss diff / bound | worst grad rel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    logp_at = {}
    for case in cases:
        T = case["temperature"]
        if T not in logp_at:  # the policy's log-probs at T (ours; TRL's agree below) for old/ref
            logp_at[T] = our_loss(model_dir, inp, dict(base, temperature=T, loss="grpo", level="token", old=False, beta=0.0),
                                  torch.zeros(N, TC), noise_old, noise_ref, noise_sampler)[2]
        logp0 = logp_at[T]
        if T not in trainers:
            trainers[T] = trl_trainer(model_dir, T)
        lt, gt, adv = trl_loss(trainers[T], inp, case, logp0, noise_old, noise_ref, noise_sampler)
        lo, go, _ = our_loss(model_dir, inp, case, logp0, noise_old, noise_ref, noise_sampler)
        # Both sides compute in fp32: the log-probs of two implementations differ by a few units of
        # rounding (u = 2^-24) of the logits' scale, and each sum adds its own. The bound is 64 u of
        # the terms' mass (term_mass; ~0.5 here: ~2e-6), not of the loss, which cancels to ~1e-2 and
        # made a relative 1e-5 bound pass or fail with the CPU's rounding (1.0e-5 seen on an EPYC).
        # A formula error moves the loss by a share of it (dapo's denominator + 1: 1/n of ~1e-2).
        mass = term_mass(inp, case, adv, noise_old, noise_ref)
        rel = abs(lo - lt) / (64 * 2.0 ** -24 * mass)  # <= 1 passes
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
        ok = check(rel <= 1 and worst <= 1e-5, f"{case}: loss {lo} vs TRL {lt} ({abs(lo - lt):.1e}, {rel:.2f} of the bound "
                   f"{64 * 2.0 ** -24 * mass:.1e}); worst gradient {worst_name} {worst:.1e}")
        print(f"| {case['loss']} | {case['beta']} | {case['level']} | {'yes' if case['old'] else 'no'} | {T} | "
              f"{case['delta'] or '-'} | {'yes' if case['mask_truncated'] else 'no'} | {'yes' if case['bias_kl'] else 'no'} | "
              f"{case['scale']} | {case['top_entropy']} | {case['is_mode'] or '-'}{'' if not case['is_min'] else ' min ' + str(case['is_min'])} | {lt:.6f} | {rel:.1e} | "
              f"{worst:.1e} ({worst_name}){'' if ok else ' FAIL'} |", flush=True)
    finish()


if __name__ == "__main__":
    main()
