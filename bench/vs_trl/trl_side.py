#!/usr/bin/env python3
"""The TRL side of bench/vs_trl/run.sh (test-side Python from .venv; never in training).

  trl_side.py model DIR --from SRC            SRC copied with a tokenizer_config.json naming eos/pad
                                              (AutoTokenizer needs it; ours reads it too)
  trl_side.py model DIR --qwen-vocab TOK      a random fp32 Qwen2 with the real 151,936-id vocabulary
                                              (~42 M params, 39 M of them the tied embedding)
  trl_side.py train MODEL CONFIG OUT [--set k=v ...] [--order R] [--replay R] [--compare-to DIR]
                                              TRL's GRPOTrainer on OUR YAML config, read the same way:
                                              every run-defining key is mapped to its GRPOConfig name,
                                              and a key TRL cannot honour is an error, not a silent
                                              difference. Per-step times go to OUT/trl_steps.jsonl.
                                              The learning rate follows our schedule (grpo.cpp's lr_at:
                                              warmup lr * (s + 1) / W; HF's starts at 0) unless
                                              --trl-schedule.
      --order R     R = grpo_train --dump-rollouts of the same seed: TRL trains on the same prompts
                    in the same order (shuffling off); every step asserts TRL's prompt ids equal
                    ours, and the first its stop-id set equals ours
      --replay R    as --order, and TRL's generation is replaced by our completions of that step
                    (its rewards, loss, KL and optimizer run as they are)
      --compare-to DIR  our output_dir of that run (save_steps 1, save_total_limit 0): after every
                    step, the parameters, lr, grad norm, loss, KL, reward of both, to OUT/replay.jsonl
  trl_side.py save-untrained MODEL OUT        the initial model as TRL loads and saves it
  trl_side.py speed-table RES RUNS "m K"...   run.sh's speed table from the per-run files in RES
  trl_side.py learn-table LEARN.txt BEFORE    the learning statistics (Welch's t, 95% interval)
  trl_side.py replay-table REPLAY.jsonl       the step-by-step replay comparison
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
    shape = {"mid": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2),
             # Qwen2.5-0.5B's config.json, at random weights
             "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                  num_key_value_heads=2)}[a.shape]
    cfg = Qwen2Config(vocab_size=151936, max_position_embeddings=2048 if a.shape == "mid" else 32768,
                      tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                      bos_token_id=151643, eos_token_id=151645, **shape)
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


def on_cuda(cfg):
    """our `device` key: cpu (the CPU comparisons) or cuda (scripts/gpu_session.sh); auto is refused,
    so that both sides are known to run where the table says"""
    device = cfg.get("device", "cpu")
    if device not in ("cpu", "cuda"):
        raise SystemExit(f"trl_side: device {device!r} is not mapped (cpu or cuda)")
    return device == "cuda"


def model_dtype(cfg):
    """our `dtype` key -> the dtype TRL loads the model in. bfloat16 is TRL's own default on a GPU
    (the checkpoint's dtype, bf16 AdamW state, no fp32 masters); ours keeps fp32 master weights."""
    import torch
    dtype = cfg.get("dtype", "float32")
    if dtype not in ("float32", "bfloat16"):
        raise SystemExit(f"trl_side: dtype {dtype!r} is not mapped (float32 or bfloat16)")
    return getattr(torch, dtype)


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
    on_gpu, bf16 = on_cuda(cfg), cfg.get("dtype", "float32") == "bfloat16"
    return GRPOConfig(
        output_dir=out, use_cpu=not on_gpu, bf16=bf16, fp16=False, report_to="none", seed=cfg.get("seed", 42),
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
        reward_weights=[weights["correctness"]], shuffle_dataset=cfg.get("_shuffle", True))


def our_lr(step, total, cfg):
    """grpo.cpp's lr_at(step): optimizer update `step` (0-based)."""
    import math
    lr, warm = cfg["learning_rate"], cfg.get("warmup_steps", 0)
    if step < warm:
        return lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    kind = cfg.get("lr_schedule", "constant")
    return lr * {"cosine": 0.5 * (1 + math.cos(math.pi * progress)), "linear": 1 - progress}.get(kind, 1.0)


def read_rollouts(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def cmd_save_untrained(a):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).save_pretrained(a.out)
    AutoTokenizer.from_pretrained(a.model).save_pretrained(a.out)


def param_difference(model, ckpt_dir, initial):
    """max over tensors of ||trl - ours|| / ||ours|| and of ||update_trl - update_ours|| / ||update_ours||
    (update = parameter - its initial value; HF names on both sides), each with its tensor's name"""
    from safetensors.torch import load_file
    ours = load_file(os.path.join(ckpt_dir, "model.safetensors"))
    rel = lambda a, b: float((a - b).norm() / b.norm().clamp_min(1e-30))
    worst = {"param": (0.0, ""), "update": (0.0, "")}
    for n, p in model.named_parameters():
        if n not in ours:
            continue
        p, o, p0 = p.detach().float(), ours[n].float(), initial[n]
        for k, d in (("param", rel(p, o)), ("update", rel(p - p0, o - p0))):
            if d > worst[k][0]:
                worst[k] = (d, n)
    return worst


def cmd_train(a):
    t_start = time.time()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
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
    ours = read_rollouts(a.replay or a.order) if (a.replay or a.order) else None
    if ours is not None:
        if len(ours) < cfg["max_steps"]:
            raise SystemExit(f"trl_side: {a.replay or a.order} has {len(ours)} steps, max_steps is {cfg['max_steps']}")
        # Our prompts in our order; shuffle_dataset off makes TRL's RepeatSampler walk them in turn.
        rows = [rows[i] for r in ours[:cfg["max_steps"]] for i in r["examples"]]
        cfg["_shuffle"] = False
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=model_dtype(cfg), attn_implementation="sdpa")
    steps = []

    generation = [0]  # train-mode generation calls so far: our dump's step index
    G = cfg["group_size"]

    class Timed(GRPOTrainer):
        def create_scheduler(self, num_training_steps, optimizer=None):
            if a.trl_schedule:
                return super().create_scheduler(num_training_steps, optimizer)
            from torch.optim.lr_scheduler import LambdaLR
            opt = optimizer if optimizer is not None else self.optimizer
            self.lr_scheduler = LambdaLR(opt, lambda s: our_lr(s, cfg["max_steps"], cfg) / cfg["learning_rate"])
            return self.lr_scheduler

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            if ours is None or not self.model.training:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            r = ours[generation[0]]
            if generation[0] == 0 and set(self.eos_token_ids) != set(r["stop_ids"]):
                raise SystemExit(f"trl_side: TRL stops at {sorted(self.eos_token_ids)}, ours at {sorted(r['stop_ids'])}")
            want = [r["prompt_ids"][n // G] for n in range(len(r["prompt_ids"]) * G)]
            if [list(p) for p in prompt_ids] != want:
                bad = next(n for n in range(len(want)) if list(prompt_ids[n]) != want[n])
                raise SystemExit(f"trl_side: step {generation[0] + 1}, sequence {bad}: TRL's prompt ids {list(prompt_ids[bad])[:12]}... "
                                 f"!= ours {want[bad][:12]}...")
            generation[0] += 1
            if a.replay:
                return [list(c) for c in r["completion_ids"]], None
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

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
            self._gen_sum += time.perf_counter() - t0 - self._nograd_s
            self._gen_tok += int(out["completion_mask"].sum())
            self._upd_tok += int(out["prompt_mask"].sum() + out["completion_mask"].sum())
            return out

    # A step is timed from on_step_begin to on_step_end: every micro-batch's training_step and the
    # Trainer's outer loop (clipping, optimizer step, scheduler, zero_grad), as ours times its update.
    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            trainer._gen_sum, trainer._gen_tok, trainer._upd_tok = 0.0, 0, 0
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            self.t0 = time.perf_counter()

        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kw):
            self.lr = optimizer.param_groups[0]["lr"]  # the lr this step's update uses

        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            total = time.perf_counter() - self.t0
            steps.append({"gen_s": trainer._gen_sum, "update_s": total - trainer._gen_sum, "gen_tokens": trainer._gen_tok,
                          "update_tokens": trainer._upd_tok * cfg.get("num_iterations", 1), "lr": self.lr})
            if torch.cuda.is_available():  # the allocator's peak of this step, as ours logs peak_mem_mb on CUDA
                steps[-1]["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20

        def on_log(self, args, state, control, logs=None, **kw):
            if "loss" not in (logs or {}):
                return
            # the step's rollout statistics beside its times (run.sh's learn section compares them)
            steps[-1].update({"reward": logs.get("reward"), "completion_len": logs.get("completions/mean_length"),
                              "kl": logs.get("kl"), "grad_norm": logs.get("grad_norm"), "entropy": logs.get("entropy")})
            if a.compare_to is None:
                return
            step = state.global_step
            o = our_metrics[step - 1]
            w = param_difference(trainer.model, os.path.join(a.compare_to, f"checkpoint-{step}"), initial)
            row = {"step": step, "param_rel_diff_max": w["param"][0], "worst_tensor": w["param"][1],
                   "update_rel_diff_max": w["update"][0], "worst_update_tensor": w["update"][1], "lr": [o["lr"], steps[-1]["lr"]],
                   "grad_norm": [o["grad_norm"], logs.get("grad_norm")], "loss": [o["loss"], logs.get("loss")],
                   "kl": [o.get("kl"), logs.get("kl")], "reward": [o["reward_mean"], logs.get("reward")]}
            replay.write(json.dumps(row) + "\n")
            replay.flush()

    our_metrics = None
    if a.compare_to:
        # the initial weights as TRL loaded them, which must equal the file both sides read
        from safetensors.torch import load_file
        initial = {n: p.detach().float().clone() for n, p in model.named_parameters()}
        src = load_file(os.path.join(a.model, "model.safetensors"))
        init_diff = max(float((initial[n] - src[n].float()).abs().max()) for n in initial if n in src)
        if init_diff != 0:
            raise SystemExit(f"trl_side: TRL's initial weights differ from {a.model}/model.safetensors by {init_diff}")
        our_metrics = [json.loads(l) for l in open(os.path.join(a.compare_to, "metrics.jsonl"))]
        os.makedirs(a.out, exist_ok=True)
        replay = open(os.path.join(a.out, "replay.jsonl"), "w")

    args = grpo_config(cfg, a.out)
    trainer = Timed(model=model, reward_funcs=[correctness], args=args, train_dataset=Dataset.from_list(rows),
                    processing_class=tok, callbacks=[StepClock()])
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

def tree_rss_mib(pid):
    """VmRSS of pid and its descendants (grpo_train re-executes itself once; `env` execs TRL's python)"""
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        try:
            total += int(next(l for l in open(f"/proc/{q}/status") if l.startswith("VmRSS")).split()[1])
            for t in os.listdir(f"/proc/{q}/task"):
                todo += [int(c) for c in open(f"/proc/{q}/task/{t}/children").read().split()]
        except (OSError, StopIteration):
            pass
    return total / 1024


def cmd_measure(a):
    t0 = time.time()
    rss_first = None
    p = subprocess.Popen(a.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    first = None
    log = open(a.out + ".log", "w")
    for line in p.stdout:
        log.write(line)
        if first is None and (line.startswith(FIRST_STEP_OURS) or line.startswith(FIRST_STEP_TRL)):
            first = time.time()
            rss_first = tree_rss_mib(p.pid)
    rc = p.wait()
    wall = time.time() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    json.dump({"rc": rc, "wall_s": wall, "startup_s": (first - t0) if first else None, "peak_rss_mib": rss_mib,
               "first_step_rss_mib": rss_first}, open(a.out, "w"))
    if rc != 0:
        sys.stdout.write(open(a.out + ".log").read()[-4000:])
        raise SystemExit(f"measure: {a.argv[0]} exited with {rc}")


# ---------------------------------------------------------------------------------------------
# tables

def run_figures(res, m, K, side, r):
    """one run's medians over steps 2..: step, gen, update seconds, gen and update tokens/s; its RSS"""
    import statistics
    base = os.path.join(res, f"speed_{m}_k{K}_{side}_{r}")
    if side == "ours":
        rows = [json.loads(l) for l in open(base + ".metrics.jsonl")][1:]
        # peak_mem_mb is the CUDA allocator's step peak on a GPU, the process's RSS on a CPU (the rehearsal)
        gpu = m == "gpu" and re.search(r"(?m)^device: cuda", open(base + ".json.log", errors="replace").read()) is not None
        rows = [{"gen_s": x["time_rollout_s"], "update_s": x["time_update_s"],
                 "gen_tokens": x["rollout_tokens_per_s"] * x["time_rollout_s"],
                 "update_tokens": x["update_tokens_per_s"] * x["time_update_s"],
                 **({"gpu_peak_mib": x["peak_mem_mb"]} if gpu else {})} for x in rows]
    else:
        rows = [json.loads(l) for l in open(base + ".steps.jsonl")][1:]
    med = lambda k: statistics.median(x[k] for x in rows)
    meas = json.load(open(base + ".json"))
    return {"step": statistics.median(x["gen_s"] + x["update_s"] for x in rows), "gen": med("gen_s"), "upd": med("update_s"),
            "gen_tps": med("gen_tokens") / med("gen_s"), "upd_tps": med("update_tokens") / med("update_s"),
            "rss": meas["peak_rss_mib"], "rss0": meas["first_step_rss_mib"], "startup": meas["startup_s"], "n": len(rows),
            "gpu": max((x["gpu_peak_mib"] for x in rows if "gpu_peak_mib" in x), default=None)}


def cmd_speed_table(a):
    import statistics
    names = {"tiny": "tiny (0.82 M, vocab 259, demo config)", "mid": "random Qwen2 (41.8 M, vocab 151,936, mid.yaml)",
             "real": "random Qwen2.5-0.5B shape (494 M, realistic.yaml)",
             "gpu": "random Qwen2.5-1.5B shape (1.54 B, bf16, on the GPU, gpu.yaml)"}
    fmt = lambda xs, f: f"{f % statistics.median(xs)} [{f % min(xs)}-{f % max(xs)}]"
    print("| workload | trainer | s/step | generation s | update s | gen tok/s | update tok/s | peak RSS MiB | RSS at step 1 MiB | "
          "peak GPU MiB | start-up s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for w in a.workloads:
        m, K = w.split()
        fig = {side: [run_figures(a.res, m, K, side, r) for r in range(1, a.runs + 1)] for side in ("ours", "trl")}
        for side, label in (("ours", "grpo_train"), ("trl", "TRL GRPOTrainer")):
            f = fig[side]
            col = lambda k, p: fmt([x[k] for x in f], p) if all(x[k] is not None for x in f) else "-"
            print(f"| {names[m] + (f', grad_accum {K}' if K != '1' else '') if side == 'ours' else ''} | {label} | "
                  f"{col('step', '%.2f')} | {col('gen', '%.2f')} | {col('upd', '%.2f')} | {col('gen_tps', '%.0f')} | "
                  f"{col('upd_tps', '%.0f')} | {col('rss', '%.0f')} | {col('rss0', '%.0f')} | {col('gpu', '%.0f')} | "
                  f"{col('startup', '%.2f')} |")
        o, t = fig["ours"], fig["trl"]
        step = [x["step"] for x in t], [x["step"] for x in o]
        mem = "gpu" if all(x["gpu"] is not None for x in o + t) else "rss"  # the memory that runs out first
        rss = [x[mem] for x in t], [x[mem] for x in o]
        ratios.append((names[m] + (f", grad_accum {K}" if K != "1" else ""),
                       statistics.median(step[0]) / statistics.median(step[1]), min(step[0]) / max(step[1]),
                       statistics.median(rss[0]) / statistics.median(rss[1]), min(rss[0]) / max(rss[1]), o[0]["n"]))
    print()
    print("| workload | TRL / ours, step time: median (lowest: TRL's fastest run / our slowest) | peak memory (RSS; the GPU "
          "allocator's on a GPU): median (lowest) | timed steps per run |")
    print("|---|---|---|---|")
    for n, s_med, s_lo, r_med, r_lo, steps in ratios:
        print(f"| {n} | **{s_med:.1f}x** ({s_lo:.1f}x) | **{r_med:.2f}x** ({r_lo:.2f}x) | {steps} |")


def betainc(a, b, x):
    """regularized incomplete beta I_x(a, b): Lentz's continued fraction (Numerical Recipes 6.4)"""
    import math
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):
        return 1 - betainc(b, a, 1 - x)
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    return math.exp(lbeta) * h / a


def t_cdf(t, df):
    """Student's t CDF"""
    tail = betainc(df / 2, 0.5, df / (df + t * t)) / 2
    return 1 - tail if t > 0 else tail


def t_quantile(p, df):
    lo, hi = -50.0, 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def welch(x, y):
    """mean(x) - mean(y), its 95% interval, t, df and the two-sided p (Welch's unequal-variance t-test)"""
    import math
    import statistics
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    d, se = statistics.mean(x) - statistics.mean(y), math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    q = t_quantile(0.975, df)
    t = d / se
    return d, d - q * se, d + q * se, t, df, 2 * (1 - t_cdf(abs(t), df))


def cmd_learn_table(a):
    import statistics
    rows = [l.split() for l in open(a.file) if l.strip()]
    before = a.before_sampled
    by = {side: {"greedy": [float(r[2]) for r in rows if r[1] == side], "sampled": [float(r[3]) for r in rows if r[1] == side],
                 "wall": [float(r[4]) for r in rows if r[1] == side]} for side in ("ours", "trl")}
    n = len(by["ours"]["sampled"])
    print()
    print(f"{n} seeds a side (same prompts in the same order on both sides of each seed); collapse: sampled after < {before:.1f} + 15")
    print()
    print("| trainer | sampled after: mean | median | std | min | greedy after: mean | median | std | min | collapses | wall s (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for side, label in (("ours", "grpo_train"), ("trl", "TRL GRPOTrainer")):
        f = by[side]
        st = lambda xs: f"{statistics.mean(xs):.1f}% | {statistics.median(xs):.1f}% | {statistics.stdev(xs):.1f} | {min(xs):.1f}%"
        col = sum(1 for s in f["sampled"] if s < before + 15)
        print(f"| {label} | {st(f['sampled'])} | {st(f['greedy'])} | {col} / {len(f['sampled'])} | {statistics.median(f['wall']):.0f} |")
    print()
    for k in ("sampled", "greedy"):
        d, lo, hi, t, df, p = welch(by["ours"][k], by["trl"][k])
        print(f"- {k} after, ours - TRL: {d:+.2f} points, 95% interval [{lo:+.2f}, {hi:+.2f}] (Welch t = {t:.2f}, df = {df:.1f}, p = {p:.2f})")
    if a.res is None:
        return
    # The rollouts themselves: per-step reward (accuracy of the drawn completions), completion length
    # and KL, averaged over a window of steps, per seed; then mean over seeds and ours - TRL with its
    # 95% interval. Step 1 samples the same initial model on the same prompts on both sides.
    seeds = list(dict.fromkeys(r[0] for r in rows))  # in run order
    # Each run's per-step rows, read once, under TRL's names (ours renamed).
    ours_names = {"reward": "reward_mean", "completion_len": "completion_len_mean", "kl": "kl"}
    steps_of = {}
    for seed in seeds:
        o = [json.loads(l) for l in open(os.path.join(a.res, f"learn_ours_{seed}.metrics.jsonl"))]
        steps_of[seed, "ours"] = [{k: r[v] for k, v in ours_names.items()} for r in o]
        steps_of[seed, "trl"] = [json.loads(l) for l in open(os.path.join(a.res, f"learn_trl_{seed}.steps.jsonl"))]
    series = lambda seed, side, key: [r[key] for r in steps_of[seed, side]]
    print()
    print("Rollouts, mean over the seeds of each window's mean (ours - TRL, 95% interval):")
    print()
    print("| steps | reward ours | reward TRL | difference | completion length ours / TRL | KL ours / TRL |")
    print("|---|---|---|---|---|---|")
    for lo_s, hi_s in ((1, 1), (2, 10), (11, 40), (41, 80)):
        w = lambda side, key: [statistics.mean(series(sd, side, key)[lo_s - 1:hi_s]) for sd in seeds]
        ro, rt = w("ours", "reward"), w("trl", "reward")
        d, lo, hi, *_ = welch(ro, rt)
        print(f"| {lo_s}-{hi_s} | {statistics.mean(ro):.4f} | {statistics.mean(rt):.4f} | {d:+.4f} [{lo:+.4f}, {hi:+.4f}] | "
              f"{statistics.mean(w('ours', 'completion_len')):.2f} / {statistics.mean(w('trl', 'completion_len')):.2f} | "
              f"{statistics.mean(w('ours', 'kl')):.4f} / {statistics.mean(w('trl', 'kl')):.4f} |")


def cmd_replay_table(a):
    rows = [json.loads(l) for l in open(a.file) if l.strip()]
    rel = lambda p: abs(p[0] - p[1]) / max(abs(p[0]), abs(p[1]), 1e-12) if None not in p else float("nan")
    print()
    print("| step | params: max relative difference (tensor) | update from step 0: max relative difference (tensor) | lr ours / TRL | grad norm rel. diff | loss ours / TRL | KL ours / TRL | reward ours / TRL |")
    print("|---|---|---|---|---|---|---|---|")
    show = sorted({1, 2, 3, 5, 10, 20, 40, len(rows)} | {r["step"] for r in rows if r["step"] % 10 == 0})
    for r in rows:
        if r["step"] in show:
            print(f"| {r['step']} | {r['param_rel_diff_max']:.2e} ({r['worst_tensor']}) | "
                  f"{r['update_rel_diff_max']:.2e} ({r['worst_update_tensor']}) | {r['lr'][0]:.3g} / {r['lr'][1]:.3g} | "
                  f"{rel(r['grad_norm']):.1e} | {r['loss'][0]:.6g} / {r['loss'][1]:.6g} | {r['kl'][0]:.6g} / {r['kl'][1]:.6g} | "
                  f"{r['reward'][0]:.4f} / {r['reward'][1]:.4f} |")
    worst = max(rows, key=lambda r: r["param_rel_diff_max"])
    print(f"\nworst parameter difference over {len(rows)} steps: {worst['param_rel_diff_max']:.2e} at step {worst['step']}; "
          f"rewards differ at {sum(1 for r in rows if abs(r['reward'][0] - r['reward'][1]) > 1e-6)} steps; "
          f"lr differs at {sum(1 for r in rows if rel(r['lr']) > 1e-9)} steps")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("dir")
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--from", dest="src")
    g.add_argument("--qwen-vocab")
    m.add_argument("--shape", default="mid", choices=["mid", "qwen2.5-0.5b"])
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("config")
    t.add_argument("out")
    t.add_argument("--set", action="append", default=[])
    t.add_argument("--save", action="store_true", help="save the final model (a HF directory) as OUT/checkpoint-N")
    t.add_argument("--order", help="grpo_train --dump-rollouts file: the same prompts in the same order")
    t.add_argument("--replay", help="grpo_train --dump-rollouts file: the same prompts and completions")
    t.add_argument("--compare-to", help="our output_dir of that run: per-step differences to OUT/replay.jsonl")
    t.add_argument("--trl-schedule", action="store_true", help="HF's lr schedule (warmup from 0) instead of ours")
    u = sub.add_parser("save-untrained")
    u.add_argument("model")
    u.add_argument("out")
    r = sub.add_parser("measure")
    r.add_argument("out")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    st = sub.add_parser("speed-table")
    st.add_argument("res")
    st.add_argument("runs", type=int)
    st.add_argument("workloads", nargs="+")
    lt = sub.add_parser("learn-table")
    lt.add_argument("file")
    lt.add_argument("before_sampled", type=float)
    lt.add_argument("res", nargs="?", help="run.sh's results directory: the per-step rollout statistics too")
    rt = sub.add_parser("replay-table")
    rt.add_argument("file")
    a = ap.parse_args()
    if a.cmd == "measure":
        a.argv = a.argv[1:] if a.argv and a.argv[0] == "--" else a.argv
        return cmd_measure(a)
    {"model": cmd_model, "train": cmd_train, "save-untrained": cmd_save_untrained, "speed-table": cmd_speed_table,
     "learn-table": cmd_learn_table, "replay-table": cmd_replay_table}[a.cmd](a)


if __name__ == "__main__":
    main()
