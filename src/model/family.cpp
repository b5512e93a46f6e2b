// family.cpp: the table of model families; see family.h.
#include "grpo/model/family.h"

#include "grpo/base/common.h"

namespace grpo {

extern const ModelFamily kQwen2Family, kQwen3Family, kLlamaFamily, kOlmo2Family, kSmolLM3Family, kMistralFamily;

namespace {

const ModelFamily* const kFamilies[] = {&kQwen2Family, &kQwen3Family, &kLlamaFamily, &kOlmo2Family, &kSmolLM3Family, &kMistralFamily};

}  // namespace

const ModelFamily& find_model_family(const nlohmann::json& model_type, const std::string& path) {
  for (const ModelFamily* f : kFamilies)
    if (model_type == f->model_type) return *f;
  std::vector<std::string> quoted;
  for (const ModelFamily* f : kFamilies) quoted.push_back(json_text(f->model_type));
  throw Error(path + ": field \"model_type\": expected " + one_of(quoted) + ", found " + json_text(model_type));
}

bool config_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw Error(path + ": field \"" + key + "\": expected true or false, found " + json_text(j[key]));
  return j[key].get<bool>();
}

}  // namespace grpo
