// config.cpp: the key table behind TrainConfig and its YAML / JSON / --set resolution.
// Each knob is one row {name, member pointer, help, choices}; parsing, printing, --help and the
// unknown-key suggestion all read the same table, so a new knob is one struct field + one row.
#include "grpo/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"

namespace grpo {

const char* const kDefaultSystemPrompt =
    "You are a helpful assistant. Solve the math problem step by step. First think through the "
    "reasoning inside <think> </think> tags, then give only the final number inside <answer> "
    "</answer> tags, for example: <think> reasoning here </think> <answer> 42 </answer>";

// ---------------------------------------------------------------------------------------------
// The key table

namespace {

// A key with a typed value (an enum, the device): set from its text, printed as its text.
struct ChoiceMember {
  std::function<void(TrainConfig&, const std::string&, const std::string&)> set;  // (cfg, text, what)
  std::function<std::string(const TrainConfig&)> get;
};

using Member = std::variant<int TrainConfig::*, double TrainConfig::*, bool TrainConfig::*, std::string TrainConfig::*, ChoiceMember>;

struct Row {
  const char* name;
  Member member;
  const char* help;
  std::vector<std::string> choices;
};

// A key whose value is parsed from text by parse(text, what) and printed by print(value).
template <class T, class Parse, class Print>
Row choice_row(const char* name, T TrainConfig::*member, const char* help, Parse parse, Print print, std::vector<std::string> choices) {
  ChoiceMember c{[member, parse](TrainConfig& cfg, const std::string& text, const std::string& what) { cfg.*member = parse(text, what); },
                 [member, print](const TrainConfig& cfg) { return print(cfg.*member); }};
  return {name, c, help, std::move(choices)};
}

template <class T>
Row make_row(const char* name, T TrainConfig::*member, const char* help) {
  if constexpr (std::is_same_v<T, DeviceSetting>)
    return choice_row(name, member, help, parse_device_setting, device_setting_name, {});
  else if constexpr (std::is_same_v<T, Precision>)  // the enum's names, and the short fp32 / bf16 / fp16
    return choice_row(name, member, help, parse_precision, choice_name<T>, choice_names<T>());
  else if constexpr (std::is_enum_v<T>)
    return choice_row(name, member, help, parse_choice<T>, choice_name<T>, choice_names<T>());
  else
    return {name, member, help, {}};
}

const std::vector<Row>& rows() {
  static const std::vector<Row> table = {
#define GRPO_CONFIG_ROW(type, name, init, help) make_row<type>(#name, &TrainConfig::name, help),
      GRPO_CONFIG_KEYS(GRPO_CONFIG_ROW)
#undef GRPO_CONFIG_ROW
  };
  return table;
}

const char* type_name(const Member& m) {
  switch (m.index()) {
    case 0:
      return "int";
    case 1:
      return "float";
    case 2:
      return "bool";
    default:
      return "string";
  }
}

const Row* find_row(const std::string& key) {
  for (const auto& r : rows())
    if (key == r.name) return &r;
  return nullptr;
}

}  // namespace

std::string format_double(double v) {
  // Shortest text that reads back to the same double.
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

namespace {

[[noreturn]] void type_error(const std::string& key, const std::string& origin, const char* expected, const std::string& value) {
  throw Error("config key '" + key + "' (" + origin + "): expected " + expected + ", found " + quote(value));
}

// A scalar key a file may give: a row of the table, a reward weight, or one of TRL's names.
bool known_key(const std::string& key) {
  return find_row(key) || starts_with(key, "reward_weights.") || is_trl_key(key);
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& origin) {
  std::string msg = "unknown config key '" + key + "' (" + origin + ")";
  std::vector<std::string> names = config_key_names(), trl = trl_key_names();
  names.insert(names.end(), trl.begin(), trl.end());
  const std::string best = closest_match(key, names), ours = trl_alias_of(best);
  if (!ours.empty())
    msg += "; did you mean '" + ours + "' (TRL's " + best + ")?";
  else if (!best.empty())
    msg += "; did you mean '" + best + "'?";
  else
    msg += "; run with --help for the list of keys";
  throw Error(msg);
}

int parse_int(const std::string& key, const std::string& text, const std::string& origin) {
  std::string t(trim(text));
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0') type_error(key, origin, "an integer", text);
  if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX)
    throw Error("config key '" + key + "' (" + origin + "): out of range: expected an integer in [-2147483648, 2147483647], found " + t);
  return static_cast<int>(v);
}

double parse_float(const std::string& key, const std::string& text, const std::string& origin) {
  std::string t(trim(text));
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || !std::isfinite(v)) type_error(key, origin, "a finite number", text);
  return v;
}

bool parse_bool(const std::string& key, const std::string& text, const std::string& origin) {
  std::string t = to_lower(trim(text));
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  type_error(key, origin, "a boolean (true/false)", text);
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& r : rows()) out.push_back({r.name, type_name(r.member), r.help, r.choices});
    for (const auto& fn : reward_names()) out.push_back({"reward_weights." + fn, "float", "weight of the `" + fn + "` reward", {}});
    return out;
  }();
  return keys;
}

std::vector<std::string> config_key_names() {
  std::vector<std::string> names;
  for (const auto& k : config_keys()) names.push_back(k.name);
  names.push_back("reward_weights");
  for (const char* k : {"reward_rules", "reward_command", "tools", "tool_command", "chat_template_kwargs"}) names.push_back(k);
  return names;
}

bool is_list_key(const std::string& key) {
  return key == "reward_rules" || key == "reward_command" || key == "tools" || key == "tool_command" || key == "chat_template_kwargs";
}

// ---------------------------------------------------------------------------------------------
// Get / set one key

void set_config_value(TrainConfig& cfg, const std::string& key, const std::string& value, const std::string& origin) {
  if (!find_row(key) && set_trl_key(cfg, key, value, origin)) return;
  if (is_list_key(key)) {
    ordered_json j;  // a tool schema's keys stay in their given order (the template writes them so)
    try {
      j = ordered_json::parse(value);
    } catch (const nlohmann::json::exception&) {
      const std::string expected = key == "reward_rules" ? "a JSON list of rule objects"
                                   : key == "tools"      ? "a JSON list of tools such as [\"calculator\"]"
                                   : key == "chat_template_kwargs"
                                       ? "a JSON map such as {\"enable_thinking\": false}"
                                       : "a JSON list of strings such as [\"python3\", \"" + key.substr(0, key.find('_')) + ".py\"]";
      type_error(key, origin, expected.c_str(), value);
    }
    set_config_list(cfg, key, j, origin);
    return;
  }
  if (starts_with(key, "reward_weights.")) {
    std::string fn = key.substr(std::string("reward_weights.").size());
    const auto& names = reward_names();
    if (std::find(names.begin(), names.end(), fn) == names.end()) unknown_key(key, origin);
    cfg.reward_weights[fn] = parse_float(key, value, origin);
    cfg.origin[key] = origin;
    return;
  }
  const Row* row = find_row(key);
  if (!row) unknown_key(key, origin);
  std::visit(
      [&](const auto& member) {
        using M = std::decay_t<decltype(member)>;
        if constexpr (std::is_same_v<M, ChoiceMember>) {
          member.set(cfg, value, "config key '" + key + "' (" + origin + ")");
        } else {
          using T = std::remove_reference_t<decltype(cfg.*member)>;
          if constexpr (std::is_same_v<T, int>)
            cfg.*member = parse_int(key, value, origin);
          else if constexpr (std::is_same_v<T, double>)
            cfg.*member = parse_float(key, value, origin);
          else if constexpr (std::is_same_v<T, bool>)
            cfg.*member = parse_bool(key, value, origin);
          else
            cfg.*member = value;
        }
      },
      row->member);
  cfg.origin[key] = origin;
  cfg.looked_in.erase(key);  // a later source's path is taken as it is written
}

void set_config_list(TrainConfig& cfg, const std::string& key, const ordered_json& value, const std::string& origin) {
  auto text = [](const ordered_json& v) { return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (key == "reward_rules") {
    cfg.reward_rules = parse_reward_rules(nlohmann::json::parse(text(value)), origin);
  } else if (key == "reward_command" || key == "tool_command") {
    if (!value.is_array()) type_error(key, origin, "a list of strings (the program and its arguments; no shell)", text(value));
    std::vector<std::string> argv;
    for (const auto& a : value) {
      if (!a.is_string()) type_error(key, origin, "a list of strings (the program and its arguments; no shell)", text(value));
      argv.push_back(a.get<std::string>());
    }
    if (!argv.empty() && argv[0].empty()) type_error(key, origin, "a program name first", text(value));
    (key == "reward_command" ? cfg.reward_command : cfg.tool_command) = std::move(argv);
  } else if (key == "tools") {
    cfg.tools = parse_tools(value, "config key 'tools' (" + origin + ")");
  } else if (key == "chat_template_kwargs") {
    if (!value.is_object()) type_error(key, origin, "a map such as {enable_thinking: false}", text(value));
    cfg.chat_template_kwargs = value;
  } else {
    unknown_key(key, origin);
  }
  cfg.origin[key] = origin;
}

std::string get_config_value(const TrainConfig& cfg, const std::string& key) {
  if (key == "reward_rules") {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : cfg.reward_rules) j.push_back(reward_rule_to_json(r));
    return json_text(j);
  }
  if (key == "reward_command") return json_text(nlohmann::json(cfg.reward_command));
  if (key == "tool_command") return json_text(nlohmann::json(cfg.tool_command));
  if (key == "chat_template_kwargs") return python_json(cfg.chat_template_kwargs);
  if (key == "tools") {
    ordered_json j = ordered_json::array();
    for (const auto& t : cfg.tools) j.push_back(t.builtin ? ordered_json(t.name) : t.schema);
    return python_json(j);
  }
  if (starts_with(key, "reward_weights.")) {
    auto it = cfg.reward_weights.find(key.substr(std::string("reward_weights.").size()));
    if (it == cfg.reward_weights.end()) throw Error("unknown config key '" + key + "'");
    return format_double(it->second);
  }
  const Row* row = find_row(key);
  if (!row) throw Error("unknown config key '" + key + "'");
  return std::visit(
      [&](const auto& member) -> std::string {
        using M = std::decay_t<decltype(member)>;
        if constexpr (std::is_same_v<M, ChoiceMember>) {
          return member.get(cfg);
        } else {
          using T = std::remove_cv_t<std::remove_reference_t<decltype(cfg.*member)>>;
          if constexpr (std::is_same_v<T, int>)
            return std::to_string(cfg.*member);
          else if constexpr (std::is_same_v<T, double>)
            return format_double(cfg.*member);
          else if constexpr (std::is_same_v<T, bool>)
            return cfg.*member ? "true" : "false";
          else
            return cfg.*member;
        }
      },
      row->member);
}

// ---------------------------------------------------------------------------------------------
// Files

namespace {

// A mapping key as text. YAML allows a list or a mapping as a key ("? - a"); a config does not.
std::string yaml_key(const YAML::Node& k, const std::string& path) {
  if (!k.IsScalar())
    throw Error(path + ":" + std::to_string(k.Mark().line + 1) + ": a key must be a name, found a " +
                (k.IsSequence() ? "sequence"
                 : k.IsMap()    ? "mapping"
                                : "null"));
  return k.Scalar();
}

// A YAML list or mapping as JSON, mappings in file order; scalars stay text (the rule parser reads
// numbers from text) unless `typed`: then a plain (unquoted) scalar that is a JSON number, true or
// false is one (a tool schema's "minimum: 0" is the number the template writes).
ordered_json yaml_to_json(const YAML::Node& n, const std::string& path, bool typed = false) {
  if (n.IsMap()) {
    ordered_json j = ordered_json::object();
    for (const auto& kv : n) j[yaml_key(kv.first, path)] = yaml_to_json(kv.second, path, typed);
    return j;
  }
  if (n.IsSequence()) {
    ordered_json j = ordered_json::array();
    for (const auto& x : n) j.push_back(yaml_to_json(x, path, typed));
    return j;
  }
  if (n.IsNull()) return nullptr;
  if (typed && n.Tag() == "?") {
    ordered_json v = ordered_json::parse(n.Scalar(), nullptr, /*allow_exceptions=*/false);
    if (v.is_number() || v.is_boolean()) return v;
  }
  return n.Scalar();
}

void load_yaml(TrainConfig& cfg, const std::string& path, const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return;  // an empty file changes nothing
  if (!root.IsMap())
    throw Error(path + ": expected a mapping of config keys at the top level, found a " + (root.IsSequence() ? "sequence" : "scalar"));
  std::map<std::string, int> first_line;  // a key given twice is an error, not "the last one wins"
  auto once = [&](const std::string& key, const YAML::Node& k) {
    const int line = k.Mark().line + 1;
    auto [it, fresh] = first_line.emplace(key, line);
    if (!fresh)
      throw Error(path + ":" + std::to_string(line) + ": duplicate config key '" + key + "' (first at line " + std::to_string(it->second) +
                  ")");
  };
  for (const auto& kv : root) {
    std::string key = yaml_key(kv.first, path);
    std::string where = path + ":" + std::to_string(kv.first.Mark().line + 1);
    const YAML::Node& v = kv.second;
    once(key, kv.first);
    if (key == "reward_weights") {
      if (!v.IsMap())
        throw Error("config key 'reward_weights' (" + where + "): expected a mapping such as {correctness: 1.0, format: 0.1}");
      for (const auto& w : v) {
        std::string sub = "reward_weights." + yaml_key(w.first, path);
        std::string wwhere = path + ":" + std::to_string(w.first.Mark().line + 1);
        once(sub, w.first);
        if (!w.second.IsScalar()) type_error(sub, wwhere, "a number", "a non-scalar value");
        set_config_value(cfg, sub, w.second.Scalar(), wwhere);
      }
      continue;
    }
    if (is_list_key(key)) {
      set_config_list(cfg, key, yaml_to_json(v, path, /*typed=*/key == "tools" || key == "chat_template_kwargs"), where);
      continue;
    }
    if (!known_key(key)) unknown_key(key, where);
    if (v.IsNull()) type_error(key, where, "a value", "nothing (null)");
    if (!v.IsScalar()) type_error(key, where, "a scalar value", v.IsMap() ? "a mapping" : "a sequence");
    set_config_value(cfg, key, v.Scalar(), where);
  }
}

std::string json_scalar_text(const std::string& key, const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return format_double(v.get<double>());
  type_error(key, where, "a scalar value", json_text(v));
}

// The lines of a JSON text where "key" stands as an object key, for the duplicate-key message.
std::string json_key_lines(const std::string& text, const std::string& key) {
  std::string lines;
  const std::string quoted = json_text(nlohmann::json(key));
  for (size_t at = text.find(quoted); at != std::string::npos; at = text.find(quoted, at + 1)) {
    size_t after = text.find_first_not_of(" \t\r\n", at + quoted.size());
    if (after == std::string::npos || text[after] != ':') continue;
    lines += (lines.empty() ? "" : " and ") + std::to_string(1 + std::count(text.begin(), text.begin() + at, '\n'));
  }
  return lines;
}

void load_json(TrainConfig& cfg, const std::string& path, const std::string& text) {
  nlohmann::json root;
  try {
    // A key given twice in one object is an error (nlohmann would keep the last one silently).
    std::vector<std::set<std::string>> keys;
    root = nlohmann::json::parse(text, [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (event == nlohmann::json::parse_event_t::object_start)
        keys.emplace_back();
      else if (event == nlohmann::json::parse_event_t::object_end)
        keys.pop_back();
      else if (event == nlohmann::json::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second)
        throw Error(path + ": duplicate config key '" + parsed.get<std::string>() + "' (lines " +
                    json_key_lines(text, parsed.get<std::string>()) + ")");
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    size_t line = 1 + std::count(text.begin(), text.begin() + std::min(e.byte, text.size()), '\n');
    throw Error(path + ":" + std::to_string(line) + ": invalid JSON: " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(path + ": expected a JSON object of config keys at the top level");
  for (const auto& [key, v] : root.items()) {
    std::string where = path + " (key \"" + key + "\")";
    if (key == "reward_weights") {
      if (!v.is_object()) throw Error("config key 'reward_weights' (" + path + "): expected an object such as {\"correctness\": 1.0}");
      for (const auto& [fn, w] : v.items())
        set_config_value(cfg, "reward_weights." + fn, json_scalar_text("reward_weights." + fn, w, where), path);
      continue;
    }
    if (is_list_key(key)) {
      set_config_list(cfg, key, ordered_json::parse(text)[key], where);  // in the file's key order
      continue;
    }
    if (!known_key(key)) unknown_key(key, path);
    set_config_value(cfg, key, json_scalar_text(key, v, path), path);
  }
}

}  // namespace

namespace {

// The keys that name files, which a config may give relative to itself.
std::vector<std::pair<const char*, std::string*>> path_keys(TrainConfig& cfg) {
  return {{"model_path", &cfg.model_path},
          {"train_data", &cfg.train_data},
          {"eval_data", &cfg.eval_data},
          {"chat_template", &cfg.chat_template}};
}

// A relative path that does not exist from the current directory is looked for under each of `roots`
// in order and taken from the first that has it; when none has it, it stays as written and the places
// tried are kept for the error of the program that needs it (require_config_file).
void look_for(TrainConfig& cfg, const char* key, std::string& value, const std::vector<std::filesystem::path>& roots) {
  namespace fs = std::filesystem;
  if (value.empty() || fs::path(value).is_absolute() || fs::exists(value) || value == "auto" || value == "chatml") return;
  std::vector<std::string> tried = {(fs::current_path() / value).lexically_normal().string()};
  for (const fs::path& root : roots) {
    const std::string place = (root / value).lexically_normal().string();
    if (std::find(tried.begin(), tried.end(), place) != tried.end()) continue;
    if (fs::exists(place)) {
      value = place;
      return;
    }
    tried.push_back(place);
  }
  cfg.looked_in[key] = tried;
}

// A path a config file gave is looked for next to the file, then in each directory above it (a
// project's configs/ sit one below its root).
void resolve_relative_paths(TrainConfig& cfg, const std::string& config_path) {
  std::vector<std::filesystem::path> roots;
  for (auto dir = std::filesystem::absolute(config_path).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    roots.push_back(dir);
    if (dir == dir.parent_path()) break;
  }
  for (const auto& [key, value] : path_keys(cfg)) {
    const auto origin = cfg.origin.find(key);
    if (origin != cfg.origin.end() && starts_with(origin->second, config_path)) look_for(cfg, key, *value, roots);
  }
}

// A default path (data/gsm8k/...) is looked for where the programs' data are: the installed share
// directory beside bin/, and the source tree a build directory sits in.
void resolve_default_paths(TrainConfig& cfg) {
  const std::string dir = program_dir();
  if (dir.empty()) return;
  const std::filesystem::path above = std::filesystem::path(dir).parent_path();
  const std::vector<std::filesystem::path> roots = {above / "share" / "grpo_train", above};
  for (const auto& [key, value] : path_keys(cfg))
    if (!cfg.origin.count(key)) look_for(cfg, key, *value, roots);
}

}  // namespace

void load_config_file(TrainConfig& cfg, const std::string& path) {
  load_config_text(cfg, path, read_file(path));
  resolve_relative_paths(cfg, path);
}

void load_config_text(TrainConfig& cfg, const std::string& path, const std::string& text) {
  std::string ext = to_lower(path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.')));
  if (ext == ".yaml" || ext == ".yml")
    load_yaml(cfg, path, text);
  else if (ext == ".json")
    load_json(cfg, path, text);
  else
    throw Error(path + ": unknown config format: expected a .yaml, .yml or .json file");
}

void require_config_file(const TrainConfig& cfg, const std::string& key, const std::string& expected) {
  const std::string value = get_config_value(cfg, key);
  if (file_exists(value)) return;
  const auto origin = cfg.origin.find(key);
  std::string msg = "config key '" + key + "'" + (origin == cfg.origin.end() ? " (default)" : " (" + origin->second + ")") + ": " +
                    quote(value) + ": no such file" + (expected.empty() ? "" : " (expected " + expected + ")");
  const auto tried = cfg.looked_in.find(key);
  if (tried != cfg.looked_in.end()) {
    msg += "; looked in";
    for (size_t i = 0; i < tried->second.size(); ++i) msg += (i ? ", " : " ") + tried->second[i];
  }
  throw Error(msg);
}

void apply_override(TrainConfig& cfg, const std::string& assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set " + quote(assignment) + ": expected key=value");
  set_config_value(cfg, std::string(trim(assignment.substr(0, eq))), assignment.substr(eq + 1), "--set");
}

void apply_config_sources(TrainConfig& cfg, const std::vector<std::string>& paths, const std::vector<std::string>& overrides) {
  for (const std::string& path : paths) load_config_file(cfg, path);
  for (const auto& o : overrides) apply_override(cfg, o);
  resolve_default_paths(cfg);
  resolve_trl_batch(cfg);
}

// ---------------------------------------------------------------------------------------------
// Printing

std::string config_yaml_value(const TrainConfig& cfg, const std::string& key) {
  const std::string value = get_config_value(cfg, key);
  const Row* row = find_row(key);
  return row && std::holds_alternative<std::string TrainConfig::*>(row->member) ? json_text(nlohmann::json(value)) : value;
}

std::string config_to_yaml(const TrainConfig& cfg) {
  std::ostringstream out;
  out << "# grpo_train resolved config: defaults, then config file, then --set\n";
  for (const auto& r : rows()) out << r.name << ": " << config_yaml_value(cfg, r.name) << "  # " << r.help << "\n";
  out << "reward_weights:  # weight per reward function\n";
  for (const auto& fn : reward_names()) out << "  " << fn << ": " << get_config_value(cfg, "reward_weights." + fn) << "\n";
  // JSON is YAML: the lists are written in flow style and load back unchanged.
  out << "reward_rules:" << (cfg.reward_rules.empty() ? " []" : "") << "  # rule rewards: regex | keywords | length\n";
  for (const auto& r : cfg.reward_rules) out << "  - " << json_text(reward_rule_to_json(r)) << "\n";
  out << "reward_command: " << get_config_value(cfg, "reward_command") << "  # external reward program's argv, no shell\n";
  out << "tools: " << get_config_value(cfg, "tools") << "  # built-in names (calculator) or function schemas\n";
  out << "tool_command: " << get_config_value(cfg, "tool_command") << "  # the program serving the schema tools, argv, no shell\n";
  out << "chat_template_kwargs: " << get_config_value(cfg, "chat_template_kwargs") << "  # variables for the chat template\n";
  return out.str();
}

std::string config_help() {
  TrainConfig defaults;
  std::ostringstream out;
  out << "Config keys (set in -c FILE or with --set key=value), default in brackets:\n";
  for (const auto& k : config_keys()) {
    std::string def = get_config_value(defaults, k.name);
    if (k.name == "system_prompt") def = def.substr(0, 40) + "...";
    if (def.empty()) def = "\"\"";
    std::string help = k.help;
    if (!k.choices.empty()) {
      help += " (";
      for (size_t i = 0; i < k.choices.size(); ++i) help += (i ? " | " : "") + k.choices[i];
      help += ")";
    }
    char line[512];
    std::snprintf(line, sizeof line, "  %-28s [%s] %s\n", k.name.c_str(), def.c_str(), help.c_str());
    out << line;
  }
  out << "  reward_rules                 [[]] rule rewards, a list of {name, type: regex | keywords | length, weight, ...}\n"
         "  reward_command               [[]] external reward program's argv, e.g. [\"python3\", \"reward.py\"] (no shell)\n"
         "  tools                        [[]] what the model may call: \"calculator\" or {\"type\": \"function\", \"function\": {...}}\n"
         "  tool_command                 [[]] the program serving the schema tools' calls, e.g. [\"python3\", \"tools.py\"]\n"
         "  chat_template_kwargs         [{}] variables for the chat template, e.g. {\"enable_thinking\": false}\n";
  return out.str();
}

}  // namespace grpo
