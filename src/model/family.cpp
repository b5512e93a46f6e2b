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

namespace {

const ModelFamily* const kFamilies[] = {
    &kQwen2Family,   &kQwen3Family,   &kLlamaFamily, &kOlmo2Family,  &kOlmo3Family,
    &kSmolLM3Family, &kMistralFamily, &kPhi3Family,  &kGemma3Family,
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

int64_t config_window(const nlohmann::json& j, const std::string& path) {
  if (!j.contains("sliding_window") || j["sliding_window"].is_null()) return 0;
  if (!j["sliding_window"].is_number_integer() || j["sliding_window"].get<int64_t>() < 1)
    throw Error(path + ": field \"sliding_window\": expected a positive integer or null, found " + json_text(j["sliding_window"]));
  return j["sliding_window"].get<int64_t>();
}

bool config_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw Error(path + ": field \"" + key + "\": expected true or false, found " + json_text(j[key]));
  return j[key].get<bool>();
}

}  // namespace grpo
