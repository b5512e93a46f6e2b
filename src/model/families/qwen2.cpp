// qwen2.cpp: Qwen2 / Qwen2.5 (transformers' Qwen2ForCausalLM): pre-norm blocks, biases on q, k and v
// (always, whatever config.json says) and none on o_proj; no q/k norms.
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_qwen2(const nlohmann::json&, const std::string&, ModelConfig& c) {
  c.attention_bias = true;
  c.o_proj_bias = false;
}

}  // namespace

extern const ModelFamily kQwen2Family = {"qwen2", "Qwen2ForCausalLM", configure_qwen2};

}  // namespace grpo
