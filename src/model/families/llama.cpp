// llama.cpp: Llama 2 / 3.x (LlamaForCausalLM): pre-norm blocks, attention_bias (default false) on all
// four projections, no q/k norms; Llama 3's RoPE scaling is read with the shared RoPE fields.
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_llama(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
}

}  // namespace

extern const ModelFamily kLlamaFamily = {"llama", "LlamaForCausalLM", configure_llama};

}  // namespace grpo
