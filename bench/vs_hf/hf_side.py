#!/usr/bin/env python3
"""The Hugging Face side of bench/vs_hf/run.sh (test-side Python from .venv; never in training).

  hf_side.py make-model DIR [--size mid|small]    a random fp32 Qwen2 made and saved by transformers
  hf_side.py tokenize TOKENIZER_JSON JSONL...     HF `tokenizers` encode_batch over every question and
                                                  answer; threads from RAYON_NUM_THREADS; prints
                                                  `tokens=<n> seconds=<s>` (best of --reps, warm)
  hf_side.py generate DIR --n 4 16 --prompt 32 --new 64
                                                  transformers generate() (greedy, KV cache, no stop),
                                                  decode tokens/s = N*new / (t(new) - t(1 new token)),
                                                  median of --reps, the same formula as bench_decode
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


def cmd_generate(a):
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=torch.float32, attn_implementation=a.attn).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    V = model.config.vocab_size

    def run(x, new):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=new)
        assert out.shape[1] == x.shape[1] + new
        return time.perf_counter() - t0

    print(f"| N | tokens/s (decode) | ms/step |")
    for n in a.n:
        x = torch.randint(0, V - 2, (n, a.prompt), generator=torch.Generator().manual_seed(n))
        run(x, 4)  # warm-up
        t1 = sorted(run(x, 1) for _ in range(a.reps))[a.reps // 2]
        tn = sorted(run(x, a.new) for _ in range(a.reps))[a.reps // 2]
        print(f"| {n} | {n * a.new / (tn - t1):.0f} | {1e3 * (tn - t1) / (a.new - 1):.2f} |", flush=True)


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
    g = sub.add_parser("generate")
    g.add_argument("dir")
    g.add_argument("--n", type=int, nargs="+", default=[4, 16, 64])
    g.add_argument("--prompt", type=int, default=32)
    g.add_argument("--new", type=int, default=64)
    g.add_argument("--reps", type=int, default=3)
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--attn", default="sdpa", help="transformers attention: sdpa (its default) or eager")
    a = ap.parse_args()
    {"make-model": cmd_make_model, "tokenize": cmd_tokenize, "generate": cmd_generate}[a.cmd](a)


if __name__ == "__main__":
    main()
