// mistral.cpp: Mistral / Ministral (MistralForCausalLM): Llama's blocks without biases, head_dim
// from config.json, and sliding-window attention over the last `sliding_window` positions on every
// layer (null: none), as transformers' MistralModel masks it.
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_mistral(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = false;
  c.o_proj_bias = false;
  c.sliding_window = config_window(j, path);
}

}  // namespace

extern const ModelFamily kMistralFamily = {"mistral", "MistralForCausalLM", configure_mistral};

}  // namespace grpo
