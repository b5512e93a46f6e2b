// trainer_state.cpp: trainer_state.json written and read (the schema is in trainer_state.h).
#include "grpo/run/trainer_state.h"

#include <cmath>
#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/config/config.h"

namespace grpo {

using json = nlohmann::json;

namespace {

// A counter: a required or optional (0 when absent) integer >= 0.
int64_t counter(const json& j, const char* key, const std::string& path, bool required) {
  if (!j.contains(key)) {
    if (required) throw Error(path + ": missing integer \"" + key + "\"");
    return 0;
  }
  const json& v = j[key];
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw Error(path + ": field \"" + key + "\": expected an integer >= 0, found " + json_text(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw Error(path + ": field \"" + key + "\": out of range, found " + json_text(v));
  return v.get<int64_t>();
}

// {name: string} objects (checksums, config).
std::map<std::string, std::string> string_map(const json& j, const char* key, const std::string& path) {
  std::map<std::string, std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_object()) throw Error(path + ": field \"" + key + "\": expected an object, found " + json_text(j[key]));
  for (const auto& [k, v] : j[key].items()) {
    if (!v.is_string()) throw Error(path + ": field \"" + key + "." + k + "\": expected a string, found " + json_text(v));
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

TrainerState parse_trainer_state(const std::string& text, const std::string& path) {
  const json j = parse_json(text, path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object, found " + json_text(j).substr(0, 40));
  TrainerState s;
  s.step = counter(j, "step", path, true);
  s.total_steps = counter(j, "total_steps", path, false);
  s.skipped_updates = counter(j, "skipped_updates", path, false);
  s.data_position = j.contains("data_position") ? counter(j, "data_position", path, true) : -1;
  if (j.contains("wall_s")) {
    if (!j["wall_s"].is_number() || !std::isfinite(j["wall_s"].get<double>()) || j["wall_s"].get<double>() < 0)
      throw Error(path + ": field \"wall_s\": expected a number of seconds >= 0, found " + json_text(j["wall_s"]));
    s.wall_s = j["wall_s"].get<double>();
  }
  s.checksums = string_map(j, "checksums", path);
  s.config = string_map(j, "config", path);
  s.eval_before = j.contains("eval_before") ? j["eval_before"] : json();
  if (!s.eval_before.is_null() && !s.eval_before.is_object())
    throw Error(path + ": field \"eval_before\": expected an object, found " + json_text(s.eval_before).substr(0, 40));
  if (j.contains("model_path")) {
    if (!j["model_path"].is_string()) throw Error(path + ": field \"model_path\": expected a string, found " + json_text(j["model_path"]));
    s.model_path = j["model_path"].get<std::string>();
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_integer()) throw Error(path + ": field \"seed\": expected an integer, found " + json_text(j["seed"]));
    s.seed = j["seed"].is_number_unsigned() ? static_cast<int64_t>(j["seed"].get<uint64_t>()) : j["seed"].get<int64_t>();
  }
  return s;
}

TrainerState read_trainer_state(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/trainer_state.json";
  return parse_trainer_state(read_file(path), path);
}

std::string trainer_state_text(const TrainerState& s) {
  json j = {{"step", s.step},
            {"total_steps", s.total_steps},
            {"skipped_updates", s.skipped_updates},
            {"wall_s", s.wall_s},
            {"checksums", s.checksums},
            {"config", s.config},
            {"model_path", s.model_path},
            {"seed", s.seed},
            {"eval_before", s.eval_before}};
  if (s.data_position >= 0) j["data_position"] = s.data_position;
  return json_text(j, 2) + "\n";
}

// ---------------------------------------------------------------------------------------------
// A checkpoint's training config as a tool's defaults

std::string apply_checkpoint_config(TrainConfig& cfg, const std::string& model_dir, const std::vector<std::string>* only) {
  const std::string state = model_dir + "/trainer_state.json";
  if (!file_exists(state)) return "";
  const std::string run_config = ((std::filesystem::path(model_dir) / "..").lexically_normal() / "config.yaml").string();
  TrainConfig trained = cfg;
  std::string from;
  if (file_exists(run_config)) {
    load_config_file(trained, run_config);
    from = "the checkpoint's training config (" + run_config + ")";
  } else {
    for (const auto& [key, value] : read_trainer_state(model_dir).config)
      if (key != "model_path") set_config_value(trained, key, value, state);
    from = "the checkpoint's training settings (" + state + ")";
  }
  trained.model_path = cfg.model_path;
  trained.output_dir = cfg.output_dir;
  if (!only) {
    cfg = std::move(trained);
    return from;
  }
  for (const std::string& key : *only) set_config_value(cfg, key, get_config_value(trained, key), from);
  return from;
}

}  // namespace grpo
