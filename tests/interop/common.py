"""Shared helpers of the interop tests (ctest label `interop`, pip build leg).

The Python libraries users compare us with act as referees here; they are test-side only, pinned in
scripts/requirements-pip.txt. Each test is a plain script: it prints what it compared as a table
and exits 1 on the first group that disagrees (ctest reads the exit code).
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAILS = []

# Qwen2.5's chat template, the branches without tools (those are not part of a GSM8K prompt).
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def bin_dir():
    """The build directory holding our executables: argv[1] (ctest passes it)."""
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} BUILD_DIR")
    return os.path.abspath(sys.argv[1])


def tool(name, *args, stdin=None, env=None):
    """Runs one of our executables (in the repository root, as the configs expect); its stdout, or exit with its stderr on failure."""
    r = subprocess.run([os.path.join(bin_dir(), name), *map(str, args)], input=stdin, capture_output=True,
                       text=True, env={**os.environ, **(env or {})}, timeout=600, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"{name} {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return r.stdout


def check(ok, what):
    """Records a failed comparison; the script's exit code says whether any failed."""
    if not ok:
        FAILS.append(what)
        print(f"FAIL: {what}", flush=True)
    return ok


def finish():
    if FAILS:
        print(f"{len(FAILS)} comparison(s) failed", flush=True)
        sys.exit(1)
    print("all comparisons agree", flush=True)


def temp_dir():
    return tempfile.mkdtemp(prefix="grpo_interop_")


# Where our side runs: the CPU in CI; the GPU session sets GRPO_INTEROP_DEVICE=cuda (transformers stays on the CPU).
DEVICE = os.environ.get("GRPO_INTEROP_DEVICE", "cpu")


def our_logits(model_dir, ids, dtype, adapter=None):
    """(T, V) float64 logits of our forward pass over `ids` (grpo_generate --score-ids --logits-out),
    with a LoRA adapter directory over model_dir when given."""
    from safetensors.torch import load_file
    path = os.path.join(temp_dir(), "logits.safetensors")
    tool("grpo_generate", model_dir, "--score-ids", ",".join(map(str, ids)), "--logits-out", path, "--dtype", dtype,
         "--device", DEVICE, *(["--adapter", adapter] if adapter else []))
    return load_file(path)["logits"].double()


def our_greedy(model_dir, prompt_ids, new, dtype, decode="eager"):
    out = tool("grpo_generate", model_dir, "--prompt-ids", ",".join(map(str, prompt_ids)), "--greedy", "--print-ids",
               "--ignore-eos", "--max-new-tokens", new, "--dtype", dtype, "--device", DEVICE, "--decode-mode", decode)
    return [int(t) for t in out.strip().split(",")]


def hf_model(path, dtype):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager").eval()
    m.generation_config.eos_token_id = None  # exactly max_new_tokens, as grpo_generate --ignore-eos
    m.generation_config.pad_token_id = 0
    torch.set_grad_enabled(False)
    return m


def hf_greedy(model, prompt_ids, new):
    import torch
    x = torch.tensor([prompt_ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=new)
    return out[0, len(prompt_ids):].tolist()


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save_tiny(model, out, perturb_norms=False):
    """Saves a random model made by transformers with the embedded tiny model's tokenizer and
    generation config, so grpo_train runs on it as on data/tiny-model; perturb_norms moves the norm
    weights off 1 (too tame for a parity check) with the caller's seeded generator."""
    import shutil
    import torch
    if perturb_norms:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith("norm.weight"):
                    p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "generation_config.json"):
        shutil.copy(os.path.join(ROOT, "data/tiny-model", f), out)
    return out


def tiny_llama3(root):
    """A random Llama 3.2-style model (tied, GQA 4:1, "llama3" RoPE scaling with
    original_max_position_embeddings 16, below the prompts' length) made and saved by transformers,
    with the embedded tiny model's tokenizer and generation config."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    out = os.path.join(root, "tiny-llama3")
    cfg = LlamaConfig(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=8,
                      num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, bos_token_id=256,
                      eos_token_id=258, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
    torch.manual_seed(4)
    model = LlamaForCausalLM(cfg).eval()
    return save_tiny(model, out)


def tiny_qwen3(root):
    """A random Qwen3 (q/k norms, head_dim 48 != 128 / 4, GQA 2:1) made and saved by transformers, with
    the embedded tiny model's tokenizer and generation config, so grpo_train runs on it as on data/tiny-model."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM
    out = os.path.join(root, "tiny-qwen3")
    cfg = Qwen3Config(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=48, max_position_embeddings=512, rms_norm_eps=1e-6,
                      bos_token_id=256, eos_token_id=258, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    torch.manual_seed(3)
    model = Qwen3ForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)


def tiny_olmo2(root):
    """A random OLMo 2 (norms after each block, q/k norms over the whole projections, GQA 2:1,
    untied) made and saved by transformers, with the embedded tiny model's tokenizer and generation
    config, so grpo_train runs on it as on data/tiny-model."""
    import torch
    from transformers import Olmo2Config, Olmo2ForCausalLM
    out = os.path.join(root, "tiny-olmo2")
    cfg = Olmo2Config(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256,
                      eos_token_id=258, pad_token_id=256, tie_word_embeddings=False,
                      rope_parameters={"rope_type": "default", "rope_theta": 5e5})
    torch.manual_seed(5)
    model = Olmo2ForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)


def tiny_smollm3(root):
    """A random SmolLM3 (NoPE in its 2nd and 4th layers, GQA 2:1, tied) made and saved by transformers,
    with the embedded tiny model's tokenizer and generation config."""
    import torch
    from transformers import SmolLM3Config, SmolLM3ForCausalLM
    out = os.path.join(root, "tiny-smollm3")
    cfg = SmolLM3Config(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256,
                        eos_token_id=258, pad_token_id=256, tie_word_embeddings=True, no_rope_layers=[1, 0, 1, 0],
                        rope_parameters={"rope_type": "default", "rope_theta": 2e6})
    torch.manual_seed(6)
    model = SmolLM3ForCausalLM(cfg).eval()
    return save_tiny(model, out)


def tiny_mistral(root):
    """A random Mistral (no biases, head_dim 24 != 128 / 4, GQA 2:1, untied, a 4,096-position sliding
    window that the demo's sequences never reach) made and saved by transformers."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM
    out = os.path.join(root, "tiny-mistral")
    cfg = MistralConfig(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=24, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256,
                        eos_token_id=258, pad_token_id=256, tie_word_embeddings=False, sliding_window=4096,
                        rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    torch.manual_seed(7)
    model = MistralForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)



def tiny_phi3(root):
    """A random Phi-3 (fused qkv_proj and gate_up_proj, RoPE over 3/4 of each head with longrope
    scaling past original_max_position_embeddings 16 (the demo's prompts are longer: long factors
    throughout), a 48-position sliding window the demo's sequences pass, GQA 2:1, tied as Phi-4-mini)
    made and saved by transformers."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM
    out = os.path.join(root, "tiny-phi3")
    half = int(128 // 4 * 0.75) // 2
    cfg = Phi3Config(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=512, original_max_position_embeddings=16, rms_norm_eps=1e-5,
                     bos_token_id=256, eos_token_id=258, pad_token_id=256, tie_word_embeddings=True, sliding_window=48,
                     rope_parameters={"rope_type": "longrope", "rope_theta": 1e4, "partial_rotary_factor": 0.75,
                                      "short_factor": [1.0 + 0.1 * i for i in range(half)],
                                      "long_factor": [2.0 + 0.5 * i for i in range(half)]})
    torch.manual_seed(8)
    model = Phi3ForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)


def tiny_gemma3(root):
    """A random Gemma 3 text model (sandwich norms scaling by 1 + w, GeGLU, embedding x sqrt(128),
    query_pre_attn_scalar 24, per-head q/k norms; layers 1 and 3 local with a 32-position window and
    their own RoPE base, layer 2 global with linear scaling; GQA 2:1, tied) made and saved by transformers."""
    import torch
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM
    out = os.path.join(root, "tiny-gemma3")
    cfg = Gemma3TextConfig(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256,
                           eos_token_id=258, pad_token_id=256, tie_word_embeddings=True, sliding_window=32, query_pre_attn_scalar=24,
                           layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                           rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                                            "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6}})
    torch.manual_seed(9)
    model = Gemma3ForCausalLM(cfg).eval()
    save_tiny(model, out, perturb_norms=True)
    # The tiny byte-level tokenizer, not Gemma's SentencePiece one (whose class wants an <unk> token).
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, f)
    return out


def tiny_olmo3(root):
    """A random OLMo 3 (OLMo 2's blocks; layers 1-3 of 4 local with a 24-position window the demo's
    sequences pass, layer 4 global; GQA 2:1, untied) made and saved by transformers."""
    import torch
    from transformers import Olmo3Config, Olmo3ForCausalLM
    out = os.path.join(root, "tiny-olmo3")
    cfg = Olmo3Config(vocab_size=259, hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256, eos_token_id=258,
                      pad_token_id=256, tie_word_embeddings=False, sliding_window=24,
                      rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 5e5},
                                       "full_attention": {"rope_type": "default", "rope_theta": 5e5}})
    torch.manual_seed(10)
    model = Olmo3ForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)


def tiny_qwen3_moe(root):
    """A random Qwen3-MoE (layers 1 and 3 sparse, top-2 of 4 experts of width 96, normalised; layer 2
    dense; GQA 2:1, tied) made and saved by transformers."""
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    out = os.path.join(root, "tiny-qwen3-moe")
    cfg = Qwen3MoeConfig(vocab_size=259, hidden_size=128, intermediate_size=256, moe_intermediate_size=96, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, num_experts=4, num_experts_per_tok=2,
                         norm_topk_prob=True, mlp_only_layers=[1], max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=256,
                         eos_token_id=258, pad_token_id=256, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    torch.manual_seed(11)
    model = Qwen3MoeForCausalLM(cfg).eval()
    return save_tiny(model, out, perturb_norms=True)
