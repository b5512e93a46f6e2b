// family.h: a model family, as llama.cpp lays out an architecture: one file per family
// (src/model/families/<family>.cpp) saying what its config.json means beyond the fields every family
// shares (vocab, widths, heads, RoPE, read by model_io.cpp) as options of the shared blocks
// (causal_lm.h: attention with or without biases and q/k norms, SwiGLU MLP, RMSNorm before or
// after each block). A new family is its file and one line in family.cpp's table.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/model/causal_lm.h"

namespace grpo {

struct ModelFamily {
  const char* model_type;  // config.json's "model_type"
  // The family's own fields into the block options of c; an unsupported value is an Error naming
  // the field, expected and found.
  void (*configure)(const nlohmann::json& j, const std::string& path, ModelConfig& c);
};

// The family of config.json's "model_type"; an unknown one is an Error listing the supported types.
const ModelFamily& find_model_family(const nlohmann::json& model_type, const std::string& path);

// config.json fields, checked (the error names path and field): a boolean with a default.
bool config_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def);

}  // namespace grpo
