// qwen3.cpp: Qwen3 (Qwen3ForCausalLM): Qwen2's blocks with an RMSNorm over each head's q and k
// before RoPE (q_norm, k_norm of head_dim), and attention_bias (default false) on all four projections.
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_qwen3(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
  c.qk_norm = QkNorm::PerHead;
}

}  // namespace

extern const ModelFamily kQwen3Family = {"qwen3", "Qwen3ForCausalLM", configure_qwen3};

}  // namespace grpo
