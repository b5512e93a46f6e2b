// family.cpp: the table of model families; see family.h.
#include "grpo/model/family.h"

#include <algorithm>

#include "grpo/base/common.h"

namespace grpo {

// Each family is defined in its own file of src/model/families/.
extern const ModelFamily kQwen2Family;
extern const ModelFamily kQwen3Family;
extern const ModelFamily kLlamaFamily;
extern const ModelFamily kOlmo2Family;
extern const ModelFamily kOlmo3Family;
extern const ModelFamily kSmolLM3Family;
extern const ModelFamily kMistralFamily;
extern const ModelFamily kPhi3Family;
extern const ModelFamily kGemma3Family;
extern const ModelFamily kQwen3MoeFamily;
extern const ModelFamily kOlmoeFamily;
extern const ModelFamily kMixtralFamily;

namespace {

const ModelFamily* const kFamilies[] = {
    &kQwen2Family,   &kQwen3Family, &kLlamaFamily,  &kOlmo2Family,    &kOlmo3Family, &kSmolLM3Family,
    &kMistralFamily, &kPhi3Family,  &kGemma3Family, &kQwen3MoeFamily, &kOlmoeFamily, &kMixtralFamily,
};

}  // namespace

const ModelFamily& find_model_family(const nlohmann::json& config, const std::string& path) {
  const nlohmann::json model_type = config.value("model_type", nlohmann::json());
  const ModelFamily* family = nullptr;
  for (const ModelFamily* f : kFamilies)
    if (model_type == f->model_type) family = f;
  if (!family) {
    std::vector<std::string> quoted;
    for (const ModelFamily* f : kFamilies) quoted.push_back(json_text(f->model_type));
    throw Error(path + ": field \"model_type\": expected " + one_of(quoted) + ", found " + json_text(model_type));
  }
  const nlohmann::json arch = config.value("architectures", nlohmann::json());
  if (!arch.is_null() && !(arch.is_array() && (arch.empty() || std::find(arch.begin(), arch.end(), family->hf_class) != arch.end())))
    throw Error(path + ": field \"architectures\": expected [\"" + family->hf_class + "\"] for model_type " + json_text(model_type) +
                ", found " + json_text(arch) + " (another head over the model: its weights are not a causal language model's)");
  return *family;
}

int64_t config_int(const nlohmann::json& j, const char* key, const std::string& path, std::optional<int64_t> def) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    throw Error(path + ": missing field \"" + key + "\"");
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
    throw Error(path + ": field \"" + key + "\": expected a non-negative integer, found " + json_text(j[key]));
  return j[key].get<int64_t>();
}

double config_number(const nlohmann::json& j, const char* key, const std::string& path, std::optional<double> def) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    throw Error(path + ": missing field \"" + key + "\"");
  }
  if (!j[key].is_number()) throw Error(path + ": field \"" + key + "\": expected a number, found " + json_text(j[key]));
  return j[key].get<double>();
}

int64_t config_window(const nlohmann::json& j, const std::string& path, int64_t absent) {
  if (!j.contains("sliding_window")) return absent;
  if (j["sliding_window"].is_null()) return 0;
  if (!j["sliding_window"].is_number_integer() || j["sliding_window"].get<int64_t>() < 1)
    throw Error(path + ": field \"sliding_window\": expected a positive integer or null, found " + json_text(j["sliding_window"]));
  return j["sliding_window"].get<int64_t>();
}

void config_moe(const nlohmann::json& j, const std::string& path, ModelConfig& c, const char* width_key, bool norm) {
  // The expert count under either name (transformers writes num_local_experts for Qwen3-MoE and
  // Mixtral, num_experts for OLMoE; Hub configs vary).
  const bool local = j.contains("num_local_experts") && !j["num_local_experts"].is_null();
  const char* experts_key = local ? "num_local_experts" : "num_experts";
  c.n_experts = config_int(j, experts_key, path);
  if (local && j.contains("num_experts") && !j["num_experts"].is_null() && j["num_experts"] != j["num_local_experts"])
    throw Error(path + ": fields \"num_experts\" (" + json_text(j["num_experts"]) + ") and \"num_local_experts\" (" +
                json_text(j["num_local_experts"]) + ") disagree");
  c.n_experts_per_tok = config_int(j, "num_experts_per_tok", path);
  c.n_ff_expert = config_int(j, width_key, path);
  c.norm_topk_prob = config_bool(j, "norm_topk_prob", path, norm);
  if (c.n_experts < 1)
    throw Error(path + ": field \"" + experts_key + "\": expected at least 1 expert, found " + json_text(j[experts_key]));
  if (c.n_experts_per_tok < 1 || c.n_experts_per_tok > c.n_experts)
    throw Error(path + ": field \"num_experts_per_tok\": expected 1 to " + experts_key + " (" + std::to_string(c.n_experts) + "), found " +
                json_text(j["num_experts_per_tok"]));
  if (c.n_ff_expert < 1) throw Error(path + ": field \"" + width_key + "\": expected > 0, found " + json_text(j[width_key]));
}

double config_softcap(const nlohmann::json& j, const char* key, const std::string& path) {
  const double cap = config_number(j, key, path, 0.0);
  if (cap < 0 || (j.contains(key) && !j[key].is_null() && cap == 0))
    throw Error(path + ": field \"" + key + "\": expected null or a number > 0, found " + json_text(j[key]));
  return cap;
}

bool config_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw Error(path + ": field \"" + key + "\": expected true or false, found " + json_text(j[key]));
  return j[key].get<bool>();
}

}  // namespace grpo
