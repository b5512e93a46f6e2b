#!/usr/bin/env python3
"""Golden values for the Qwen2 tests, from an independent fp64 forward pass written for this
project (HF Qwen2 semantics: RMSNorm, rotate-half RoPE, GQA, SwiGLU, tied or untied head).
Developer-side only: CI reads the committed tests/data/golden_qwen2.json and needs no Python.

    build/tests/make_test_model /tmp/tm_tiny tiny   (and the other presets)
    /usr/bin/python3 scripts/make_golden.py build/tests/make_test_model > tests/data/golden_qwen2.json

Needs numpy and torch (Debian: python3-torch)."""
import json, os, struct, subprocess, sys, tempfile
import numpy as np
import torch

PRESETS = ["tiny", "untied_bf16_sharded", "odd"]
PROMPTS = [[1, 17, 42, 99, 7, 250, 3, 11], [5, 200], [9, 9, 9, 120, 64, 33, 2, 18, 77, 140, 6, 1, 250]]
GREEDY = 24


def load_file(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=np.uint16 if info["dtype"] == "BF16" else np.float32)
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(raw.astype(np.float64)).reshape(info["shape"])
    return out


def load_dir(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    w = {}
    for fn in files:
        w.update(load_file(os.path.join(d, fn)))
    return json.load(open(os.path.join(d, "config.json"))), w


def logits(cfg, w, ids):
    H, KV, L = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    T = len(ids)

    def norm(x, g):
        return g * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))

    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    cos, sin = torch.cos(ang), torch.sin(ang)  # (T, hd/2)

    def rope(x):  # x (heads, T, hd): rotate the two halves
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

    x = w["model.embed_tokens.weight"][ids]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = f"model.layers.{l}."
        h = norm(x, w[p + "input_layernorm.weight"])
        proj = lambda n: h @ w[p + f"self_attn.{n}_proj.weight"].T + w[p + f"self_attn.{n}_proj.bias"]
        q = rope(proj("q").reshape(T, H, hd).permute(1, 0, 2))
        k = rope(proj("k").reshape(T, KV, hd).permute(1, 0, 2))
        v = proj("v").reshape(T, KV, hd).permute(1, 0, 2)
        heads = []
        for i in range(H):
            j = i // (H // KV)
            s = (q[i] @ k[j].T) / hd ** 0.5
            s = s.masked_fill(~causal, float("-inf"))
            heads.append(torch.softmax(s, -1) @ v[j])
        o = torch.cat(heads, -1)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g * torch.sigmoid(g) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def main():
    maker = sys.argv[1]
    out = {}
    for preset in PRESETS:
        d = tempfile.mkdtemp()
        subprocess.run([maker, d, preset], check=True)
        cfg, w = load_dir(d)
        entry = []
        for prompt in PROMPTS:
            ids = list(prompt)
            for _ in range(GREEDY):
                ids.append(int(logits(cfg, w, ids)[-1].argmax()))
            lp = torch.log_softmax(logits(cfg, w, ids), -1)
            scores = [float(lp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
            entry.append({"prompt": prompt, "greedy": ids[len(prompt):], "logprobs": scores})
        out[preset] = entry
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
