#!/usr/bin/env python3
"""Hugging Face transformers side of the GPU checks (issue 9). A developer-side reference that runs on
the GPU host (PyTorch + transformers in its python3), never part of training.

  hf_reference.py make DIR                 random Qwen2 models written by transformers' save_pretrained:
                                           DIR/tiny-f32, DIR/odd-f32 (head_dim 24, 5:1 GQA, untied),
                                           DIR/qwen2.5-1.5b-bf16 (configs/models/qwen2.5-1.5b.json, or
                                           --big CONFIG: a small shape for a rehearsal on the CPU)
  hf_reference.py parity DIR --bin BUILD   our loader vs transformers on each of them: full logits
                                           (grpo_generate --score-ids --logits-out) in fp32 and bf16
                                           against transformers fp32/bf16 and an fp64 transformers
                                           run, and greedy continuations (32 tokens) token for token
  hf_reference.py bench-generate DIR       transformers generate() decode throughput (greedy, bf16,
                                           same batch / prompt / new-token counts as bench_decode)

Prints markdown tables; exits 1 when an fp32 logit differs by more than 1e-4 or a greedy
continuation differs (bf16 errors are reported, not judged).
"""
import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    # name: (config overrides, dtype, init std)
    "tiny-f32": (dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True), torch.float32, 0.2),
    "odd-f32": (dict(hidden_size=80, intermediate_size=136, num_hidden_layers=3, num_attention_heads=5,
                     num_key_value_heads=1, head_dim=24, vocab_size=1000, tie_word_embeddings=False), torch.float32, 0.2),
    "qwen2.5-1.5b-bf16": (None, torch.bfloat16, 0.02),
}


def transformers_model(path, dtype, device, attn="eager"):
    from transformers import Qwen2ForCausalLM
    try:
        m = Qwen2ForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn)  # transformers >= 4.56
    except TypeError:
        m = Qwen2ForCausalLM.from_pretrained(path, torch_dtype=dtype, attn_implementation=attn)
    m = m.to(device).eval()
    m.generation_config.eos_token_id = None  # run exactly max_new_tokens, as grpo_generate --ignore-eos
    m.generation_config.pad_token_id = 0
    return m


def hf_generate(model, x, new):
    return model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=new)


def cmd_make(a):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    base = json.load(open(a.big))
    for name, (over, dtype, std) in MODELS.items():
        out = os.path.join(a.dir, name)
        if os.path.exists(os.path.join(out, "config.json")):
            print(f"{out}: exists")
            continue
        cfg = dict(base)
        if over:
            cfg.update(over)
        cfg.pop("torch_dtype", None)
        if over:  # special ids inside the small vocabularies (no run here stops at them)
            cfg.update(bos_token_id=cfg["vocab_size"] - 2, eos_token_id=cfg["vocab_size"] - 1)
        if "rope_parameters" in inspect.signature(Qwen2Config.__init__).parameters:
            # transformers >= 5: RoPE settings live in rope_parameters (and are saved that way)
            cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta")}
        config = Qwen2Config(**cfg)
        config.initializer_range = std
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = Qwen2ForCausalLM(config).to(dtype)
        with torch.no_grad():  # norms at 1 are too tame for a parity check: perturb them
            for n, p in model.named_parameters():
                if n.endswith("norm.weight"):
                    p.add_(torch.randn_like(p) * 0.1)
                elif n.endswith(".bias"):
                    p.normal_(0.0, std)
        # No tokenizer in these directories: grpo_generate then limits neither the vocabulary (a
        # tokenizer would bar ids >= its size, which transformers does not) nor the stop ids.
        model.save_pretrained(out)  # safetensors: the default since transformers 4.35, the only format in 5
        if not any(f.endswith(".safetensors") for f in os.listdir(out)):
            sys.exit(f"{out}: save_pretrained wrote no .safetensors file")
        rope = json.load(open(os.path.join(out, "config.json")))
        rope = rope.get("rope_parameters") or {"rope_theta": rope.get("rope_theta")}
        print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, {dtype}, rope {rope}")


def ours(bin_dir, *args):
    r = subprocess.run([os.path.join(bin_dir, "grpo_generate"), *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"grpo_generate {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def our_logits(bin_dir, model_dir, ids, dtype, device):
    from safetensors.torch import load_file
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "logits.safetensors")
        ours(bin_dir, model_dir, "--score-ids", ",".join(map(str, ids)), "--logits-out", path, "--dtype", dtype, "--device", device)
        return load_file(path)["logits"].double()


def cmd_parity(a):
    device = a.device
    fails = 0
    print("| model | ours | transformers | max abs logit diff | vs fp64: ours | vs fp64: transformers | greedy 32 equal |")
    print("|---|---|---|---|---|---|---|")
    for name, (_, dtype, _) in MODELS.items():
        d = os.path.join(a.dir, name)
        V = json.load(open(os.path.join(d, "config.json")))["vocab_size"]
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, min(V, 150000), (48,), generator=g).tolist()
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            ref = transformers_model(d, torch.float64, device)(x).logits[0].double().cpu()
        for ours_dtype, hf_dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            hf = transformers_model(d, hf_dtype, device)
            with torch.no_grad():
                hf_logits = hf(x).logits[0].double().cpu()
                prompt = x[:, :16]
                hf_greedy = hf_generate(hf, prompt, 32)[0, 16:].tolist()
            del hf
            torch.cuda.empty_cache() if device.startswith("cuda") else None
            mine = our_logits(a.bin, d, ids, ours_dtype, device)
            diff = (mine - hf_logits).abs().max().item()
            e_ours, e_hf = (mine - ref).abs().max().item(), (hf_logits - ref).abs().max().item()
            greedy = ours(a.bin, d, "--prompt-ids", ",".join(map(str, ids[:16])), "--greedy", "--print-ids", "--ignore-eos",
                          "--max-new-tokens", "32", "--dtype", ours_dtype, "--device", device).strip()
            same = [int(t) for t in greedy.split(",")] == hf_greedy
            judged = ours_dtype == "float32"
            ok = (diff <= 1e-4 and same) if judged else True
            fails += not ok
            print(f"| {name} | {ours_dtype} | {hf_dtype} | {diff:.2e}{'' if ok else ' FAIL'} | {e_ours:.2e} | {e_hf:.2e} | "
                  f"{'yes' if same else 'no'}{'' if judged else ' (bf16: reported)'} |", flush=True)
    sys.exit(1 if fails else 0)


def cmd_bench_generate(a):
    d = os.path.join(a.dir, "qwen2.5-1.5b-bf16") if os.path.isdir(os.path.join(a.dir, "qwen2.5-1.5b-bf16")) else a.dir
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = transformers_model(d, getattr(torch, a.dtype), a.device, attn=a.attn)
    V = model.config.vocab_size
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    print(f"transformers generate(), {d}, {a.dtype} on {a.device}, attention {model.config._attn_implementation}, greedy, "
          f"prompt {a.prompt}, {a.new} new tokens, decode time = t(new) - t(1 new token)")
    print("| N | tokens/s (decode) | ms/step |\n|---|---|---|")

    def run(x, new):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = hf_generate(model, x, new)
        sync()
        assert out.shape[1] == x.shape[1] + new
        return time.perf_counter() - t0

    for n in a.n:
        g = torch.Generator().manual_seed(n)
        x = torch.randint(0, min(V, 150000), (n, a.prompt), generator=g).to(a.device)
        run(x, 8)  # warm-up
        t1 = sorted(run(x, 1) for _ in range(a.reps))[a.reps // 2]
        tn = sorted(run(x, a.new) for _ in range(a.reps))[a.reps // 2]
        steps = a.new - 1
        print(f"| {n} | {n * a.new / (tn - t1):.0f} | {1e3 * (tn - t1) / steps:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--big", default=os.path.join(ROOT, "configs/models/qwen2.5-1.5b.json"),
                   help="config.json of the bf16 model (the small ones take its other fields too)")
    p = sub.add_parser("parity")
    p.add_argument("dir")
    p.add_argument("--bin", required=True, help="build directory holding grpo_generate")
    p.add_argument("--device", default="cuda")
    b = sub.add_parser("bench-generate")
    b.add_argument("dir")
    b.add_argument("--n", type=int, nargs="+", default=[64, 128])
    b.add_argument("--prompt", type=int, default=128)
    b.add_argument("--new", type=int, default=256)
    b.add_argument("--reps", type=int, default=3)
    b.add_argument("--attn", default="sdpa", help="transformers attention: sdpa (its default) or eager")
    b.add_argument("--device", default="cuda", help="cuda (the GPU session) or cpu (bench/vs_hf)")
    b.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    b.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    {"make": cmd_make, "parity": cmd_parity, "bench-generate": cmd_bench_generate}[a.cmd](a)


if __name__ == "__main__":
    main()
