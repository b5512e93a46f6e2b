// family.h: a model family, as llama.cpp lays out an architecture: one file per family
// (src/model/families/<family>.cpp) saying what its config.json means beyond the fields every family
// shares (vocab, widths, heads, RoPE, layer types, activation: model_config.cpp) as options of the
// shared blocks (causal_lm.h: attention with or without biases, q/k norms, windows, fused
// projections; GLU MLPs; RMSNorms before, after or around each block). A new family is its file
// and one line in family.cpp's table.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "grpo/model/causal_lm.h"

namespace grpo {

struct ModelFamily {
  const char* model_type;  // config.json's "model_type"
  const char* hf_class;    // transformers' class of the family's causal LM, in config.json's "architectures"
  // The family's own fields into the block options of c; an unsupported value is an Error naming
  // the field, expected and found.
  void (*configure)(const nlohmann::json& j, const std::string& path, ModelConfig& c);
};

// The family of config.json's "model_type"; an unknown one is an Error listing the supported types,
// and so is an "architectures" that does not name the family's causal LM (a sequence classifier, a
// multimodal wrapper): its weights are another model's.
const ModelFamily& find_model_family(const nlohmann::json& config, const std::string& path);

// config.json fields, checked (the error names path and field, expected and found): a boolean, a
// non-negative integer, a number (no default: the field is required), and "sliding_window" (a
// positive integer or null; 0 for null, `absent` where the field is not there).
bool config_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def);
int64_t config_int(const nlohmann::json& j, const char* key, const std::string& path, std::optional<int64_t> def = {});
double config_number(const nlohmann::json& j, const char* key, const std::string& path, std::optional<double> def = {});
int64_t config_window(const nlohmann::json& j, const std::string& path, int64_t absent = 0);
// A soft-capping field: null or absent 0 (none), else a number > 0.
double config_softcap(const nlohmann::json& j, const char* key, const std::string& path);
// A mixture of experts' fields into c: the expert count ("num_experts" or "num_local_experts"),
// num_experts_per_tok (1 to the count), the experts' width (`width_key`) and norm_topk_prob
// (default `norm`).
void config_moe(const nlohmann::json& j, const std::string& path, ModelConfig& c, const char* width_key, bool norm);

}  // namespace grpo
