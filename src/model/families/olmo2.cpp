// olmo2.cpp: OLMo 2 (Olmo2ForCausalLM): the norms come after each block, inside its residual,
//   h = x + post_attention_layernorm(attn(x)),  out = h + post_feedforward_layernorm(mlp(h)),
// with no input norm; q_norm and k_norm are RMSNorms over the whole q and k projections
// (H hd and Hkv hd wide) before the heads are split and RoPE applied; every RMSNorm multiplies its
// weight in fp32 before rounding (Olmo2RMSNorm). attention_bias (default false) on all four projections.
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_olmo2(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
  c.qk_norm = QkNorm::Whole;
  c.norm_placement = NormPlacement::Post;
  c.norm_weight_fp32 = true;
}

}  // namespace

extern const ModelFamily kOlmo2Family = {"olmo2", "Olmo2ForCausalLM", configure_olmo2};

}  // namespace grpo
