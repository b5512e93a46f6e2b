// mixtral.cpp: Mixtral (MixtralForCausalLM): Mistral's attention (mistral.cpp: no biases, head_dim,
// sliding_window) with a mixture of experts in every layer, named block_sparse_moe.{gate,
// experts.N.{w1,w3,w2}}: num_local_experts experts of intermediate_size, num_experts_per_tok a
// token, the chosen weights always renormalised. router_jitter_noise (training noise) must be 0.
#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

extern const ModelFamily kMistralFamily;

namespace {

void configure_mixtral(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  kMistralFamily.configure(j, path, c);
  config_moe(j, path, c, "intermediate_size", true);
  c.norm_topk_prob = true;
  c.expert_names = ExpertNames::Mixtral;
  if (config_number(j, "router_jitter_noise", path, 0.0) != 0.0)
    throw Error(path + ": field \"router_jitter_noise\": expected 0 (no router noise), found " + json_text(j["router_jitter_noise"]));
}

}  // namespace

extern const ModelFamily kMixtralFamily = {"mixtral", "MixtralForCausalLM", configure_mixtral};

}  // namespace grpo
