// blocks.cpp: the shared blocks every model family is built of (linear layers, packed projections,
// embedding, RMSNorm, attention, MLP, the decoder layer, gradient checkpointing); declared in
// causal_lm.h, whose header comment states the reference and the departures.
#include <cmath>
#include <numeric>

#include "grpo/base/common.h"
#include "grpo/model/causal_lm.h"

namespace grpo {

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
  if (!weight.defined()) return false;  // never made (a fused module instead)
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

RMSNormImpl::RMSNormImpl(int64_t dim, const ModelConfig& cfg, torch::TensorOptions opts)
    : eps(cfg.rms_norm_eps), weight_fp32(cfg.norm_weight_fp32), unit_offset(cfg.norm_unit_offset) {
  weight = register_parameter("weight", torch::empty({dim}, opts));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto dt = at::promote_types(x.scalar_type(), torch::kFloat32);  // HF: fp32; float64 (tests) stays exact
  auto h = x.to(dt);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (unit_offset) return (h * (1.0 + weight.to(dt))).to(x.scalar_type());  // Gemma: x (1 + w), all in fp32
  if (weight_fp32) return (weight * h).to(x.scalar_type());
  return weight * h.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer)
    : n_head(cfg.n_head), n_kv_head(cfg.n_kv_head), head_dim(cfg.head_dim) {
  use_rope = cfg.rope_layers.empty() || cfg.rope_layers.at(static_cast<size_t>(layer));
  custom_scale = cfg.attn_scale > 0;
  scale = custom_scale ? cfg.attn_scale : 1.0 / std::sqrt(double(head_dim));
  const int64_t q = n_head * head_dim, kv = n_kv_head * head_dim;
  if (cfg.fused_projections) {
    qkv_proj = register_module("qkv_proj", Linear(cfg.n_embd, q + 2 * kv, cfg.attention_bias, opts));
  } else {
    qkv = PackedLinear::make({q, kv, kv}, cfg.n_embd, cfg.attention_bias, opts);
    q_proj = register_module("q_proj", qkv.parts[0]);
    k_proj = register_module("k_proj", qkv.parts[1]);
    v_proj = register_module("v_proj", qkv.parts[2]);
  }
  o_proj = register_module("o_proj", Linear(q, cfg.n_embd, cfg.o_proj_bias, opts));
  if (cfg.qk_norm != QkNorm::None) {
    whole_qk_norm = cfg.qk_norm == QkNorm::Whole;
    q_norm = register_module("q_norm", RMSNorm(whole_qk_norm ? q : head_dim, cfg, opts));
    k_norm = register_module("k_norm", RMSNorm(whole_qk_norm ? kv : head_dim, cfg, opts));
  }
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> AttentionImpl::project(const torch::Tensor& x, const torch::Tensor& cos,
                                                                               const torch::Tensor& sin, bool no_graph) {
  const int64_t N = x.size(0), T = x.size(1), n_q = n_head * head_dim, n_kv = n_kv_head * head_dim;
  auto rope = [&](const torch::Tensor& t) { return use_rope ? apply_rope(t, cos, sin) : t; };  // NoPE layers: none
  torch::Tensor h;  // (N, T, (H + 2 Hkv) hd) where one GEMM made q, k and v
  if (qkv_proj)
    h = qkv_proj(x);
  else if (no_graph && qkv.intact())
    h = qkv.forward(x);
  if (h.defined() && !q_norm) {                                                              // RoPE over the adjacent q and k heads at once
    auto qk = rope(h.narrow(-1, 0, n_q + n_kv).view({N, T, n_head + n_kv_head, head_dim}));  // (N, T, H + Hkv, hd)
    return {qk.narrow(2, 0, n_head), qk.narrow(2, n_head, n_kv_head), h.narrow(-1, n_q + n_kv, n_kv).view({N, T, n_kv_head, head_dim})};
  }
  auto q = h.defined() ? h.narrow(-1, 0, n_q) : q_proj(x);     // (N, T, H hd)
  auto k = h.defined() ? h.narrow(-1, n_q, n_kv) : k_proj(x);  // (N, T, Hkv hd)
  auto v = h.defined() ? h.narrow(-1, n_q + n_kv, n_kv) : v_proj(x);
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
  return {rope(q), rope(k), v.view({N, T, n_kv_head, head_dim})};
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                     KVCache* cache, int64_t layer, bool no_graph) {
  const int64_t N = x.size(0), T = x.size(1), g = n_head / n_kv_head;
  auto [q, k, v] = project(x, cos, sin, no_graph);
  q = q.transpose(1, 2);                                   // (N, H, T, hd)
  k = k.transpose(1, 2);                                   // (N, Hkv, T, hd)
  v = v.transpose(1, 2);                                   // (N, Hkv, T, hd)
  if (cache) std::tie(k, v) = cache->append(layer, k, v);  // (N, Hkv, S, hd): what attention reads
  const int64_t S = k.size(2);
  // GQA without repeating K/V: the g query heads sharing a KV head become g*T query rows.
  auto qg = q.reshape({N, n_kv_head, g * T, head_dim});  // (N, Hkv, g*T, hd)
#if TORCH_VERSION_MAJOR >= 2
  if (kernel == AttentionKernel::Sdpa) {
    TORCH_CHECK(mask.dim() == 4, "sdpa attention expects the grouped (N, 1, g*T, S) mask");
    // The scale only where the family sets one: the default is sdpa's own 1/sqrt(hd).
    const auto sdpa_scale = custom_scale ? c10::optional<double>(scale) : c10::nullopt;
    auto out = at::scaled_dot_product_attention(qg, k, v, mask, 0.0, false, sdpa_scale);  // (N, Hkv, g*T, hd)
    // reshape, not view: fused kernels may return another memory layout.
    out = out.reshape({N, n_head, T, head_dim}).transpose(1, 2).reshape({N, T, n_head * head_dim});
    return o_proj(out);
  }
#endif
  auto scores = torch::matmul(qg, k.transpose(-1, -2)) * scale;  // (N, Hkv, g*T, S)
  scores = scores.view({N, n_kv_head, g, T, S}) + mask;          // mask (N, 1, 1, T, S)
  // fp32 softmax for the 16-bit types; float64 stays float64 (its mask value would be -inf in fp32).
  const auto sm_dtype = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto probs = torch::softmax(scores, -1, sm_dtype).to(q.scalar_type()).view({N, n_kv_head, g * T, S});
  auto out = torch::matmul(probs, v);  // (N, Hkv, g*T, hd)
  out = out.view({N, n_head, T, head_dim}).transpose(1, 2).reshape({N, T, n_head * head_dim});
  return o_proj(out);
}

MLPImpl::MLPImpl(const ModelConfig& cfg, torch::TensorOptions opts) : act(cfg.hidden_act) {
  if (cfg.fused_projections) {
    gate_up_proj = register_module("gate_up_proj", Linear(cfg.n_embd, 2 * cfg.n_ff, false, opts));
  } else {
    gate_up = PackedLinear::make({cfg.n_ff, cfg.n_ff}, cfg.n_embd, false, opts);
    gate_proj = register_module("gate_proj", gate_up.parts[0]);
    up_proj = register_module("up_proj", gate_up.parts[1]);
  }
  down_proj = register_module("down_proj", Linear(cfg.n_ff, cfg.n_embd, false, opts));
}

MLPImpl::MLPImpl(const ModelConfig& cfg, int64_t width, torch::TensorOptions opts, bool) : act(cfg.hidden_act) {
  const bool mixtral = cfg.expert_names == ExpertNames::Mixtral;
  gate_up = PackedLinear::make({width, width}, cfg.n_embd, false, opts);
  gate_proj = register_module(mixtral ? "w1" : "gate_proj", gate_up.parts[0]);
  up_proj = register_module(mixtral ? "w3" : "up_proj", gate_up.parts[1]);
  down_proj = register_module(mixtral ? "w2" : "down_proj", Linear(width, cfg.n_embd, false, opts));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x, bool no_graph) {
  auto gate_act = [&](const torch::Tensor& g) { return act == Activation::GeluTanh ? torch::gelu(g, "tanh") : torch::silu(g); };
  torch::Tensor h;  // (N, T, 2F) where one GEMM made gate and up
  if (gate_up_proj)
    h = gate_up_proj(x);
  else if (no_graph && gate_up.intact())
    h = gate_up.forward(x);
  if (h.defined()) {
    const int64_t F = h.size(-1) / 2;
    return down_proj(gate_act(h.narrow(-1, 0, F)) * h.narrow(-1, F, F));
  }
  return down_proj(gate_act(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer) : placement(cfg.norm_placement) {
  self_attn = register_module("self_attn", Attention(cfg, opts, layer));
  if (cfg.sparse(layer))
    moe = register_module(cfg.expert_names == ExpertNames::Mixtral ? "block_sparse_moe" : "mlp", MoE(cfg, opts));
  else
    mlp = register_module("mlp", MLP(cfg, opts));
  auto norm = [&](const char* name) { return register_module(name, RMSNorm(cfg.n_embd, cfg, opts)); };
  if (placement != NormPlacement::Post) input_layernorm = norm("input_layernorm");
  post_attention_layernorm = norm("post_attention_layernorm");
  if (placement == NormPlacement::Sandwich) pre_feedforward_layernorm = norm("pre_feedforward_layernorm");
  if (placement != NormPlacement::Pre) post_feedforward_layernorm = norm("post_feedforward_layernorm");
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask, KVCache* cache, int64_t layer) {
  // Packed GEMMs only where no graph is recorded: a graph needs each parameter's own GEMM for its
  // gradient, and a checkpointed layer (x requires grad) must recompute with the kernels it ran.
  const bool no_graph = !torch::GradMode::is_enabled() && !x.requires_grad();
  auto attn = [&](const torch::Tensor& in) { return self_attn->forward(in, cos, sin, mask, cache, layer, no_graph); };
  auto ffn = [&](const torch::Tensor& in) { return moe ? moe->forward(in, no_graph) : mlp->forward(in, no_graph); };
  switch (placement) {
    case NormPlacement::Pre: {
      auto h = x + attn(input_layernorm(x));
      return h + ffn(post_attention_layernorm(h));
    }
    case NormPlacement::Post: {
      auto h = x + post_attention_layernorm(attn(x));
      return h + post_feedforward_layernorm(ffn(h));
    }
    case NormPlacement::Sandwich: {
      auto h = x + post_attention_layernorm(attn(input_layernorm(x)));
      return h + post_feedforward_layernorm(ffn(pre_feedforward_layernorm(h)));
    }
  }
  return x;
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

}  // namespace grpo
