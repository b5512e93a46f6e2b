// olmo3.cpp: OLMo 3 (Olmo3ForCausalLM): OLMo 2's blocks (olmo2.cpp) with sliding-window attention
// on three layers of four ("layer_types"; absent: every 4th layer full), the window
// "sliding_window" (default 4096), and RoPE scaling on the full layers only (the sliding ones turn
// with rope_theta unscaled, or rope_parameters.sliding_attention).
#include "grpo/model/family.h"

namespace grpo {

extern const ModelFamily kOlmo2Family;

namespace {

void configure_olmo3(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  kOlmo2Family.configure(j, path, c);
  c.sliding_window = config_window(j, path, 4096);  // transformers' default
  c.sliding_layers.clear();
  for (int64_t l = 0; l < c.n_layer; ++l) c.sliding_layers.push_back((l + 1) % 4 != 0);
  if (!c.local_rope) c.local_rope = Rope{c.rope_theta, RopeScaling{}};
}

}  // namespace

extern const ModelFamily kOlmo3Family = {"olmo3", "Olmo3ForCausalLM", configure_olmo3};

}  // namespace grpo
