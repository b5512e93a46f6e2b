// gemma3.cpp: Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text). Sandwich norms (before and
// after both attention and MLP), each RMSNorm scaling by 1 + weight in fp32; per-head q/k norms;
// GeGLU (gelu_pytorch_tanh); the embedding x sqrt(hidden_size); scores x query_pre_attn_scalar^-0.5;
// local layers (five of six, sliding_window_pattern, or "layer_types") attend over the last
// `sliding_window` positions with their own RoPE base (rope_local_base_freq, or
// rope_parameters.sliding_attention), global layers over everything with rope_theta and its scaling.
// attention_bias (default false) on all four projections; final_logit_softcapping where set (null
// in the released models; transformers' Gemma 3 does not apply attn_logit_softcapping: refused).
#include <cmath>

#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_gemma3(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
  c.qk_norm = QkNorm::PerHead;
  c.norm_placement = NormPlacement::Sandwich;
  c.norm_weight_fp32 = true;
  c.norm_unit_offset = true;
  c.embed_scale = std::sqrt(double(c.n_embd));
  c.attn_scale = std::pow(config_number(j, "query_pre_attn_scalar", path, 256.0), -0.5);  // as Python's x**-0.5
  c.final_softcap = config_softcap(j, "final_logit_softcapping", path);                   // null in the released models
  if (!j.contains("rope_theta") && !j.contains("rope_parameters")) c.rope_theta = 1e6;    // Gemma 3's global default
  if (!c.local_rope) c.local_rope = Rope{config_number(j, "rope_local_base_freq", path, 10000.0), RopeScaling{}};
  c.sliding_window = config_window(j, path, 4096);                           // transformers' default
  const int64_t pattern = config_int(j, "sliding_window_pattern", path, 6);  // before layer_types: every pattern-th layer is global
  if (pattern < 1) throw Error(path + ": field \"sliding_window_pattern\": expected an integer >= 1, found " + std::to_string(pattern));
  c.sliding_layers.clear();
  for (int64_t l = 0; l < c.n_layer; ++l) c.sliding_layers.push_back((l + 1) % pattern != 0);
}

}  // namespace

extern const ModelFamily kGemma3Family = {"gemma3_text", "Gemma3ForCausalLM", configure_gemma3};

}  // namespace grpo
