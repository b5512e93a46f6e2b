// mistral.cpp: Mistral / Ministral (MistralForCausalLM): Llama's blocks without biases, head_dim
// from config.json, and sliding-window attention over the last `sliding_window` positions (null:
// none). The window is supported where it never binds: a sequence of at most `sliding_window`
// positions attends as full attention does, and a longer one is an error (causal_lm.cpp's attention and
// check_sliding_window before a run), never a silent full-attention answer.
#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

namespace {

void configure_mistral(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  c.attention_bias = false;
  c.o_proj_bias = false;
  if (!j.contains("sliding_window") || j["sliding_window"].is_null()) return;
  if (!j["sliding_window"].is_number_integer() || j["sliding_window"].get<int64_t>() < 1)
    throw Error(path + ": field \"sliding_window\": expected a positive integer or null, found " + json_text(j["sliding_window"]));
  c.sliding_window = j["sliding_window"].get<int64_t>();
}

}  // namespace

extern const ModelFamily kMistralFamily = {"mistral", configure_mistral};

}  // namespace grpo
