// causal_lm.cpp: CausalLM in LibTorch; see causal_lm.h for the reference and the departures.
#include "grpo/model/causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "grpo/base/common.h"

namespace grpo {

using json = nlohmann::json;

bool sdpa_available() {
  return TORCH_VERSION_MAJOR >= 2;
}

void check_attention(AttentionKernel kernel) {
  if (kernel == AttentionKernel::Sdpa && !sdpa_available())
    throw Error("attention sdpa needs LibTorch >= 2.0 (scaled_dot_product_attention); this build uses LibTorch " +
                std::string(TORCH_VERSION));
}

AttentionKernel parse_attention(const std::string& s) {
  const auto kernel = parse_choice<AttentionKernel>(s, "attention");
  check_attention(kernel);
  return kernel;
}

bool CausalLMImpl::projections_packed() {
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto* layer = model->layers[l]->as<DecoderLayer>();
    const bool qkv = layer->self_attn->qkv_proj || layer->self_attn->qkv.intact();  // fused: one module, packed by birth
    bool gate_up = !layer->mlp || layer->mlp->gate_up_proj || layer->mlp->gate_up.intact();
    if (layer->moe)
      for (const auto& e : layer->moe->experts) gate_up = gate_up && e->gate_up.intact();
    if (!qkv || !gate_up) return false;
  }
  return true;
}

void CausalLMImpl::set_attention(AttentionKernel kernel) {
  attention = kernel;
  for (int64_t l = 0; l < cfg.n_layer; ++l) model->layers[l]->as<DecoderLayer>()->self_attn->kernel = kernel;
}

DecoderModelImpl::DecoderModelImpl(const ModelConfig& cfg, torch::TensorOptions opts) {
  embed_tokens = register_module("embed_tokens", Embedding(cfg.n_vocab, cfg.n_embd, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.n_layer; ++l) layers->push_back(DecoderLayer(cfg, opts, l));
  norm = register_module("norm", RMSNorm(cfg.n_embd, cfg, opts));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c, torch::TensorOptions opts) : cfg(c) {
  model = register_module("model", DecoderModel(cfg, opts));
  if (!cfg.tie_word_embeddings) lm_head = register_module("lm_head", Linear(cfg.n_embd, cfg.n_vocab, false, opts));
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
}

namespace {

// Additive mask (N, 1, 1, T, S) from allowed (N, T, S): 0 where allowed, the dtype's lowest
// finite value elsewhere (as HF: a row with no allowed key stays finite).
torch::Tensor additive_mask(const torch::Tensor& allowed, const torch::TensorOptions& opts) {
  const auto dtype = opts.dtype().toScalarType();
  const double neg = dtype == torch::kFloat64   ? std::numeric_limits<double>::lowest()
                     : dtype == torch::kFloat32 ? std::numeric_limits<float>::lowest()
                     : dtype == torch::kFloat16 ? -65504.0
                                                : -3.3895313892515355e38;
  const int64_t N = allowed.size(0), T = allowed.size(1), S = allowed.size(2);
  return torch::zeros({N, T, S}, opts).masked_fill(allowed.logical_not(), neg).view({N, 1, 1, T, S});
}

// allowed (N, T, S): query t (at sequence position query_pos[t]) sees key s (at key_pos[s], < 0: an
// empty slot) iff the key is real (real (N, S_all) over the sequence), not after the query and, with
// a window W, one of the query's last W positions (transformers: kv_idx > q_idx - W).
torch::Tensor allowed_keys(const torch::Tensor& key_pos, const torch::Tensor& query_pos, const torch::Tensor& real, int64_t window) {
  auto kp = key_pos.unsqueeze(0), qp = query_pos.unsqueeze(1);  // (1, S), (T, 1)
  auto ok = kp.ge(0) & kp.le(qp);                               // (T, S)
  if (window > 0) ok = ok & kp.gt(qp - window);
  auto real_keys = real.to(torch::kBool).index_select(1, key_pos.clamp_min(0));  // (N, S)
  return ok.unsqueeze(0) & real_keys.unsqueeze(1);                               // (N, T, S)
}

}  // namespace

torch::Tensor CausalLMImpl::layer_mask(const torch::Tensor& mask) const {
  if (attention == AttentionKernel::Eager) return mask;
  // sdpa: the rows of the g query heads sharing a KV head are (g, T)-major, so the mask is laid
  // out that way once per forward (every layer then shares it, also in what backward keeps).
  const int64_t N = mask.size(0), T = mask.size(3), S = mask.size(4), g = cfg.n_head / cfg.n_kv_head;
  return mask.expand({N, 1, g, T, S}).reshape({N, 1, g * T, S});  // (N, 1, g*T, S)
}

CausalLMImpl::LayerInputs CausalLMImpl::layer_inputs(const torch::Tensor& query_pos, const torch::Tensor& real,
                                                     const torch::Tensor& position_ids, int64_t T, const KVCache* cache,
                                                     const torch::TensorOptions& opts) const {
  LayerInputs in;
  std::map<std::pair<int64_t, bool>, torch::Tensor> masks;         // (window, ring) -> mask
  std::map<bool, std::pair<torch::Tensor, torch::Tensor>> tables;  // local RoPE -> cos, sin
  const int64_t rotary_dim = cfg.rotary_dim > 0 ? cfg.rotary_dim : cfg.head_dim;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const int64_t W = cfg.window_of(l);
    const bool ring = cache && !cache->grow && cache->ring(l), local = W > 0 && cfg.local_rope.has_value();
    auto& mask = masks[{W, ring}];
    if (!mask.defined()) {
      auto key_pos = cache ? cache->key_positions(l, T, query_pos.device()) : torch::arange(T, query_pos.options());  // (S,)
      mask = layer_mask(additive_mask(allowed_keys(key_pos, query_pos, real, W), opts));                              // (N, 1, 1, T, S)
    }
    auto& rope = tables[local];
    if (!rope.first.defined()) rope = rope_tables(cfg.rope_of(l), rotary_dim, position_ids, opts.dtype().toScalarType());
    in.mask.push_back(mask);
    in.cos.push_back(rope.first);
    in.sin.push_back(rope.second);
  }
  return in;
}

torch::Tensor CausalLMImpl::embed(const torch::Tensor& input_ids) {
  auto x = model->embed_tokens(input_ids);  // (N, T, D)
  if (cfg.embed_scale == 1.0) return x;
  // Gemma: the scale is an fp32 value rounded to the model's dtype, multiplied in it.
  return x * torch::scalar_tensor(cfg.embed_scale, x.options().dtype(torch::kFloat32)).to(x.scalar_type());
}

torch::Tensor CausalLMImpl::forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& position_ids, KVCache* cache) {
  const int64_t N = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = cache ? cache->length : 0, S = past + T;
  TORCH_CHECK(attention_mask.size(0) == N && attention_mask.size(1) == S, "attention_mask must be (N, past + T) = (", N, ", ", S, "), got ",
              attention_mask.sizes());
  auto x = embed(input_ids);  // (N, T, D)
  // Query i sits at sequence position past + i.
  auto query_pos = torch::arange(past, S, torch::TensorOptions().dtype(torch::kInt64).device(x.device()));  // (T,)
  const LayerInputs in = layer_inputs(query_pos, attention_mask, position_ids, T, cache, x.options());
  // A frozen embedding (LoRA) gives an input that needs no gradient; the checkpointed layers still
  // hold trainable adapters, so the input is made to need one (HF's enable_input_require_grads).
  auto trains = [&] {
    for (const auto& p : parameters())
      if (p.requires_grad()) return true;
    return false;
  };
  const bool recompute = gradient_checkpointing && !cache && torch::GradMode::is_enabled() && (x.requires_grad() || trains());
  if (recompute && !x.requires_grad()) x = x.detach().requires_grad_(true);
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto* layer = model->layers[l]->as<DecoderLayer>();
    x = recompute ? checkpointed_layer(*layer, x, in.cos[l], in.sin[l], in.mask[l])
                  : layer->forward(x, in.cos[l], in.sin[l], in.mask[l], cache, l);
  }
  if (cache) cache->length += T;
  return model->norm(x);
}

torch::Tensor CausalLMImpl::forward_decode_static(const torch::Tensor& input_ids, const torch::Tensor& key_mask,
                                                  const torch::Tensor& position_ids, const torch::Tensor& write_pos, KVCache& cache,
                                                  int64_t attend) {
  const int64_t N = input_ids.size(0);
  TORCH_CHECK(input_ids.size(1) == 1 && key_mask.size(0) == N && key_mask.size(1) == cache.capacity,
              "forward_decode_static: input_ids (N, 1) and key_mask (N, capacity = ", cache.capacity, "), got ", input_ids.sizes(), " and ",
              key_mask.sizes());
  TORCH_CHECK(attend >= 1 && attend <= cache.capacity, "forward_decode_static: attend must be in [1, capacity]");
  auto x = embed(input_ids);  // (N, 1, D)
  cache.write_pos = write_pos;
  cache.attend = attend;
  const LayerInputs in = layer_inputs(write_pos, key_mask, position_ids, 1, &cache, x.options());
  for (int64_t l = 0; l < cfg.n_layer; ++l)
    x = model->layers[l]->as<DecoderLayer>()->forward(x, in.cos[l], in.sin[l], in.mask[l], &cache, l);
  cache.write_pos = torch::Tensor();
  return model->norm(x);
}

torch::Tensor CausalLMImpl::output_weight() {
  return cfg.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
  auto z = head(hidden);  // (.., V)
  return cfg.final_softcap > 0 ? softcap(z, cfg.final_softcap) : z;
}

torch::Tensor CausalLMImpl::head(const torch::Tensor& hidden) {
  const auto w = output_weight();
  const int64_t D = hidden.size(-1), rows = hidden.numel() / std::max<int64_t>(1, D);
  if (AT_MKL_ENABLED() && hidden.device().is_cpu() && rows <= 64 && !(torch::GradMode::is_enabled() && hidden.requires_grad())) {
    // Decode on a CPU with MKL: W h^T, not h W^T. With few rows MKL repacks the whole (D, V)
    // right operand on every call (sgemm_scopy_right16: a third of a decode step at Qwen's
    // vocabulary); as the left operand it is streamed. Measured at 151,936 x 256: decode 2.6x
    // faster at 4 rows, 1.26x at 32. OpenBLAS (Debian's build) is 17% slower this way at 32.
    auto sizes = hidden.sizes().vec();
    sizes.back() = w.size(0);
    return torch::mm(w, hidden.reshape({rows, D}).t()).t().contiguous().view(sizes);  // (.., V)
  }
  return torch::nn::functional::linear(hidden, w);  // (N, T, V)
}

torch::Tensor CausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  auto mask = attention_mask.defined() ? attention_mask : torch::ones_like(input_ids);
  return logits(forward_hidden(input_ids, mask, positions_from_mask(mask)));
}

}  // namespace grpo
