// smollm3.cpp: SmolLM3 (SmolLM3ForCausalLM): Llama's blocks with NoPE layers, where attention gets no
// rotary embedding (positions reach it only through the causal mask): config.json's
// "no_rope_layers" holds one 1 (RoPE) or 0 (NoPE) a layer (every 4th is NoPE in SmolLM3-3B);
// attention_bias (default false) on all four projections.
#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_smollm3(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = config_bool(j, "attention_bias", path, false);
  c.o_proj_bias = c.attention_bias;
  if (!j.contains("no_rope_layers") || j["no_rope_layers"].is_null()) return;  // RoPE everywhere
  const nlohmann::json& flags = j["no_rope_layers"];
  const std::string where = path + ": field \"no_rope_layers\"";
  if (!flags.is_array() || static_cast<int64_t>(flags.size()) != c.n_layer)
    throw Error(where + ": expected a list of num_hidden_layers (" + std::to_string(c.n_layer) + ") 0s and 1s, found " + json_text(flags));
  for (const nlohmann::json& f : flags) {
    if (f != 0 && f != 1) throw Error(where + ": expected 0 (NoPE) or 1 (RoPE) for each layer, found " + json_text(f));
    c.rope_layers.push_back(f == 1);
  }
}

}  // namespace

extern const ModelFamily kSmolLM3Family = {"smollm3", "SmolLM3ForCausalLM", configure_smollm3};

}  // namespace grpo
