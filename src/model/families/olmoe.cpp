// olmoe.cpp: OLMoE (OlmoeForCausalLM): pre-norm blocks, RMSNorms over the whole q and k projections,
// attention_bias (default false) on all four projections, and a mixture of experts in every layer:
// num_experts experts of intermediate_size, num_experts_per_tok a token, norm_topk_prob (default
// false). clip_qkv (clamping q, k, v) is not supported.
#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_olmoe(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
  c.qk_norm = QkNorm::Whole;
  config_moe(j, path, c, "intermediate_size", false);
  if (j.contains("clip_qkv") && !j["clip_qkv"].is_null())
    throw Error(path + ": field \"clip_qkv\": clamping q, k and v is not supported (expected null), found " + json_text(j["clip_qkv"]));
}

}  // namespace

extern const ModelFamily kOlmoeFamily = {"olmoe", "OlmoeForCausalLM", configure_olmoe};

}  // namespace grpo
