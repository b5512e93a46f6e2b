#!/usr/bin/env python3
"""The TRL side of bench/vs_trl/run.sh (test-side Python from .venv; never in training).

  trl_side.py model DIR --from SRC            SRC copied with a tokenizer_config.json naming eos/pad
                                              (AutoTokenizer needs it; ours reads it too)
  trl_side.py model DIR --qwen-vocab TOK      a random fp32 Qwen2 with the real 151,936-id vocabulary
                                              (~42 M params, 39 M of them the tied embedding)
  trl_side.py train MODEL CONFIG OUT [--set k=v ...]
                                              TRL's GRPOTrainer on OUR YAML config, read the same way:
                                              every run-defining key is mapped to its GRPOConfig name,
                                              and a key TRL cannot honour is an error, not a silent
                                              difference. Per-step times go to OUT/trl_steps.jsonl.
  trl_side.py measure OUT.json -- CMD ...     run CMD; wall, start-up (spawn -> first step) and peak
                                              RSS of the child, the same way for both trainers

Timing split, the same on both sides: "generation" is sampling + rewards; "update" is everything
else of a step (reference log-probs, the loss forward/backward, the optimizer). TRL computes the
reference log-probs inside _generate_and_score_completions: that time is moved to "update".
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

FIRST_STEP_OURS = "Starting GRPO training..."  # grpo_train prints this right before step 1
FIRST_STEP_TRL = "FIRST_STEP"


# ---------------------------------------------------------------------------------------------
# models

def write_tokenizer_config(d, eos, pad):
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": eos, "pad_token": pad, "add_bos_token": False, "model_max_length": 32768}, f, indent=1)


def cmd_model(a):
    os.makedirs(a.dir, exist_ok=True)
    if a.src:
        for f in os.listdir(a.src):
            shutil.copy(os.path.join(a.src, f), a.dir)
        write_tokenizer_config(a.dir, "<|im_end|>", "<|endoftext|>")
        return
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    # Qwen2.5's special ids: <|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645
    cfg = Qwen2Config(vocab_size=151936, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                      bos_token_id=151643, eos_token_id=151645)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = [151645, 151643]
    model.generation_config.pad_token_id = 151643
    model.save_pretrained(a.dir)
    shutil.copy(a.qwen_vocab, os.path.join(a.dir, "tokenizer.json"))
    write_tokenizer_config(a.dir, "<|im_end|>", "<|endoftext|>")
    print(f"{a.dir}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params")


# ---------------------------------------------------------------------------------------------
# our config -> GRPOConfig

def load_our_config(path, overrides):
    import yaml
    cfg = yaml.safe_load(open(path))
    for kv in overrides:
        k, v = kv.split("=", 1)
        cfg[k] = yaml.safe_load(v)
    return cfg


def gold_of(answer):
    # parse_gsm8k_gold: the last number after the last "####", commas dropped
    nums = re.findall(r"-?\d+(?:\.\d+)?", answer.rsplit("####", 1)[1].replace(",", ""))
    return float(nums[-1])


def chatml(system, question):
    # tokenize_prompt's template; the tokenizer splits on the special tokens and encodes each
    # span between them as one piece, as ours does
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            f"<|im_start|>assistant\n")


def correctness(completions, gold, **_):
    # correctness_reward, strict mode, for completions without <answer> or \boxed (neither model
    # writes them): the rule of configs/rewards/gsm8k_answer.py, which matched the built-in reward
    # at every step of the demo (docs/benchmarks.md, "Programmable rewards")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../configs/rewards"))
    from gsm8k_answer import correct
    return [correct(text, g) for text, g in zip(completions, gold)]


def grpo_config(cfg, out):
    from trl import GRPOConfig
    weights = {k: v for k, v in cfg.get("reward_weights", {}).items() if v}
    if set(weights) != {"correctness"} or cfg.get("answer_mode", "strict") != "strict":
        raise SystemExit(f"trl_side: only reward_weights {{correctness: w}} with answer_mode strict is mapped, found {weights}")
    for k, want in (("top_p", 1.0), ("top_k", 0), ("min_p", 0.0), ("repetition_penalty", 1.0), ("entropy_coef", 0.0),
                    ("dynamic_sampling", False)):
        if cfg.get(k, want) != want:
            raise SystemExit(f"trl_side: {k} = {cfg[k]} is not mapped")
    G, B, K = cfg["group_size"], cfg["prompts_per_step"], cfg.get("grad_accum", 1)
    warm = cfg.get("warmup_steps", 0)
    sched = {"constant": "constant_with_warmup" if warm else "constant", "cosine": "cosine", "linear": "linear"}[cfg.get("lr_schedule", "constant")]
    save = cfg.get("_save", False)
    return GRPOConfig(
        output_dir=out, use_cpu=True, bf16=False, fp16=False, report_to="none", seed=cfg.get("seed", 42),
        data_seed=cfg.get("seed", 42), dataloader_num_workers=0, disable_tqdm=True, logging_steps=1,
        per_device_train_batch_size=B * G // K, gradient_accumulation_steps=K, num_generations=G,
        max_completion_length=cfg["max_new_tokens"], temperature=cfg.get("temperature", 1.0),
        learning_rate=cfg["learning_rate"], warmup_steps=warm, lr_scheduler_type=sched,
        weight_decay=cfg.get("weight_decay", 0.0), adam_beta1=cfg.get("adam_beta1", 0.9),
        adam_beta2=cfg.get("adam_beta2", 0.99), adam_epsilon=cfg.get("adam_eps", 1e-8),
        max_grad_norm=cfg.get("max_grad_norm", 1.0), num_iterations=cfg.get("num_iterations", 1),
        beta=cfg.get("beta", 0.0), use_bias_correction_kl=cfg.get("use_bias_correction_kl", True),
        delta=cfg.get("delta") or None, importance_sampling_level=cfg.get("importance_sampling_level", "token"),
        epsilon=cfg.get("clip_eps_low", 0.2), epsilon_high=cfg.get("clip_eps_high", 0.2),
        loss_type=cfg.get("loss_aggregation", "dapo"), scale_rewards=cfg.get("scale_rewards", "group"),
        mask_truncated_completions=cfg.get("mask_truncated_completions", False),
        gradient_checkpointing=cfg.get("gradient_checkpointing", False), max_steps=cfg["max_steps"],
        save_strategy="steps" if save else "no", save_steps=cfg["max_steps"], save_only_model=True,
        reward_weights=[weights["correctness"]], shuffle_dataset=True)


def cmd_train(a):
    t_start = time.time()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    cfg = load_our_config(a.config, a.set)
    cfg["_save"] = a.save
    system = cfg.get("system_prompt")
    rows = []
    for line in open(cfg["train_data"], encoding="utf-8"):
        e = json.loads(line)
        rows.append({"prompt": chatml(system, e["question"]), "gold": gold_of(e["answer"])})
        if cfg.get("train_limit") and len(rows) >= cfg["train_limit"]:
            break
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    steps = []

    class Timed(GRPOTrainer):
        # gen = _generate_and_score_completions minus the reference/old log-prob forwards in it
        def _get_per_token_logps_and_entropies(self, *args, **kw):
            t0 = time.perf_counter()
            r = super()._get_per_token_logps_and_entropies(*args, **kw)
            if not torch.is_grad_enabled():
                self._nograd_s += time.perf_counter() - t0
            return r

        def _generate_and_score_completions(self, inputs):
            if not steps:
                print(f"{FIRST_STEP_TRL} {time.time():.6f}", flush=True)
            self._nograd_s = 0.0
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            self._gen_s = time.perf_counter() - t0 - self._nograd_s
            self._gen_tokens = int(out["completion_mask"].sum())
            self._upd_tokens = int(out["prompt_mask"].sum() + out["completion_mask"].sum())
            return out

        def training_step(self, model, inputs, num_items_in_batch):
            t0 = time.perf_counter()
            r = super().training_step(model, inputs, num_items_in_batch)
            total = time.perf_counter() - t0
            steps.append({"gen_s": self._gen_s, "update_s": total - self._gen_s, "gen_tokens": self._gen_tokens,
                          "update_tokens": self._upd_tokens * cfg.get("num_iterations", 1)})
            return r

    args = grpo_config(cfg, a.out)
    trainer = Timed(model=model, reward_funcs=[correctness], args=args, train_dataset=Dataset.from_list(rows),
                    processing_class=tok)
    ids = tok(rows[0]["prompt"])["input_ids"]
    print(f"prompt 0: {len(ids)} tokens, starts {ids[:4]}; eos ids {trainer.eos_token_ids}; torch threads "
          f"{torch.get_num_threads()}; setup {time.time() - t_start:.2f} s", flush=True)
    trainer.train()
    with open(os.path.join(a.out, "trl_steps.jsonl"), "w") as f:
        for s in steps:
            f.write(json.dumps(s) + "\n")
    for h in trainer.state.log_history[-3:]:
        print(json.dumps(h), flush=True)


# ---------------------------------------------------------------------------------------------
# measure: the same outside view of both processes

def cmd_measure(a):
    t0 = time.time()
    p = subprocess.Popen(a.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    first = None
    log = open(a.out + ".log", "w")
    for line in p.stdout:
        log.write(line)
        if first is None and (line.startswith(FIRST_STEP_OURS) or line.startswith(FIRST_STEP_TRL)):
            first = time.time()
    rc = p.wait()
    wall = time.time() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    json.dump({"rc": rc, "wall_s": wall, "startup_s": (first - t0) if first else None, "peak_rss_mib": rss_mib},
              open(a.out, "w"))
    if rc != 0:
        sys.stdout.write(open(a.out + ".log").read()[-4000:])
        raise SystemExit(f"measure: {a.argv[0]} exited with {rc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("dir")
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--from", dest="src")
    g.add_argument("--qwen-vocab")
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("config")
    t.add_argument("out")
    t.add_argument("--set", action="append", default=[])
    t.add_argument("--save", action="store_true", help="save the final model (a HF directory) as OUT/checkpoint-N")
    r = sub.add_parser("measure")
    r.add_argument("out")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.cmd == "measure":
        a.argv = a.argv[1:] if a.argv and a.argv[0] == "--" else a.argv
        return cmd_measure(a)
    {"model": cmd_model, "train": cmd_train}[a.cmd](a)


if __name__ == "__main__":
    main()
