// causal_lm.cpp: CausalLM in LibTorch; see causal_lm.h for the reference and the departures.
#include "grpo/model/causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "grpo/base/common.h"

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// KV cache

KVCache KVCache::allocate(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::TensorOptions opts) {
  KVCache c;
  c.capacity = capacity;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    c.k.push_back(torch::zeros({n_seq, cfg.n_kv_head, capacity, cfg.head_dim}, opts));
    c.v.push_back(torch::zeros({n_seq, cfg.n_kv_head, capacity, cfg.head_dim}, opts));
  }
  return c;
}

KVCache KVCache::growing(int64_t n_layer) {
  KVCache c;
  c.grow = true;
  c.k.resize(n_layer);
  c.v.resize(n_layer);
  return c;
}

int64_t KVCache::bytes_needed(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype) {
  return 2 * cfg.n_layer * n_seq * cfg.n_kv_head * capacity * cfg.head_dim * static_cast<int64_t>(torch::elementSize(dtype));
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, torch::Tensor new_k, torch::Tensor new_v) {
  auto &K = k[layer], &V = v[layer];  // (N, Hkv, capacity, hd), or the joined past when growing
  if (write_pos.defined()) {          // static decode step: the position comes from a device tensor
    K.index_copy_(2, write_pos, new_k);
    V.index_copy_(2, write_pos, new_v);
    return {K.narrow(2, 0, attend), V.narrow(2, 0, attend)};  // (N, Hkv, S = attend, hd)
  }
  if (grow) {
    if (K.defined()) {
      new_k = torch::cat({K, new_k}, 2);  // (N, Hkv, S, hd)
      new_v = torch::cat({V, new_v}, 2);
    }
    K = new_k;
    V = new_v;
    return {K, V};
  }
  const int64_t past = length, T = new_k.size(2);
  TORCH_CHECK(past + T <= capacity, "KV cache overflow: ", past + T, " > capacity ", capacity);
  K.narrow(2, past, T).copy_(new_k);
  V.narrow(2, past, T).copy_(new_v);
  return {K.narrow(2, 0, past + T), V.narrow(2, 0, past + T)};  // (N, Hkv, S, hd)
}

void KVCache::select_rows(const torch::Tensor& index) {
  for (auto& t : k) t = t.index_select(0, index);
  for (auto& t : v) t = t.index_select(0, index);
}

// ---------------------------------------------------------------------------------------------
// Modules

namespace {

// y = x W^T + b over the last dim as one 2-D GEMM: with a bias that is a single addmm (LibTorch
// 1.13's CPU linear on 3-D input runs mm and then a separate bias add).
torch::Tensor linear_2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return torch::nn::functional::linear(x.reshape({-1, x.size(-1)}), weight, bias).view(sizes);
}

// A plain tensor over `sizes` (contiguous) at element `offset` of `whole`'s storage. Not narrow():
// an autograd view would tie the parameter to `whole`, and a parameter must be a leaf of its own.
torch::Tensor slice_of(const torch::Tensor& whole, int64_t offset, std::vector<int64_t> sizes) {
  std::vector<int64_t> strides(sizes.size(), 1);
  for (int64_t i = int64_t(sizes.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * sizes[i + 1];
  return torch::empty({0}, whole.options()).set_(whole.storage(), whole.storage_offset() + offset, sizes, strides);
}

}  // namespace

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias, torch::TensorOptions opts)
    : LinearImpl(torch::empty({out, in}, opts), has_bias ? torch::empty({out}, opts) : torch::Tensor()) {}

LinearImpl::LinearImpl(torch::Tensor w, torch::Tensor b) {
  weight = register_parameter("weight", std::move(w));  // (out, in) as in HF
  if (b.defined()) bias = register_parameter("bias", std::move(b));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = linear_2d(x, weight, bias);
  if (!lora_active()) return y;
  return (y.to(torch::kFloat32) + lora_delta(x)).to(y.scalar_type());
}

torch::Tensor LinearImpl::lora_delta(const torch::Tensor& x) const {
  auto h = x.to(torch::kFloat32);
  if (lora_dropout > 0 && is_training() && torch::GradMode::is_enabled()) h = torch::dropout(h, lora_dropout, true);
  // The scaling multiplies the (.., r) intermediate, not the (.., out) result: autograd keeps what
  // a product saves, and r << out (saving the result cost ~27 KB per token and layer at D = 768).
  return linear_2d(linear_2d(h, lora_A, {}) * lora_scaling, lora_B, {});  // (.., r) -> (.., out)
}

PackedLinear PackedLinear::make(const std::vector<int64_t>& out, int64_t in, bool has_bias, torch::TensorOptions opts) {
  PackedLinear p;
  const int64_t rows = std::accumulate(out.begin(), out.end(), int64_t(0));
  p.weight = torch::empty({rows, in}, opts);  // (sum out, in)
  if (has_bias) p.bias = torch::empty({rows}, opts);
  int64_t row = 0;
  for (int64_t n : out) {
    p.parts.push_back(Linear(slice_of(p.weight, row * in, {n, in}), has_bias ? slice_of(p.bias, row, {n}) : torch::Tensor()));
    row += n;
  }
  return p;
}

bool PackedLinear::intact() const {
  auto at = [](const torch::Tensor& whole, int64_t offset, const torch::Tensor& part) {
    return part.defined() && part.scalar_type() == whole.scalar_type() && part.device() == whole.device() && part.is_contiguous() &&
           part.data_ptr() == static_cast<char*>(whole.data_ptr()) + offset * whole.element_size();
  };
  int64_t row = 0;
  for (const auto& part : parts) {
    if (!at(weight, row * weight.size(1), part->weight)) return false;
    if (bias.defined() && !at(bias, row, part->bias)) return false;
    row += part->weight.size(0);
  }
  return row == weight.size(0);
}

torch::Tensor PackedLinear::forward(const torch::Tensor& x) const {
  auto y = linear_2d(x, weight, bias);  // (.., sum out)
  if (std::none_of(parts.begin(), parts.end(), [](const Linear& p) { return p->lora_active(); })) return y;
  std::vector<torch::Tensor> deltas;  // each part's LoRA term, zeros for a part without one
  for (const auto& p : parts) {
    auto sizes = x.sizes().vec();
    sizes.back() = p->weight.size(0);
    deltas.push_back(p->lora_active() ? p->lora_delta(x) : torch::zeros(sizes, x.options().dtype(torch::kFloat32)));
  }
  return (y.to(torch::kFloat32) + torch::cat(deltas, -1)).to(y.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t n, int64_t dim, torch::TensorOptions opts) {
  weight = register_parameter("weight", torch::empty({n, dim}, opts));  // (V, D)
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  return torch::embedding(weight, ids);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, torch::TensorOptions opts, bool weight_fp32_) : eps(eps_), weight_fp32(weight_fp32_) {
  weight = register_parameter("weight", torch::empty({dim}, opts));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto h = x.to(at::promote_types(x.scalar_type(), torch::kFloat32));  // HF: fp32; float64 (tests) stays exact
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (weight_fp32) return (weight * h).to(x.scalar_type());
  return weight * h.to(x.scalar_type());
}

namespace {

// HF: x * cos + rotate_half(x) * sin, rotate_half(x1, x2) = (-x2, x1) over the head dim's halves.
// Here the sign lives in the table (sin = (-sin, +sin), see rope_tables) and each half adds its
// product in place: the same products, in 3 kernels instead of HF's 5, on any strides (q and k
// are read straight out of the packed q/k/v GEMM output). x (N, T, heads, hd), tables (N, T, 1, hd).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin) {
  const int64_t h = x.size(-1) / 2;
  auto out = x * cos;
  out.narrow(-1, 0, h).addcmul_(x.narrow(-1, h, h), signed_sin.narrow(-1, 0, h));
  out.narrow(-1, h, h).addcmul_(x.narrow(-1, 0, h), signed_sin.narrow(-1, h, h));
  return out;
}

}  // namespace

AttentionImpl::AttentionImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer)
    : n_head(cfg.n_head), n_kv_head(cfg.n_kv_head), head_dim(cfg.head_dim) {
  use_rope = cfg.rope_layers.empty() || cfg.rope_layers.at(static_cast<size_t>(layer));
  sliding_window = cfg.sliding_window;
  qkv = PackedLinear::make({n_head * head_dim, n_kv_head * head_dim, n_kv_head * head_dim}, cfg.n_embd, cfg.attention_bias, opts);
  q_proj = register_module("q_proj", qkv.parts[0]);
  k_proj = register_module("k_proj", qkv.parts[1]);
  v_proj = register_module("v_proj", qkv.parts[2]);
  o_proj = register_module("o_proj", Linear(n_head * head_dim, cfg.n_embd, cfg.o_proj_bias, opts));
  if (cfg.qk_norm != QkNorm::None) {
    whole_qk_norm = cfg.qk_norm == QkNorm::Whole;
    const int64_t q_width = whole_qk_norm ? n_head * head_dim : head_dim, k_width = whole_qk_norm ? n_kv_head * head_dim : head_dim;
    q_norm = register_module("q_norm", RMSNorm(q_width, cfg.rms_norm_eps, opts, cfg.norm_weight_fp32));
    k_norm = register_module("k_norm", RMSNorm(k_width, cfg.rms_norm_eps, opts, cfg.norm_weight_fp32));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                     KVCache* cache, int64_t layer, bool no_graph) {
  const int64_t N = x.size(0), T = x.size(1), g = n_head / n_kv_head;
  torch::Tensor q, k, v;
  const int64_t n_q = n_head * head_dim, n_kv = n_kv_head * head_dim;
  auto rope = [&](const torch::Tensor& t) { return use_rope ? apply_rope(t, cos, sin) : t; };  // NoPE layers: none
  if (no_graph && qkv.intact()) {
    // One GEMM for q, k and v; without q/k norms, RoPE over the adjacent q and k heads at once.
    auto h = qkv.forward(x);  // (N, T, (H + 2 Hkv) hd)
    if (whole_qk_norm) {
      q = rope(q_norm(h.narrow(-1, 0, n_q)).view({N, T, n_head, head_dim}));        // (N, T, H, hd)
      k = rope(k_norm(h.narrow(-1, n_q, n_kv)).view({N, T, n_kv_head, head_dim}));  // (N, T, Hkv, hd)
    } else if (q_norm) {
      q = rope(q_norm(h.narrow(-1, 0, n_q).view({N, T, n_head, head_dim})));        // (N, T, H, hd)
      k = rope(k_norm(h.narrow(-1, n_q, n_kv).view({N, T, n_kv_head, head_dim})));  // (N, T, Hkv, hd)
    } else {
      auto qk = rope(h.narrow(-1, 0, n_q + n_kv).view({N, T, n_head + n_kv_head, head_dim}));  // (N, T, H + Hkv, hd)
      q = qk.narrow(2, 0, n_head);                                                             // (N, T, H, hd)
      k = qk.narrow(2, n_head, n_kv_head);                                                     // (N, T, Hkv, hd)
    }
    v = h.narrow(-1, n_q + n_kv, n_kv).view({N, T, n_kv_head, head_dim});  // (N, T, Hkv, hd)
  } else {
    q = q_proj(x);  // (N, T, H hd)
    k = k_proj(x);  // (N, T, Hkv hd)
    if (whole_qk_norm) {
      q = q_norm(q);
      k = k_norm(k);
    }
    q = q.view({N, T, n_head, head_dim});     // (N, T, H, hd)
    k = k.view({N, T, n_kv_head, head_dim});  // (N, T, Hkv, hd)
    if (q_norm && !whole_qk_norm) {
      q = q_norm(q);
      k = k_norm(k);
    }
    q = rope(q);
    k = rope(k);
    v = v_proj(x).view({N, T, n_kv_head, head_dim});  // (N, T, Hkv, hd)
  }
  q = q.transpose(1, 2);                                   // (N, H, T, hd)
  k = k.transpose(1, 2);                                   // (N, Hkv, T, hd)
  v = v.transpose(1, 2);                                   // (N, Hkv, T, hd)
  if (cache) std::tie(k, v) = cache->append(layer, k, v);  // (N, Hkv, S, hd): what attention reads
  const int64_t S = k.size(2);
  // Static decoding attends over its whole preallocated capacity, the unwritten part masked out:
  // generate() checks its real length (check_sliding_window) before it starts.
  if (sliding_window > 0 && S > sliding_window && !(cache && cache->write_pos.defined()))
    throw Error("attention over " + std::to_string(S) + " positions, past the model's sliding window of " + std::to_string(sliding_window) +
                " (config.json \"sliding_window\"): windows that bind are not supported yet");
  // GQA without repeating K/V: the g query heads sharing a KV head become g*T query rows.
  auto qg = q.reshape({N, n_kv_head, g * T, head_dim});  // (N, Hkv, g*T, hd)
#if TORCH_VERSION_MAJOR >= 2
  if (kernel == AttentionKernel::Sdpa) {
    TORCH_CHECK(mask.dim() == 4, "sdpa attention expects the grouped (N, 1, g*T, S) mask");
    auto out = at::scaled_dot_product_attention(qg, k, v, mask);  // (N, Hkv, g*T, hd)
    // reshape, not view: fused kernels may return another memory layout.
    out = out.reshape({N, n_head, T, head_dim}).transpose(1, 2).reshape({N, T, n_head * head_dim});
    return o_proj(out);
  }
#endif
  auto scores = torch::matmul(qg, k.transpose(-1, -2)) * (1.0 / std::sqrt(double(head_dim)));  // (N, Hkv, g*T, S)
  scores = scores.view({N, n_kv_head, g, T, S}) + mask;                                        // mask (N, 1, 1, T, S)
  // fp32 softmax for the 16-bit types; float64 stays float64 (its mask value would be -inf in fp32).
  const auto sm_dtype = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto probs = torch::softmax(scores, -1, sm_dtype).to(q.scalar_type()).view({N, n_kv_head, g * T, S});
  auto out = torch::matmul(probs, v);  // (N, Hkv, g*T, hd)
  out = out.view({N, n_head, T, head_dim}).transpose(1, 2).reshape({N, T, n_head * head_dim});
  return o_proj(out);
}

MLPImpl::MLPImpl(const ModelConfig& cfg, torch::TensorOptions opts) {
  gate_up = PackedLinear::make({cfg.n_ff, cfg.n_ff}, cfg.n_embd, false, opts);
  gate_proj = register_module("gate_proj", gate_up.parts[0]);
  up_proj = register_module("up_proj", gate_up.parts[1]);
  down_proj = register_module("down_proj", Linear(cfg.n_ff, cfg.n_embd, false, opts));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x, bool no_graph) {
  if (no_graph && gate_up.intact()) {
    const int64_t F = gate_proj->weight.size(0);
    auto h = gate_up.forward(x);  // (N, T, 2F)
    return down_proj(torch::silu(h.narrow(-1, 0, F)) * h.narrow(-1, F, F));
  }
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer) {
  self_attn = register_module("self_attn", Attention(cfg, opts, layer));
  mlp = register_module("mlp", MLP(cfg, opts));
  auto norm = [&] { return RMSNorm(cfg.n_embd, cfg.rms_norm_eps, opts, cfg.norm_weight_fp32); };
  if (cfg.norm_placement == NormPlacement::Pre) input_layernorm = register_module("input_layernorm", norm());
  post_attention_layernorm = register_module("post_attention_layernorm", norm());
  if (cfg.norm_placement == NormPlacement::Post) post_feedforward_layernorm = register_module("post_feedforward_layernorm", norm());
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask, KVCache* cache, int64_t layer) {
  // Packed GEMMs only where no graph is recorded: a graph needs each parameter's own GEMM for its
  // gradient, and a checkpointed layer (x requires grad) must recompute with the kernels it ran.
  const bool no_graph = !torch::GradMode::is_enabled() && !x.requires_grad();
  if (post_feedforward_layernorm) {  // NormPlacement::Post
    auto h = x + post_attention_layernorm(self_attn->forward(x, cos, sin, mask, cache, layer, no_graph));
    return h + post_feedforward_layernorm(mlp->forward(h, no_graph));
  }
  auto h = x + self_attn->forward(input_layernorm(x), cos, sin, mask, cache, layer, no_graph);
  return h + mlp->forward(post_attention_layernorm(h), no_graph);
}

void check_sliding_window(const ModelConfig& cfg, int64_t sequence_length, const std::string& what) {
  if (cfg.sliding_window > 0 && sequence_length > cfg.sliding_window)
    throw Error(what + " spans " + std::to_string(sequence_length) + " positions, past the model's sliding window of " +
                std::to_string(cfg.sliding_window) +
                " (config.json \"sliding_window\"): windows that bind are not supported yet; keep it within " +
                std::to_string(cfg.sliding_window));
}

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
    if (!layer->self_attn->qkv.intact() || !layer->mlp->gate_up.intact()) return false;
  }
  return true;
}

void CausalLMImpl::set_attention(AttentionKernel kernel) {
  attention = kernel;
  for (int64_t l = 0; l < cfg.n_layer; ++l) model->layers[l]->as<DecoderLayer>()->self_attn->kernel = kernel;
}

// ---------------------------------------------------------------------------------------------
// Gradient checkpointing

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CheckpointedLayerFn : public torch::autograd::Function<CheckpointedLayerFn> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor cos, torch::Tensor sin, torch::Tensor mask,
                               DecoderLayerImpl* layer) {
    // Grad mode is off inside Function::forward: the layer runs without recording its activations.
    ctx->save_for_backward({x, cos, sin, mask});
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    return {layer->forward(x, cos, sin, mask, nullptr, 0)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    torch::AutoGradMode enable(true);
    auto x = saved[0].detach().requires_grad_(true);  // (N, T, D)
    auto out = layer->forward(x, saved[1], saved[2], saved[3], nullptr, 0);
    torch::autograd::backward({out}, {grads[0]});  // parameters' .grad += ...
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed_layer(DecoderLayerImpl& layer, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& mask) {
  TORCH_CHECK(x.requires_grad(), "checkpointed_layer: the input must require grad, or no parameter gradient flows");
  return CheckpointedLayerFn::apply(x, cos, sin, mask, &layer)[0];
}

DecoderModelImpl::DecoderModelImpl(const ModelConfig& cfg, torch::TensorOptions opts) {
  embed_tokens = register_module("embed_tokens", Embedding(cfg.n_vocab, cfg.n_embd, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.n_layer; ++l) layers->push_back(DecoderLayer(cfg, opts, l));
  norm = register_module("norm", RMSNorm(cfg.n_embd, cfg.rms_norm_eps, opts, cfg.norm_weight_fp32));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c, torch::TensorOptions opts) : cfg(c) {
  model = register_module("model", DecoderModel(cfg, opts));
  if (!cfg.tie_word_embeddings) lm_head = register_module("lm_head", Linear(cfg.n_embd, cfg.n_vocab, false, opts));
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
}

namespace {

// Inverse frequencies (hd/2,) in fp32, with the config's scaling, step for step as transformers
// (modeling_rope_utils: _compute_default / _linear_scaling / _llama3_parameters).
torch::Tensor rope_inv_freq(const ModelConfig& cfg, const torch::TensorOptions& opts32) {
  auto inv_freq = 1.0 / torch::pow(cfg.rope_theta, torch::arange(0, cfg.head_dim, 2, opts32) / double(cfg.head_dim));
  const RopeScaling& rs = cfg.rope_scaling;
  if (rs.type == RopeType::Linear) return inv_freq / rs.factor;
  if (rs.type != RopeType::Llama3) return inv_freq;
  const double old_len = double(rs.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / rs.low_freq_factor, high_freq_wavelen = old_len / rs.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
  auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
  auto medium = wavelen.ge(high_freq_wavelen).logical_and(wavelen.le(low_freq_wavelen));
  return torch::where(medium, smoothed, scaled);
}

// RoPE tables for positions (N, T), computed in fp32 like HF, then cast: cos and the signed sin
// (-sin, +sin) over the two halves of the head dim (see apply_rope), each (N, T, 1, hd).
std::pair<torch::Tensor, torch::Tensor> rope_tables(const ModelConfig& cfg, const torch::Tensor& position_ids, torch::ScalarType dtype) {
  auto opts32 = torch::TensorOptions().dtype(torch::kFloat32).device(position_ids.device());
  auto inv_freq = rope_inv_freq(cfg, opts32);                              // (hd/2,)
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // (N, T, hd/2)
  auto cos = freqs.cos(), sin = freqs.sin();                               // (N, T, hd/2)
  return {torch::cat({cos, cos}, -1).to(dtype).unsqueeze(2), torch::cat({-sin, sin}, -1).to(dtype).unsqueeze(2)};
}

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

}  // namespace

torch::Tensor CausalLMImpl::layer_mask(const torch::Tensor& mask) const {
  if (attention == AttentionKernel::Eager) return mask;
  // sdpa: the rows of the g query heads sharing a KV head are (g, T)-major, so the mask is laid
  // out that way once per forward (every layer then shares it, also in what backward keeps).
  const int64_t N = mask.size(0), T = mask.size(3), S = mask.size(4), g = cfg.n_head / cfg.n_kv_head;
  return mask.expand({N, 1, g, T, S}).reshape({N, 1, g * T, S});  // (N, 1, g*T, S)
}

torch::Tensor CausalLMImpl::forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& position_ids, KVCache* cache) {
  const int64_t N = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = cache ? cache->length : 0, S = past + T;
  TORCH_CHECK(attention_mask.size(0) == N && attention_mask.size(1) == S, "attention_mask must be (N, past + T) = (", N, ", ", S, "), got ",
              attention_mask.sizes());
  auto x = model->embed_tokens(input_ids);  // (N, T, D)
  auto [cos, sin] = rope_tables(cfg, position_ids, x.scalar_type());
  // Query i (absolute past + i) sees key j iff j <= past + i and key j is real.
  auto key_idx = torch::arange(S, torch::TensorOptions().dtype(torch::kInt64).device(x.device()));
  auto query_idx = key_idx.narrow(0, past, T).unsqueeze(1);          // (T, 1)
  auto allowed = (key_idx.unsqueeze(0) <= query_idx).unsqueeze(0) &  // (1, T, S)
                 attention_mask.to(torch::kBool).unsqueeze(1);       // (N, 1, S)
  auto mask = layer_mask(additive_mask(allowed, x.options()));       // (N, 1, 1, T, S)
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
    x = recompute ? checkpointed_layer(*layer, x, cos, sin, mask) : layer->forward(x, cos, sin, mask, cache, l);
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
  auto x = model->embed_tokens(input_ids);  // (N, 1, D)
  auto [cos, sin] = rope_tables(cfg, position_ids, x.scalar_type());
  auto key_idx = torch::arange(attend, torch::TensorOptions().dtype(torch::kInt64).device(x.device()));  // (S,)
  auto allowed = (key_idx <= write_pos).unsqueeze(0) & key_mask.narrow(1, 0, attend).to(torch::kBool);   // (N, S)
  auto mask = layer_mask(additive_mask(allowed.unsqueeze(1), x.options()));                              // (N, 1, 1, 1, S)
  cache.write_pos = write_pos;
  cache.attend = attend;
  for (int64_t l = 0; l < cfg.n_layer; ++l) x = model->layers[l]->as<DecoderLayer>()->forward(x, cos, sin, mask, &cache, l);
  cache.write_pos = torch::Tensor();
  return model->norm(x);
}

torch::Tensor CausalLMImpl::output_weight() {
  return cfg.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
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
