// phi3.cpp: Phi-3 / Phi-3.5 / Phi-4-mini / Phi-4 (Phi3ForCausalLM): Llama's pre-norm blocks with q, k
// and v as the rows of one qkv_proj and gate, up as the rows of one gate_up_proj (its checkpoints'
// and PEFT's names), no biases, head_dim = hidden / heads, RoPE over the first
// partial_rotary_factor of each head (Phi-4-mini: 0.75) with longrope scaling ("su" and "yarn" are
// its old names), and the sliding window of "sliding_window" on every layer (null: none).
// Dropout (resid_pdrop, embd_pdrop) is not modelled: training here runs without dropout.
#include "grpo/model/family.h"

namespace grpo {

extern const ModelFamily kMistralFamily;

namespace {

void configure_phi3(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  kMistralFamily.configure(j, path, c);  // no biases, the window of "sliding_window"
  c.fused_projections = true;
}

}  // namespace

extern const ModelFamily kPhi3Family = {"phi3", "Phi3ForCausalLM", configure_phi3};

}  // namespace grpo
