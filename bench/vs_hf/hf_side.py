#!/usr/bin/env python3
"""The Hugging Face side of bench/vs_hf/run.sh (test-side Python from .venv; never in training).

  hf_side.py make-model DIR [--size mid|small]    a random fp32 Qwen2 made and saved by transformers
  hf_side.py tokenize TOKENIZER_JSON JSONL...     HF `tokenizers` encode_batch over every question and
                                                  answer; threads from RAYON_NUM_THREADS; prints
                                                  `tokens=<n> seconds=<s>` (best of --reps, warm)
The generate() side is scripts/hf_reference.py bench-generate (--device cpu --dtype float32), the
same timing the GPU session uses.
"""
import argparse
import json
import time


def cmd_make_model(a):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    # mid: 24.7 M params, each decode step is a few ms of GEMM; small: 1.3 M, the per-op cost rules
    shape = {"mid": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8),
             "small": dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4)}
    cfg = Qwen2Config(vocab_size=4096, **shape[a.size], num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                      bos_token_id=4094, eos_token_id=4095)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(a.dir)
    print(f"{a.dir}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params")


def cmd_tokenize(a):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(a.tokenizer)
    texts = []
    for path in a.jsonl:
        for line in open(path, encoding="utf-8"):
            e = json.loads(line)
            texts += [e["question"], e["answer"]]
    best = None
    for _ in range(a.reps + 1):  # the first pass warms caches, as ours does
        t0 = time.perf_counter()
        enc = tok.encode_batch(texts, add_special_tokens=False)
        s = time.perf_counter() - t0
        best = s if best is None else min(best, s)
    print(f"tokens={sum(len(e.ids) for e in enc)} seconds={best:.6f} texts={len(texts)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-model")
    m.add_argument("dir")
    m.add_argument("--size", choices=["mid", "small"], default="mid")
    t = sub.add_parser("tokenize")
    t.add_argument("tokenizer")
    t.add_argument("jsonl", nargs="+")
    t.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    {"make-model": cmd_make_model, "tokenize": cmd_tokenize}[a.cmd](a)


if __name__ == "__main__":
    main()
