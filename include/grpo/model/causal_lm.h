// causal_lm.h: CausalLM, the decoder-only transformer of Qwen2 / Qwen3 / Llama 3, in LibTorch, following Hugging Face
// transformers' modeling_qwen2.py: embed -> L x [RMSNorm -> GQA attention with RoPE (rotate-half)
// -> residual -> RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> lm_head (or the tied embedding).
// Modules are registered under the HF names (model.layers.3.self_attn.q_proj.weight), so loading
// a checkpoint is check-shape-and-copy by name.
//
// Departures, on purpose: parameters are created empty in the target dtype/device (no init, no
// fp32 detour), so a bf16 checkpoint loads with one copy of the weights; GQA folds the group into
// the query length instead of repeating K/V; attention is the eager formula (scores in the model
// dtype, softmax in fp32) on both LibTorch 1.13 and 2.x, which keeps results identical across them;
// q/k/v and gate/up weights share one storage each (PackedLinear), so that forwards without
// autograd run one GEMM per block; RoPE's rotate-half is two in-place addcmul_ on the halves.
//
// Shapes: N sequences, T new tokens, S = past + T keys, D hidden, H heads, Hkv KV heads,
// hd head dim, V vocab, L layers.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "grpo/base/device.h"
#include "grpo/base/safetensors.h"
#include "grpo/base/settings.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Config (config.json)

// RoPE frequency scaling (config.json "rope_scaling", or "rope_parameters" in transformers >= 5),
// as transformers' modeling_rope_utils computes the inverse frequencies over the rotary width d:
//   linear    inv_freq / factor
//   llama3    wavelengths above original_max_position_embeddings / low_freq_factor: inv_freq / factor;
//             below original / high_freq_factor: unchanged; between: (1 - s) inv_freq / factor + s inv_freq,
//             s = (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
//   longrope  inv_freq / ext, ext = long_factor when the forward's longest position + 1 exceeds
//             original_max_position_embeddings, else short_factor (d/2 each); cos and sin x attention_factor
//             (default sqrt(1 + ln(max_position_embeddings / original) / ln(original)), 1 when not longer)
//   yarn      ramp r_i = clamp((i - low) / (high - low), 0, 1) over the d/2 frequencies, low and high the
//             dimensions where original_max_position_embeddings makes beta_fast and beta_slow turns
//             (d ln(original / (2 pi beta)) / (2 ln theta), floored and ceiled unless truncate is false);
//             inv_freq r / factor + inv_freq (1 - r); cos and sin x attention_factor
//             (default 0.1 ln(factor) + 1, or the ratio of mscale to mscale_all_dim's, DeepSeek's)
enum class RopeType { Default, Linear, Llama3, LongRope, Yarn };
struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, longrope, yarn
  std::vector<double> short_factor, long_factor;    // longrope
  double attention_factor = 1.0;                    // longrope, yarn: cos and sin scaled by it
  double beta_fast = 32.0, beta_slow = 1.0;         // yarn
  bool truncate = true;                             // yarn
};
// A RoPE: its base and scaling (a model may have two: Gemma 3's sliding layers use their own).
struct Rope {
  double theta = 10000.0;
  RopeScaling scaling;
};

// The shared blocks' options a family chooses (family.h).
enum class QkNorm { None, PerHead, Whole };  // RMSNorm on q and k: none; over each head (Qwen3); over the projection (OLMo 2)
// Where the RMSNorms sit in a decoder layer (HF's module names):
//   Pre       h = x + attn(input_layernorm(x)),  out = h + mlp(post_attention_layernorm(h))
//   Post      h = x + post_attention_layernorm(attn(x)),  out = h + post_feedforward_layernorm(mlp(h))  (OLMo 2)
//   Sandwich  h = x + post_attention_layernorm(attn(input_layernorm(x))),
//             out = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)))  (Gemma 3)
enum class NormPlacement { Pre, Post, Sandwich };
enum class Activation { Silu, GeluTanh };  // the MLP's gate: SwiGLU, or GeGLU with gelu(approximate="tanh")
// Mixture-of-experts layers' checkpoint names: mlp.{gate, experts.N.{gate,up,down}_proj} (Qwen3-MoE,
// OLMoE) or block_sparse_moe.{gate, experts.N.{w1,w3,w2}} (Mixtral).
enum class ExpertNames { Mlp, Mixtral };

struct ModelConfig {
  std::string model_type = "qwen2";  // a family of family.h (src/model/families/)
  int64_t n_vocab = 0;               // vocab_size
  int64_t n_embd = 0;                // hidden_size
  int64_t n_ff = 0;                  // intermediate_size
  int64_t n_layer = 0;               // num_hidden_layers
  int64_t n_head = 0;                // num_attention_heads
  int64_t n_kv_head = 0;             // num_key_value_heads
  int64_t head_dim = 0;              // head_dim (default hidden_size / num_attention_heads)
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t rotary_dim = 0;  // the leading dims of each head RoPE turns (partial_rotary_factor x head_dim); 0: all
  int64_t max_position_embeddings = 32768;
  bool tie_word_embeddings = false;
  bool attention_bias = true;      // q/k/v bias (Qwen2: yes; Llama: attention_bias, default no)
  bool o_proj_bias = false;        // o_proj bias (Qwen2: no; Llama, Qwen3: attention_bias covers o_proj too)
  bool fused_projections = false;  // q/k/v as one qkv_proj and gate/up as one gate_up_proj (Phi-3)
  QkNorm qk_norm = QkNorm::None;
  NormPlacement norm_placement = NormPlacement::Pre;
  // RMSNorm: weight x the fp32 normalised value, then rounded (OLMo 2, Gemma); else rounded first.
  bool norm_weight_fp32 = false;
  bool norm_unit_offset = false;  // RMSNorm scales by (1 + weight) (Gemma), the weight stored as an offset
  Activation hidden_act = Activation::Silu;
  double embed_scale = 1.0;  // the embedding's output x this, rounded to the model dtype first (Gemma: sqrt(hidden))
  double attn_scale = 0;     // attention's score scale (Gemma: query_pre_attn_scalar^-0.5); 0: 1/sqrt(head_dim)
  // The logits' soft-capping c tanh(x / c) (0: none), where the family reads it (Gemma 3's
  // final_logit_softcapping).
  double final_softcap = 0;
  std::vector<bool> rope_layers;  // per layer: RoPE applied (SmolLM3's no_rope_layers; empty: every layer)
  // Sliding-window attention: a query sees the keys of the last `sliding_window` positions, itself
  // included (0: no window). sliding_layers: per layer, whether the window applies (empty: every
  // layer); such a layer's KV cache keeps only the window.
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  std::optional<Rope> local_rope;  // the sliding layers' own RoPE (Gemma 3's rope_local_base_freq); none: the global one
  // Mixture of experts: a sparse layer routes each token to n_experts_per_tok of n_experts SwiGLU
  // experts of width n_ff_expert (router: softmax over the experts in fp32, top k, renormalised to sum
  // 1 where norm_topk_prob), its output the routing-weighted sum. moe_layers: per layer, sparse or
  // a dense MLP of n_ff (empty: every layer sparse when n_experts > 0).
  int64_t n_experts = 0;
  int64_t n_experts_per_tok = 0;
  int64_t n_ff_expert = 0;
  bool norm_topk_prob = false;
  std::vector<bool> moe_layers;
  ExpertNames expert_names = ExpertNames::Mlp;
  nlohmann::json raw;  // the file as read, written back on save

  // Parse and check; errors name `path`, the field, expected and found.
  static ModelConfig from_json(const std::string& text, const std::string& path);
  static ModelConfig from_dir(const std::string& dir);
  int64_t n_params() const;  // parameter count
  // Every tensor a model directory must hold for this config: its Hugging Face name and shape.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors() const;
  // Layer l's window (0: full attention) and RoPE.
  int64_t window_of(int64_t layer) const;
  Rope rope_of(int64_t layer) const;
  bool has_window() const;           // some layer has a window
  bool sparse(int64_t layer) const;  // layer l's MLP is a mixture of experts
};

// ---------------------------------------------------------------------------------------------
// KV cache: preallocated for the whole rollout, written in place (no per-step concatenation). A
// sliding-window layer keeps only its window: a ring of min(window, capacity) slots, position p in
// slot p mod slots, so a rollout longer than the window holds the window, not the rollout.

struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer (N, Hkv, slots, hd)
  int64_t length = 0;               // positions filled so far (the same for every row)
  int64_t capacity = 0;
  // Set only during forward_decode_static: the new token's K/V go to position write_pos (a (1,)
  // device tensor, so a captured graph reads it at replay) and a full layer's attention spans
  // `attend` positions (a ring layer: its slots).
  torch::Tensor write_pos;
  int64_t attend = 0;
  // Growing instead (training over a shared prompt): no capacity, each forward's K/V are joined
  // to the past by torch::cat, so autograd sees them (in-place writes would break backward).
  bool grow = false;
  static KVCache allocate(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::TensorOptions opts);
  static KVCache growing(int64_t n_layer);
  static int64_t slots(const ModelConfig& cfg, int64_t layer, int64_t capacity);  // a layer's positions kept
  static int64_t bytes_needed(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype);
  bool ring(int64_t layer) const;  // the layer keeps fewer slots than the capacity
  // Keep / repeat rows: row i of the result is row index[i] (e.g. share one prompt's cache across G).
  void select_rows(const torch::Tensor& index);
  // The new positions' K/V (N, Hkv, T, hd) of `layer` written as this cache writes them, and the
  // K/V attention then reads (N, Hkv, S, hd): preallocated, at [length, length + T) and S = length + T;
  // a ring past its end, the kept slots then the T new ones; static decoding (write_pos set), at
  // write_pos and S = attend (a ring: at write_pos mod slots, S = slots); growing, joined by torch::cat.
  // The caller advances `length` once every layer has appended.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, torch::Tensor new_k, torch::Tensor new_v);
  // The sequence position of each of the S keys append(layer, T new) returns (S,), int64; < 0: an
  // empty slot. For the attention mask, computed before the append.
  torch::Tensor key_positions(int64_t layer, int64_t T, const torch::Device& device) const;
};

// ---------------------------------------------------------------------------------------------
// Attention kernel. Eager: the formula above (scores in the model dtype, fp32 softmax), the same on
// every LibTorch. Sdpa: at::scaled_dot_product_attention (LibTorch >= 2.0) on the same grouped
// queries and additive mask; on CUDA it picks a fused kernel (memory-efficient attention, which
// takes a mask) that never stores the (T, S) probabilities for backward.

bool sdpa_available();                                  // built against LibTorch >= 2.0
AttentionKernel parse_attention(const std::string& s);  // eager | sdpa (throws if unavailable)
void check_attention(AttentionKernel kernel);           // throws for sdpa on LibTorch 1.x

// ---------------------------------------------------------------------------------------------
// Modules

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, torch::TensorOptions opts);
  // Over given tensors (weight (out, in), bias (out) or undefined): slices of a packed storage.
  LinearImpl(torch::Tensor weight, torch::Tensor bias);
  // y = x W^T + b, plus the LoRA term when an adapter is on (lora.h), added as PEFT does: in fp32,
  // the sum rounded to y's dtype once.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  // LoRA (lora.h): lora_A (r, in), lora_B (out, r), fp32; undefined without an adapter.
  torch::Tensor lora_A, lora_B;
  double lora_scaling = 0, lora_dropout = 0;
  bool lora_on = true;  // off: the base layer alone (the frozen reference of the KL term)
  bool lora_active() const { return lora_A.defined() && lora_on; }
  torch::Tensor lora_delta(const torch::Tensor& x) const;  // scaling * B A dropout(x), fp32 (.., out)
  void unregister_lora() { parameters_.erase("lora_A"), parameters_.erase("lora_B"); }
};
TORCH_MODULE(Linear);

// Linear layers whose weights (and biases) are consecutive row blocks of one storage, so that a
// forward that records no autograd graph can run one GEMM for all of them: q/k/v, gate/up. The
// parts stay separate, HF-named parameters (plain tensors over their slices, not autograd views),
// so loading, the optimizer, gradients and checkpoints see the usual per-projection tensors.
struct PackedLinear {
  torch::Tensor weight, bias;  // the whole (sum out, in) and (sum out) storage; bias may be undefined
  std::vector<Linear> parts;
  // Parts of `out` rows each over one fresh storage in opts' dtype and device (uninitialised).
  static PackedLinear make(const std::vector<int64_t>& out, int64_t in, bool bias, torch::TensorOptions opts);
  // Every part still lies where make() put it; set_data (e.g. Module::to) moves a parameter elsewhere,
  // after which the parts run one by one.
  bool intact() const;
  torch::Tensor forward(const torch::Tensor& x) const;  // (.., in) -> (.., sum out)
};

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t n, int64_t dim, torch::TensorOptions opts);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

class RMSNormImpl : public torch::nn::Module {
 public:
  // The config's norm_weight_fp32 (the weight multiplies the fp32 normalised value, rounded after:
  // OLMo 2, Gemma; else the value is rounded to x's dtype first: Llama, Qwen) and norm_unit_offset
  // (the scale is 1 + weight, in fp32: Gemma).
  RMSNormImpl(int64_t dim, const ModelConfig& cfg, torch::TensorOptions opts);
  torch::Tensor forward(const torch::Tensor& x);  // computed in fp32 (float64 in float64)
  torch::Tensor weight;
  double eps;
  bool weight_fp32, unit_offset;
};
TORCH_MODULE(RMSNorm);

// RoPE (rope.cpp). Tables for positions (N, T) over the rotary width d: cos and the signed sin
// (-sin, +sin over the two halves), each (N, T, 1, d), computed in fp32 as transformers does, then
// cast to dtype. apply_rope turns the first d dims of each head of x (N, T, heads, hd), the rest pass.
std::pair<torch::Tensor, torch::Tensor> rope_tables(const Rope& rope, int64_t rotary_dim, const torch::Tensor& position_ids,
                                                    torch::ScalarType dtype);
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin);

// Soft-capping (Gemma): c tanh(x / c), in x's dtype, as transformers computes it.
inline torch::Tensor softcap(const torch::Tensor& x, double c) {
  return torch::tanh(x / c) * c;
}

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer = 0);
  // x (N, T, D); cos/sin the layer's RoPE tables (rope_tables); mask additive over the keys the
  // cache returns (KVCache::key_positions), (N, 1, 1, T, S) (eager) or (N, 1, g*T, S) (sdpa), the
  // layer's window in it; cache: the KV cache or null. no_graph: nothing will be differentiated
  // (packed GEMM allowed).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                        KVCache* cache, int64_t layer, bool no_graph = false);
  PackedLinear qkv;  // q_proj, k_proj, v_proj
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  Linear qkv_proj{nullptr};                  // ModelConfig::fused_projections: q, k and v rows of one module (Phi-3)
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // ModelConfig::qk_norm: over hd (PerHead) or H hd / Hkv hd (Whole); null: None
  int64_t n_head, n_kv_head, head_dim;
  double scale;                // the scores' factor (ModelConfig::attn_scale, default 1/sqrt(hd))
  bool custom_scale = false;   // the family sets the scale
  bool whole_qk_norm = false;  // q_norm / k_norm over the whole projections (QkNorm::Whole)
  bool use_rope = true;        // false: a NoPE layer (ModelConfig::rope_layers), positions only through the mask
  AttentionKernel kernel = AttentionKernel::Eager;

 private:
  // q (N, T, H, hd), k and v (N, T, Hkv, hd): projected, normed where the family norms them, turned.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> project(const torch::Tensor& x, const torch::Tensor& cos,
                                                                  const torch::Tensor& sin, bool no_graph);
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(const ModelConfig& cfg, torch::TensorOptions opts);
  // One expert of a mixture (width n_ff_expert, SwiGLU), its projections named as the family names them.
  MLPImpl(const ModelConfig& cfg, int64_t width, torch::TensorOptions opts, bool expert);
  // down(act(gate(x)) * up(x)), act silu (SwiGLU) or gelu_pytorch_tanh (GeGLU)
  torch::Tensor forward(const torch::Tensor& x, bool no_graph = false);
  PackedLinear gate_up;  // gate_proj, up_proj
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  Linear gate_up_proj{nullptr};  // ModelConfig::fused_projections: gate then up rows of one module (Phi-3)
  Activation act = Activation::Silu;
};
TORCH_MODULE(MLP);

// A mixture of experts (ModelConfig::n_experts): the router `gate` (E, D) scores each token, the
// top k experts run on the tokens routed to them (one GEMM per expert over its tokens, experts in
// index order), and each token's output is the sum of its experts' outputs x their routing weights
// (added in expert order, as transformers' index_add_).
class MoEImpl : public torch::nn::Module {
 public:
  MoEImpl(const ModelConfig& cfg, torch::TensorOptions opts);
  torch::Tensor forward(const torch::Tensor& x, bool no_graph = false);  // (N, T, D) -> (N, T, D)
  // The router's choice for rows x (M, D): weights (M, k) in x's dtype and expert ids (M, k).
  std::pair<torch::Tensor, torch::Tensor> route(const torch::Tensor& x) const;
  Linear gate{nullptr};
  std::vector<MLP> experts;
  int64_t top_k = 0;
  bool norm_topk = false;
};
TORCH_MODULE(MoE);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& cfg, torch::TensorOptions opts, int64_t layer = 0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                        KVCache* cache, int64_t layer);
  Attention self_attn{nullptr};
  MLP mlp{nullptr};  // a dense layer's MLP, or null
  MoE moe{nullptr};  // a sparse layer's mixture of experts (ModelConfig::sparse), or null
  // Placed as ModelConfig::norm_placement says; null where the placement has none.
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr}, pre_feedforward_layernorm{nullptr},
      post_feedforward_layernorm{nullptr};
  NormPlacement placement = NormPlacement::Pre;
};
TORCH_MODULE(DecoderLayer);

class DecoderModelImpl : public torch::nn::Module {
 public:
  DecoderModelImpl(const ModelConfig& cfg, torch::TensorOptions opts);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderModel);

class CausalLMImpl : public torch::nn::Module {
 public:
  CausalLMImpl(const ModelConfig& cfg, torch::TensorOptions opts);

  // Hidden states after the final norm, (N, T, D).
  //   input_ids (N, T) int64; attention_mask (N, S) with S = cache length + T (1 = real token);
  //   position_ids (N, T). With a cache, K/V of the T new tokens are written at [length, length+T).
  torch::Tensor forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, const torch::Tensor& position_ids,
                               KVCache* cache = nullptr);
  // One decode step with static shapes (CUDA-graph capturable: no host values of the step inside).
  //   input_ids, position_ids (N, 1); key_mask (N, capacity), 1 = real key; write_pos (1,) int64:
  //   the cache position of the new token. Attention spans the first `attend` cache positions, of
  //   which keys after write_pos or with key_mask 0 are masked. cache.length is left to the caller.
  // Returns the hidden state (N, 1, D); equals forward_hidden on the same cache.
  torch::Tensor forward_decode_static(const torch::Tensor& input_ids, const torch::Tensor& key_mask, const torch::Tensor& position_ids,
                                      const torch::Tensor& write_pos, KVCache& cache, int64_t attend);
  // Logits (N, T, V) from hidden states: the head, soft-capped where the family says.
  torch::Tensor logits(const torch::Tensor& hidden);
  // The head alone: hidden states x the lm_head or the tied embedding.
  torch::Tensor head(const torch::Tensor& hidden);
  // Full-sequence convenience: positions from the mask (left padding works), logits (N, T, V).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  // The lm_head weight (V, D): lm_head.weight or the tied embedding.
  torch::Tensor output_weight();

  ModelConfig cfg;
  DecoderModel model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings
  // Gradient checkpointing: when a forward builds a graph (grad mode on, no KV cache), keep only
  // each decoder layer's input and recompute the layer in backward. Activation memory drops from
  // ~(14 D + 2 F + H S) per token and layer to D per token and layer, for one extra forward.
  bool gradient_checkpointing = false;
  // The attention kernel of every layer (default Eager).
  void set_attention(AttentionKernel kernel);
  // Every layer's q/k/v and gate/up parameters still share their packed storage (see PackedLinear).
  bool projections_packed();
  AttentionKernel attention = AttentionKernel::Eager;

 private:
  torch::Tensor embed(const torch::Tensor& input_ids);  // (N, T, D), x embed_scale
  // The additive mask (N, 1, 1, T, S) in the layout the attention kernel takes.
  torch::Tensor layer_mask(const torch::Tensor& mask) const;
  // Each layer's additive mask and RoPE tables for queries at sequence positions query_pos (T,) or
  // (1,), keys as the cache returns them, `real` (N, S_all) the real (1) and pad (0) positions:
  // layers of one kind (window, slots, RoPE) share theirs.
  struct LayerInputs {
    std::vector<torch::Tensor> mask, cos, sin;
  };
  LayerInputs layer_inputs(const torch::Tensor& query_pos, const torch::Tensor& real, const torch::Tensor& position_ids, int64_t T,
                           const KVCache* cache, const torch::TensorOptions& opts) const;
};
TORCH_MODULE(CausalLM);

// One decoder layer run so that backward recomputes it from its saved input x instead of keeping
// its activations (reentrant checkpointing, as torch.utils.checkpoint(use_reentrant=True)). The
// layer's parameter gradients are accumulated by the inner backward. x must require grad.
torch::Tensor checkpointed_layer(DecoderLayerImpl& layer, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& mask);

// Positions for a (N, T) mask: cumsum(mask) - 1, clamped at 0 (left padding gets position 0).
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace grpo
