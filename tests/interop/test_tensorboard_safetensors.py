#!/usr/bin/env python3
"""Interop 4: tensorboard's EventAccumulator reads <output_dir>/tb/ of a grpo_train run and sees every
scalar of metrics.jsonl, at the same step, with the same value (as float32); the Python
`safetensors` package reads every .safetensors file we wrote (checkpoints' model and fp32 master
weights, grpo_generate's --logits-out) with the values we meant: the bf16 model is the master
rounded to bf16, and the logits give the log-probs grpo_generate --score-ids printed.
  test_tensorboard_safetensors.py BUILD_DIR
"""
import glob
import json
import math
import os

import numpy as np
import torch
from safetensors import safe_open
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from common import ROOT, check, finish, our_logits, read_jsonl, temp_dir, tool


def main():
    out = os.path.join(temp_dir(), "run")
    tool("grpo_train", os.path.join(ROOT, "data/tiny-model"), "-c", os.path.join(ROOT, "configs/tiny_demo.yaml"),
         "--set", f"output_dir={out}", "--set", "max_steps=3", "--set", "save_steps=2", "--set", "save_total_limit=0",
         "--set", "prompts_per_step=4", "--set", "eval_limit=4", "--set", "dtype=bfloat16")

    # ---- tensorboard
    acc = EventAccumulator(os.path.join(out, "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    metrics = read_jsonl(os.path.join(out, "metrics.jsonl"))
    compared = 0
    for m in metrics:
        for k, v in m.items():
            if k == "step" or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if not check(k in tags, f"metrics.jsonl key {k!r} has no TensorBoard scalar (tags: {sorted(tags)})"):
                continue
            events = {e.step: e.value for e in acc.Scalars(k)}
            want = float(np.float32(v))
            got = events.get(m["step"])
            ok = got is not None and (got == want or (math.isnan(got) and math.isnan(want)))
            check(ok, f"{k} @ step {m['step']}: metrics.jsonl {v}, TensorBoard {got}")
            compared += 1
    print(f"| TensorBoard | {len(metrics)} steps, {len(tags)} tags | {compared} scalars equal to metrics.jsonl |")
    check(compared >= 3 * 10, f"only {compared} scalars compared")

    # ---- safetensors: every file the run wrote, plus grpo_generate's logits file
    files = sorted(glob.glob(os.path.join(out, "**", "*.safetensors"), recursive=True))
    logits_path = os.path.join(temp_dir(), "logits.safetensors")
    ids = [1, 40, 50, 60, 70, 80]
    printed = [float(x) for x in tool("grpo_generate", os.path.join(out, "checkpoint-3"), "--score-ids",
                                      ",".join(map(str, ids)), "--logits-out", logits_path).strip().split(",")]
    files.append(logits_path)
    check(len(files) >= 5, f"expected model + master files of 2 checkpoints and the logits, found {files}")
    n_tensors = 0
    for f in files:
        with safe_open(f, framework="pt") as st:
            tensors = {name: st.get_tensor(name) for name in st.keys()}
        for name, t in tensors.items():
            check(t.numel() > 0 and bool(t.float().isfinite().all()), f"{f}: {name} empty or not finite")
        n_tensors += len(tensors)
        if os.path.basename(f) == "model.safetensors":
            d = os.path.dirname(f)
            cfg = json.load(open(os.path.join(d, "config.json")))
            emb = tensors["model.embed_tokens.weight"]
            check(list(emb.shape) == [cfg["vocab_size"], cfg["hidden_size"]], f"{f}: embed_tokens shape {list(emb.shape)}")
            with safe_open(os.path.join(d, "master.safetensors"), framework="pt") as st:
                for name, t in tensors.items():
                    m = st.get_tensor(name)
                    check(m.dtype == torch.float32 and t.dtype == torch.bfloat16, f"{d}: {name} dtypes {m.dtype}, {t.dtype}")
                    check(torch.equal(m.to(torch.bfloat16), t), f"{d}: {name} is not its fp32 master rounded to bf16")
    logits = tensors["logits"]  # the last file read
    lp = torch.log_softmax(logits.double(), -1)
    from_file = [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
    check(list(logits.shape)[0] == len(ids), f"logits file holds {tuple(logits.shape)}")
    check(max(abs(a - b) for a, b in zip(from_file, printed)) <= 2e-6,
          f"log-probs from the logits file {from_file} != grpo_generate's {printed}")
    print(f"| safetensors | {len(files)} files ({', '.join(os.path.relpath(f, out) if f.startswith(out) else 'logits' for f in files)}) "
          f"| {n_tensors} tensors read; bf16 model == master rounded; logits file -> printed log-probs |")
    finish()


if __name__ == "__main__":
    main()
