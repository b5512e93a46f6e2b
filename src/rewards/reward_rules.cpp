// reward_rules.cpp: rule rewards from the config (definitions in include/grpo/reward_rules.h).
// Regexes are PCRE2 in UTF mode with Unicode properties (PCRE2_UCP), so \w, \d and \b see every
// script, and PCRE2_MATCH_INVALID_UTF: a sampled completion may hold bytes that are not UTF-8, and
// they must count as no match rather than stop the step. Keywords compile to one alternation of
// \Q..\E literals.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "grpo/rewards/reward_rules.h"

#include <pcre2.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"

namespace grpo {

using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Field readers: a YAML file arrives as JSON whose scalars are all strings, so numbers and booleans
// are accepted as their text too.

struct Fields {
  const json& obj;
  std::string where;
  std::set<std::string> used;

  bool has(const std::string& key) { return used.insert(key), obj.contains(key); }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& found) const {
    throw Error(where + ": field \"" + key + "\": expected " + expected + ", found " + json_text(found));
  }
  std::string str(const std::string& key, const std::string& def, bool required = false) {
    if (!has(key)) {
      if (required) throw Error(where + ": missing field \"" + key + "\"");
      return def;
    }
    const json& v = obj[key];
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }
  double num(const std::string& key, double def, bool required = false) {
    if (!has(key)) {
      if (required) throw Error(where + ": missing field \"" + key + "\"");
      return def;
    }
    const json& v = obj[key];
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const std::string s(trim(v.get<std::string>()));
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return d;
      if (to_lower(s) == ".inf" || to_lower(s) == "inf") return std::numeric_limits<double>::infinity();
    }
    fail(key, "a number", v);
  }
  bool flag(const std::string& key) {
    if (!has(key)) return false;
    const json& v = obj[key];
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_string()) {
      const std::string s = to_lower(trim(v.get<std::string>()));
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    fail(key, "true or false", v);
  }
  template <typename E>
  E choice(const std::string& key, const std::vector<std::pair<const char*, E>>& options, E def) {
    if (!has(key)) return def;
    const json& v = obj[key];
    std::vector<std::string> names;
    for (const auto& [name, e] : options)
      if (v.is_string() && v.get<std::string>() == name)
        return e;
      else
        names.push_back(name);
    std::string expected = "one of";
    for (const auto& n : names) expected += " " + n;
    fail(key, expected, v);
  }
};

const std::vector<std::pair<const char*, RuleType>> kTypes = {
    {"regex", RuleType::Regex}, {"keywords", RuleType::Keywords}, {"length", RuleType::Length}};
const std::vector<std::pair<const char*, RuleTarget>> kTargets = {{"completion", RuleTarget::Completion}, {"answer", RuleTarget::Answer}};
const std::vector<std::pair<const char*, LengthUnit>> kUnits = {
    {"words", LengthUnit::Words}, {"chars", LengthUnit::Chars}, {"tokens", LengthUnit::Tokens}};
const std::vector<std::pair<const char*, LengthShape>> kShapes = {{"triangular", LengthShape::Triangular}, {"linear", LengthShape::Linear}};

template <typename E>
const char* name_of(const std::vector<std::pair<const char*, E>>& options, E e) {
  for (const auto& [name, v] : options)
    if (v == e) return name;
  return "?";
}

// The pattern a rule matches with: its own (regex) or the keywords as one alternation.
std::string pattern_of(const RewardRule& r) {
  if (r.type == RuleType::Regex) return r.pattern;
  std::string alt;
  for (const auto& w : r.words) {
    std::string lit;  // \Q..\E quotes everything except a literal "\E", which is split
    size_t from = 0, at;
    while ((at = w.find("\\E", from)) != std::string::npos) {
      lit += "\\Q" + w.substr(from, at - from) + "\\E\\\\E";
      from = at + 2;
    }
    lit += "\\Q" + w.substr(from) + "\\E";
    alt += (alt.empty() ? "" : "|") + lit;
  }
  return r.whole_words ? "(?<![\\p{L}\\p{N}])(?:" + alt + ")(?![\\p{L}\\p{N}])" : "(?:" + alt + ")";
}

std::shared_ptr<void> compile(const RewardRule& r) {
  const std::string pat = pattern_of(r);
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  if (r.ignore_case) opts |= PCRE2_CASELESS;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), opts, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(r.origin + ": rule '" + r.name + "': " + (r.type == RuleType::Regex ? "pattern " : "words ") +
                quote(r.type == RuleType::Regex ? r.pattern : pat) + " does not compile: " + reinterpret_cast<const char*>(msg) +
                " at offset " + std::to_string(offset));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // a no-op where JIT is unavailable
  return std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsing

RewardRule parse_reward_rule(const json& obj, const std::string& where) {
  if (!obj.is_object()) throw Error(where + ": expected a rule object such as {name: ..., type: regex, ...}, found " + json_text(obj));
  Fields f{obj, where, {}};
  RewardRule r;
  r.origin = where;
  r.name = f.str("name", "", true);
  if (r.name.empty() || r.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    f.fail("name", "a name of [a-z0-9_]+ (it becomes reward/<name>)", obj["name"]);
  f.where = where + " (rule '" + r.name + "')";
  if (!obj.contains("type")) throw Error(f.where + ": missing field \"type\" (regex | keywords | length)");
  r.type = f.choice("type", kTypes, RuleType::Regex);
  r.weight = f.num("weight", 1.0);
  if (!std::isfinite(r.weight)) f.fail("weight", "a finite number", obj["weight"]);
  r.on = f.choice("on", kTargets, RuleTarget::Completion);
  if (r.type == RuleType::Length) {
    r.unit = f.choice("unit", kUnits, LengthUnit::Words);
    r.shape = f.choice("shape", kShapes, LengthShape::Triangular);
    r.target = f.num("target", 0, true);
    r.tolerance = f.num("tolerance", 0, r.shape == LengthShape::Triangular);
    if (!(r.target > 0 && std::isfinite(r.target))) f.fail("target", "a number > 0", obj["target"]);
    if (r.shape == LengthShape::Triangular && !(r.tolerance > 0 && std::isfinite(r.tolerance)))
      f.fail("tolerance", "a number > 0 (shape triangular: the distance where the reward reaches 0)", obj["tolerance"]);
    if (!(r.tolerance >= 0 && std::isfinite(r.tolerance))) f.fail("tolerance", "a number >= 0", obj["tolerance"]);
  } else {
    if (r.type == RuleType::Regex) {
      r.pattern = f.str("pattern", "", true);
      if (r.pattern.empty()) f.fail("pattern", "a non-empty pattern", obj["pattern"]);
    } else {
      if (!f.has("words")) throw Error(f.where + ": missing field \"words\"");
      const json& w = obj["words"];
      if (!w.is_array() || w.empty()) f.fail("words", "a non-empty list of strings", w);
      for (const auto& x : w) {
        if (!x.is_string() || x.get<std::string>().empty()) f.fail("words", "a non-empty list of non-empty strings", w);
        r.words.push_back(x.get<std::string>());
      }
      r.whole_words = f.flag("whole_words");
    }
    r.presence = f.flag("presence");
    r.ignore_case = f.flag("ignore_case");
    r.per_match = f.num("per_match", 1.0);
    r.max = f.num("max", std::numeric_limits<double>::infinity());
    if (!std::isfinite(r.per_match)) f.fail("per_match", "a finite number", obj["per_match"]);
    if (!(r.max >= 0)) f.fail("max", "a number >= 0 (the cap on |value|)", obj["max"]);
    compile(r);  // a pattern that does not compile is a config error, before any model loads
  }
  for (const auto& [key, v] : obj.items())
    if (!f.used.count(key)) {
      std::vector<std::string> known(f.used.begin(), f.used.end());
      std::string best = closest_match(key, known);
      throw Error(f.where + ": unknown field \"" + key + "\" for type " + name_of(kTypes, r.type) +
                  (best.empty() ? "" : "; did you mean '" + best + "'?"));
    }
  return r;
}

std::vector<RewardRule> parse_reward_rules(const json& arr, const std::string& where) {
  if (!arr.is_array()) throw Error(where + ": reward_rules: expected a list of rule objects, found " + json_text(arr));
  std::vector<RewardRule> out;
  const auto& builtin = reward_names();
  for (size_t i = 0; i < arr.size(); ++i) {
    RewardRule r = parse_reward_rule(arr[i], where + " reward_rules[" + std::to_string(i) + "]");
    if (std::find(builtin.begin(), builtin.end(), r.name) != builtin.end())
      throw Error(r.origin + ": rule name '" + r.name + "' is a built-in reward function's; pick another");
    for (const auto& o : out)
      if (o.name == r.name) throw Error(r.origin + ": rule name '" + r.name + "' is already used by " + o.origin);
    out.push_back(std::move(r));
  }
  return out;
}

json reward_rule_to_json(const RewardRule& r) {
  json j;
  j["name"] = r.name;
  j["type"] = name_of(kTypes, r.type);
  j["weight"] = r.weight;
  j["on"] = name_of(kTargets, r.on);
  if (r.type == RuleType::Length) {
    j["unit"] = name_of(kUnits, r.unit);
    j["shape"] = name_of(kShapes, r.shape);
    j["target"] = r.target;
    j["tolerance"] = r.tolerance;
    return j;
  }
  if (r.type == RuleType::Regex) {
    j["pattern"] = r.pattern;
  } else {
    j["words"] = r.words;
    j["whole_words"] = r.whole_words;
  }
  j["presence"] = r.presence;
  j["ignore_case"] = r.ignore_case;
  j["per_match"] = r.per_match;
  if (std::isfinite(r.max)) j["max"] = r.max;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Counting

int64_t count_chars(std::string_view text) {
  int64_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

int64_t count_words(std::string_view text) {
  // A Han / Hiragana / Katakana character alone, or a run of other letters and digits with inner
  // ' ’ or - ("don't", "well-known"), by Unicode properties. sc: (Script), not \p{Han} (Script
  // Extensions since PCRE2 10.40), which would count the full stop 。 as a word.
  static const CompiledRule words([] {
    RewardRule r;
    r.name = "words";
    r.origin = "count_words";
    const std::string wide = "[\\p{sc:Han}\\p{sc:Hiragana}\\p{sc:Katakana}]", other = "(?:(?!" + wide + ")[\\p{L}\\p{N}\\p{M}])+";
    r.pattern = wide + "|" + other + "(?:['\u2019-]" + other + ")*";
    return r;
  }());
  return words.count_matches(text);
}

// ---------------------------------------------------------------------------------------------
// Scoring

CompiledRule::CompiledRule(RewardRule rule) : rule_(std::move(rule)) {
  if (rule_.type != RuleType::Length) code_ = compile(rule_);
}

int64_t CompiledRule::count_matches(std::string_view text) const {
  if (!code_) return 0;
  auto* code = static_cast<pcre2_code*>(code_.get());
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(pcre2_match_data_create_from_pattern(code, nullptr),
                                                                    pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int64_t n = 0;
  PCRE2_SIZE at = 0;
  while (at <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), at, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {  // a matching limit (catastrophic backtracking on this text): a partial count would be a wrong reward
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw CompletionError(rule_.origin + ": rule '" + rule_.name + "': cannot match this completion (" +
                            reinterpret_cast<const char*>(msg) + ")");
    }
    ++n;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] > ov[0]) {
      at = ov[1];
    } else {  // an empty match: step one code point on
      at = ov[1] + 1;
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
    }
  }
  return n;
}

float CompiledRule::value(std::string_view completion, std::string_view answer_span, int64_t n_tokens) const {
  const RewardRule& r = rule_;
  const std::string_view text = r.on == RuleTarget::Answer ? answer_span : completion;
  if (r.type == RuleType::Length) {
    double len = 0;
    switch (r.unit) {
      case LengthUnit::Words:
        len = double(count_words(text));
        break;
      case LengthUnit::Chars:
        len = double(count_chars(text));
        break;
      case LengthUnit::Tokens:
        if (r.on == RuleTarget::Answer) throw Error(r.origin + ": rule '" + r.name + "': unit tokens counts the completion only");
        if (n_tokens < 0)
          throw Error(r.origin + ": rule '" + r.name + "': unit tokens needs the completion's token count (grpo_reward: pass --tokenizer)");
        len = double(n_tokens);
        break;
    }
    const double d = std::abs(len - r.target);
    if (r.shape == LengthShape::Triangular) return static_cast<float>(std::max(0.0, 1.0 - d / r.tolerance));
    return static_cast<float>(-std::min(1.0, std::max(0.0, d - r.tolerance) / r.target));
  }
  int64_t count = count_matches(text);
  if (r.presence) count = std::min<int64_t>(count, 1);
  const double v = std::clamp(r.per_match * double(count), -r.max, r.max);
  return v == 0 ? 0.0f : static_cast<float>(v);  // no -0 in the logs from a negative per_match
}

}  // namespace grpo
