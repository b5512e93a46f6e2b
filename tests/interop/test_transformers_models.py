#!/usr/bin/env python3
"""Interop 1: transformers -> ours. Random Qwen2, Qwen3, Llama, OLMo 2, SmolLM3, Mistral, Phi-3, Gemma 3 and OLMo 3 models made by `transformers` itself
and saved with `save_pretrained` (tied and untied, GQA 1:1 to 7:1, head_dim other than hidden/heads,
q/k/v bias, Qwen3's per-head and OLMo 2's whole-projection q/k norms, OLMo 2's norms after each block, SmolLM3's NoPE layers,
sliding windows shorter than the prompt, Phi-3's fused projections, partial rotary and longrope, Gemma 3's local and global
layers and soft-capping, rope_theta 1e6, Llama 3's "llama3" and "linear" RoPE scaling and YaRN with
original_max_position_embeddings below the prompt's length, fp32 and bf16, sharded by a small
max_shard_size) are loaded by our grpo_generate. On the same 48 ids: fp32 logits within 1e-4 x
max |logit| of transformers' (eager attention); 32 greedy tokens identical in the eager and static
decode modes; bf16 (ours bf16 vs transformers bf16) reported.
  test_transformers_models.py BUILD_DIR
"""
import json
import os

import torch
from transformers import (MixtralConfig, MixtralForCausalLM, OlmoeConfig, OlmoeForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Olmo2Config,
                          Olmo2ForCausalLM, Olmo3Config, Olmo3ForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM,
                          SmolLM3Config, SmolLM3ForCausalLM)

from common import check, finish, hf_greedy, hf_model, our_greedy, our_logits, temp_dir

# name: (class, config, saved dtype, max_shard_size or None)
CASES = {
    "qwen2-tied-gqa2": (Qwen2ForCausalLM, Qwen2Config, dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True), torch.float32, None),
    "qwen2-untied-gqa7-hd24-sharded": (Qwen2ForCausalLM, Qwen2Config, dict(hidden_size=80, intermediate_size=136,
                        num_hidden_layers=3, num_attention_heads=7, num_key_value_heads=1, head_dim=24,
                        tie_word_embeddings=False), torch.float32, "300KB"),
    "qwen2-bf16-gqa3": (Qwen2ForCausalLM, Qwen2Config, dict(hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                        num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True), torch.bfloat16, None),
    "llama-untied-gqa4-bias": (LlamaForCausalLM, LlamaConfig, dict(hidden_size=64, intermediate_size=176,
                        num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2, attention_bias=True,
                        tie_word_embeddings=False), torch.float32, None),
    "llama-tied-mha-hd32-bf16-sharded": (LlamaForCausalLM, LlamaConfig, dict(hidden_size=48, intermediate_size=128,
                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                        tie_word_embeddings=True), torch.bfloat16, "100KB"),
    "qwen3-tied-gqa2-hd32": (Qwen3ForCausalLM, Qwen3Config, dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True), torch.float32, None),
    "qwen3-untied-mha-hd8": (Qwen3ForCausalLM, Qwen3Config, dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=3, num_key_value_heads=3, head_dim=8, tie_word_embeddings=False), torch.float32, None),
    "qwen3-untied-gqa6-hd24-bf16-sharded": (Qwen3ForCausalLM, Qwen3Config, dict(hidden_size=64, intermediate_size=128,
                        num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=1, head_dim=24,
                        tie_word_embeddings=False), torch.bfloat16, "200KB"),
    "qwen3-tied-gqa4-bias": (Qwen3ForCausalLM, Qwen3Config, dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=8, num_key_value_heads=2, head_dim=16, attention_bias=True,
                        tie_word_embeddings=True), torch.float32, None),
    # Llama 3.x: RoPE scaled past original_max_position_embeddings = 16 (the prompt has 48 tokens);
    # theta 5e5 puts wavelengths below, between and above 16 / high and 16 / low.
    "llama3-tied-gqa4-rope-llama3": (LlamaForCausalLM, LlamaConfig, dict(hidden_size=64, intermediate_size=176,
                        num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True,
                        rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}), torch.float32, None),
    "llama3-untied-gqa3-rope-llama3-bf16": (LlamaForCausalLM, LlamaConfig, dict(hidden_size=96, intermediate_size=192,
                        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 32.0, "low_freq_factor": 2.0,
                                         "high_freq_factor": 8.0, "original_max_position_embeddings": 16}), torch.bfloat16, None),
    "llama-tied-mha-rope-linear": (LlamaForCausalLM, LlamaConfig, dict(hidden_size=64, intermediate_size=128,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                        rope_parameters={"rope_type": "linear", "rope_theta": 1e4, "factor": 4.0}), torch.float32, None),
    # YaRN (Qwen3's and Qwen2.5's long-context RoPE): the original context 128 of 512 puts the ramp
    # over frequencies 0 to 4 (theta 1e6, head 32) and, untruncated with betas 8 and 0.5, from 0.81
    # to 3.22 (theta 1e4, head 16); DeepSeek's mscale pair sets the second's attention factor.
    "qwen3-tied-gqa2-rope-yarn": (Qwen3ForCausalLM, Qwen3Config, dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
                        rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                                         "original_max_position_embeddings": 128}), torch.float32, None),
    "qwen2-untied-gqa2-rope-yarn-mscale-bf16": (Qwen2ForCausalLM, Qwen2Config, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0, "original_max_position_embeddings": 128,
                                         "beta_fast": 8, "beta_slow": 0.5, "truncate": False, "mscale": 1.0,
                                         "mscale_all_dim": 0.5}), torch.bfloat16, None),
    # OLMo 2: norms after each block, q/k norms over the whole projections, weights x fp32 in its RMSNorm.
    "olmo2-untied-mha": (Olmo2ForCausalLM, Olmo2Config, dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False), torch.float32, None),
    "olmo2-tied-gqa3-hd24-bias-sharded": (Olmo2ForCausalLM, Olmo2Config, dict(hidden_size=72, intermediate_size=144,
                        num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2, head_dim=24, attention_bias=True,
                        tie_word_embeddings=True), torch.float32, "200KB"),
    "olmo2-untied-gqa2-bf16": (Olmo2ForCausalLM, Olmo2Config, dict(hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                        num_attention_heads=6, num_key_value_heads=3, tie_word_embeddings=False), torch.bfloat16, None),
    # SmolLM3: NoPE layers (no_rope_layers 0) among RoPE ones.
    "smollm3-tied-gqa2-nope": (SmolLM3ForCausalLM, SmolLM3Config, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, no_rope_layers=[1, 0, 1, 0], pad_token_id=0,
                        tie_word_embeddings=True), torch.float32, None),
    "smollm3-untied-gqa3-bias-sharded": (SmolLM3ForCausalLM, SmolLM3Config, dict(hidden_size=96, intermediate_size=192,
                        num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2, no_rope_layers=[0, 1, 1], pad_token_id=0,
                        attention_bias=True, tie_word_embeddings=False), torch.float32, "200KB"),
    "smollm3-tied-mha-bf16": (SmolLM3ForCausalLM, SmolLM3Config, dict(hidden_size=64, intermediate_size=128,
                        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4, no_rope_layer_interval=2, pad_token_id=0,
                        tie_word_embeddings=True), torch.bfloat16, None),
    # Mistral: head_dim as given, no biases; a sliding window longer than the 80 positions (prompt +
    # greedy tokens), or none.
    "mistral-untied-gqa4-window": (MistralForCausalLM, MistralConfig, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2, head_dim=8, sliding_window=96,
                        tie_word_embeddings=False), torch.float32, None),
    "mistral-tied-mha-hd32-nowindow-sharded": (MistralForCausalLM, MistralConfig, dict(hidden_size=48, intermediate_size=128,
                        num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2, head_dim=32, sliding_window=None,
                        tie_word_embeddings=True), torch.float32, "100KB"),
    "mistral-untied-gqa3-bf16": (MistralForCausalLM, MistralConfig, dict(hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                        num_attention_heads=6, num_key_value_heads=2, head_dim=16, sliding_window=4096, tie_word_embeddings=False),
                        torch.bfloat16, None),
    # Phi-3: fused qkv_proj / gate_up_proj; RoPE over part of each head with longrope: past
    # original_max_position_embeddings 8 (the 16-token prompt already is: long factors throughout, as
    # transformers' generate) or within 64 (short factors throughout); a sliding window of 12
    # positions, shorter than the 16-token prompt.
    "phi3-untied-gqa2-partial-longrope": (Phi3ForCausalLM, Phi3Config, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, original_max_position_embeddings=8, pad_token_id=0,
                        tie_word_embeddings=False, rope_parameters={"rope_type": "longrope", "rope_theta": 1e4,
                        "partial_rotary_factor": 0.75, "short_factor": [1.0 + 0.2 * i for i in range(6)],
                        "long_factor": [1.5 + 0.7 * i for i in range(6)]}), torch.float32, None),
    "phi3-tied-mha-window12-sharded": (Phi3ForCausalLM, Phi3Config, dict(hidden_size=48, intermediate_size=128,
                        num_hidden_layers=3, num_attention_heads=3, num_key_value_heads=3, sliding_window=12, pad_token_id=0,
                        tie_word_embeddings=True), torch.float32, "100KB"),
    "phi3-untied-gqa3-longrope-short-bf16": (Phi3ForCausalLM, Phi3Config, dict(hidden_size=96, intermediate_size=192,
                        num_hidden_layers=2, pad_token_id=0, num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False,
                        original_max_position_embeddings=64, rope_parameters={"rope_type": "longrope", "rope_theta": 1e4,
                        "short_factor": [1.0 + 0.1 * i for i in range(8)], "long_factor": [3.0] * 8}), torch.bfloat16, None),
    # Gemma 3: local and global layers (windows of 12 and 10 positions, shorter than the prompt),
    # their two RoPE bases, query_pre_attn_scalar, sandwich norms with 1 + w, GeGLU, embedding x sqrt(hidden).
    "gemma3-tied-gqa2-local-global": (Gemma3ForCausalLM, Gemma3TextConfig, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=12,
                        query_pre_attn_scalar=24, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                         "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}},
                        tie_word_embeddings=True), torch.float32, None),
    # The logits' soft-capping that binds: logits within (-3, 3).
    "gemma3-tied-gqa2-softcap": (Gemma3ForCausalLM, Gemma3TextConfig, dict(hidden_size=64, intermediate_size=160,
                        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=12,
                        query_pre_attn_scalar=24, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                        final_logit_softcapping=3.0,
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                         "full_attention": {"rope_type": "default", "rope_theta": 1e6}},
                        tie_word_embeddings=True), torch.float32, None),
    "gemma3-untied-mha-hd32-pattern-sharded": (Gemma3ForCausalLM, Gemma3TextConfig, dict(hidden_size=48, intermediate_size=128,
                        num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=2, head_dim=32, sliding_window=10,
                        sliding_window_pattern=2, query_pre_attn_scalar=32, tie_word_embeddings=False,
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                         "full_attention": {"rope_type": "default", "rope_theta": 1e6}}), torch.float32, "100KB"),
    "gemma3-tied-gqa3-bf16": (Gemma3ForCausalLM, Gemma3TextConfig, dict(hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                        num_attention_heads=6, num_key_value_heads=2, head_dim=16, sliding_window=4096, query_pre_attn_scalar=16,
                        layer_types=["sliding_attention", "full_attention"],
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                         "full_attention": {"rope_type": "default", "rope_theta": 1e6}},
                        tie_word_embeddings=True), torch.bfloat16, None),
    # OLMo 3: OLMo 2's blocks with windows on three layers of four (here 6 positions, shorter than the
    # prompt), RoPE scaling on the full layers only.
    "olmo3-untied-gqa2-window6": (Olmo3ForCausalLM, Olmo3Config, dict(hidden_size=64, intermediate_size=160, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, sliding_window=6, tie_word_embeddings=False,
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 5e5},
                                         "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}}),
                        torch.float32, None),
    "olmo3-tied-mha-bias-sharded": (Olmo3ForCausalLM, Olmo3Config, dict(hidden_size=48, intermediate_size=128, num_hidden_layers=4,
                        num_attention_heads=3, num_key_value_heads=3, sliding_window=20, attention_bias=True,
                        tie_word_embeddings=True, rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                                                   "full_attention": {"rope_type": "default", "rope_theta": 1e4}}),
                        torch.float32, "100KB"),
    "olmo3-untied-gqa3-bf16": (Olmo3ForCausalLM, Olmo3Config, dict(hidden_size=96, intermediate_size=192, num_hidden_layers=4,
                        num_attention_heads=6, num_key_value_heads=2, sliding_window=4096, tie_word_embeddings=False,
                        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                         "full_attention": {"rope_type": "default", "rope_theta": 1e4}}), torch.bfloat16, None),
    # Mixtures of experts: Qwen3-MoE with a dense layer between sparse ones (top-2 of 6, normalised),
    # OLMoE (top-3 of 5, not normalised), Mixtral (one KV head, bf16, block_sparse_moe names).
    "qwen3moe-tied-gqa2-top2of6-dense-middle": (Qwen3MoeForCausalLM, Qwen3MoeConfig, dict(hidden_size=64, intermediate_size=96,
                        moe_intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                        num_experts=6, num_experts_per_tok=2, norm_topk_prob=True, mlp_only_layers=[1], tie_word_embeddings=True),
                        torch.float32, None),
    "olmoe-untied-mha-top3of5-sharded": (OlmoeForCausalLM, OlmoeConfig, dict(hidden_size=48, intermediate_size=40, num_hidden_layers=2,
                        num_attention_heads=3, num_key_value_heads=3, num_experts=5, num_experts_per_tok=3, norm_topk_prob=False,
                        tie_word_embeddings=False, pad_token_id=0), torch.float32, "100KB"),
    "mixtral-untied-mqa-top2of4-bf16": (MixtralForCausalLM, MixtralConfig, dict(hidden_size=64, intermediate_size=48,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, num_local_experts=4, num_experts_per_tok=2,
                        tie_word_embeddings=False), torch.bfloat16, None),
}
# cuda_graph needs a GPU: scripts/gpu_session.sh runs this file with GRPO_INTEROP_DEVICE=cuda and all three modes.
DECODE_MODES = tuple(os.environ.get("GRPO_INTEROP_DECODE_MODES", "eager,static").split(","))
VOCAB = 1000
STD = 0.2  # peaky logits: greedy continuations are not decided by rounding


def make(root, name):
    cls, cfg_cls, over, dtype, shard = CASES[name]
    over = {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}, **over}
    cfg = cfg_cls(vocab_size=VOCAB, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=VOCAB - 2,
                  eos_token_id=VOCAB - 1, **over)
    cfg.initializer_range = STD
    torch.manual_seed(sum(map(ord, name)))
    model = cls(cfg).to(dtype).eval()
    with torch.no_grad():  # norms at 1 and zero biases are too tame for a parity check
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.add_(torch.randn_like(p) * 0.1)
            elif n.endswith(".bias"):
                p.normal_(0.0, STD)
    out = os.path.join(root, name)
    model.save_pretrained(out, **({"max_shard_size": shard} if shard else {}))
    files = sorted(os.listdir(out))
    if shard:
        assert "model.safetensors.index.json" in files, files
    saved = json.load(open(os.path.join(out, "config.json")))
    return out, files, saved


def main():
    root = temp_dir()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB - 2, (48,), generator=g).tolist()
    print("| model | saved | files | fp32: max abs diff / max abs logit | greedy 32 (fp32) | bf16: max abs diff / max abs logit | greedy 32 (bf16) |")
    print("|---|---|---|---|---|---|---|")
    only = os.environ.get("GRPO_INTEROP_CASES")  # a comma-separated subset of CASES' names (default: all)
    for name in (only.split(",") if only else CASES):
        d, files, saved = make(root, name)
        saved_dtype = CASES[name][3]
        row = [name, str(saved_dtype).replace("torch.", ""), str(sum(f.endswith(".safetensors") for f in files))]
        for dtype, torch_dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            hf = hf_model(d, torch_dtype)
            ref = hf(torch.tensor([ids])).logits[0].double()
            mine = our_logits(d, ids, dtype)
            rel = ((mine - ref).abs().max() / ref.abs().max()).item()
            theirs = hf_greedy(hf, ids[:16], 32)
            same = all(our_greedy(d, ids[:16], 32, dtype, mode) == theirs for mode in DECODE_MODES)
            if dtype == "float32":
                check(rel <= 1e-4, f"{name}: fp32 logits differ by {rel:.2e} of max |logit| (> 1e-4)")
                check(same, f"{name}: fp32 greedy continuations differ (decode modes {DECODE_MODES})")
            row += [f"{rel:.2e}", "yes" if same else "no"]
        print("| " + " | ".join(row) + " |", flush=True)
    finish()


if __name__ == "__main__":
    main()
