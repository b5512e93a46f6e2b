// data_files.cpp: the user's JSONL data files, parsed from text (definitions in data_files.h).
#include "grpo/engine/data_files.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// GSM8K examples

Gold trl_gold(const nlohmann::json&, const std::string&, const char**, bool);

namespace {

std::string field_string(const nlohmann::json& obj, const char* name, const std::string& where) {
  const auto& v = obj.at(name);
  if (!v.is_string()) throw Error(where + ": field \"" + name + "\": expected a string, found " + v.type_name());
  return v.get<std::string>();
}

std::string field_names(const nlohmann::json& obj) {
  std::string out;
  for (const auto& [k, v] : obj.items()) out += (out.empty() ? "" : ", ") + json_text(k);
  return out.empty() ? "none" : out;
}

// The fields of `obj` not in `used`, as a JSON object's text ("" when there are none).
std::string other_columns(const nlohmann::json& obj, std::initializer_list<const char*> used) {
  nlohmann::json rest = nlohmann::json::object();
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (std::none_of(used.begin(), used.end(), [&](const char* u) { return it.key() == u; })) rest[it.key()] = it.value();
  return rest.empty() ? "" : json_text(rest);
}

// The number after an answer's last "####", with its text as written ("1,080").
Gold hashes_gold(const std::string& answer, const std::string& where) {
  auto value = parse_gsm8k_gold(answer);
  if (!value) throw Error(where + ": field \"answer\": no number after the last \"####\"");
  Gold g(*value);
  g.text = std::string(trim(std::string_view(answer).substr(answer.rfind("####") + 4)));
  return g;
}

// GSM8K: question + answer, the gold after the last "####".
Example gsm8k_example(const nlohmann::json& obj, const std::string& where) {
  Example ex;
  ex.question = field_string(obj, "question", where);
  if (!obj.contains("answer")) throw Error(where + ": missing field \"answer\" (GSM8K format: question + answer)");
  ex.answer = field_string(obj, "answer", where);
  if (ex.answer.find("####") == std::string::npos)
    throw Error(where + ": field \"answer\": expected the gold after \"####\", found no \"####\"");
  ex.gold = hashes_gold(ex.answer, where);
  ex.columns = other_columns(obj, {"question", "answer"});
  return ex;
}

// A TRL conversational prompt: [{role, content}, ...] with known roles; the question is the last user turn.
std::vector<ChatMessage> parse_messages(const nlohmann::json& list, const std::string& where) {
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& m = list[i];
    const std::string at = where + ": field \"prompt\", message " + std::to_string(i + 1);
    if (!m.is_object() || !m.value("role", nlohmann::json()).is_string() || !m.value("content", nlohmann::json()).is_string())
      throw Error(at + ": expected {\"role\": string, \"content\": string}, found " + json_text(m));
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      throw Error(at + ": unknown role " + json_text(role) + " (expected system, user or assistant)");
    out.push_back({role, m["content"]});
  }
  if (out.empty() || out.back().role != "user")
    throw Error(where + ": field \"prompt\": a conversational prompt must end with a user message");
  return out;
}

// TRL: prompt (text or messages) + a gold; anything else is an error naming the fields found.
Example trl_example(const nlohmann::json& obj, const std::string& where) {
  if (!obj.contains("prompt"))
    throw Error(
        where +
        ": missing field \"question\" (or \"prompt\"): expected GSM8K's question + answer or TRL's prompt + a gold; fields found: " +
        field_names(obj));
  Example ex;
  const auto& p = obj["prompt"];
  if (p.is_array()) {
    ex.messages = parse_messages(p, where);
    ex.question = ex.messages.back().content;
  } else {
    ex.question = field_string(obj, "prompt", where);
  }
  const char* used = "gold";
  ex.gold = trl_gold(obj, where, &used, /*optional=*/true);
  ex.answer = obj.contains("answer") && obj["answer"].is_string() ? obj["answer"].get<std::string>()
              : std::string(used) == "solution"                   ? obj["solution"].get<std::string>()
              : ex.gold.missing                                   ? std::string()
                                                                  : "#### " + ex.gold.text;
  ex.columns = other_columns(obj, {"prompt", used});
  return ex;
}

}  // namespace

// The gold of a TRL line (see data_files.h): "gold" (a number, or any text: a string gold, compared by answer_mode), else
// "answer" (after "####", or its last \boxed{}), else "solution" (its last \boxed{}). A boxed gold is
// a string gold (MATH's "\frac{1}{2}"); whether it must be a number is the answer mode's to say.
Gold trl_gold(const nlohmann::json& obj, const std::string& where, const char** used, bool optional) {
  const char* ignored = nullptr;
  if (!used) used = &ignored;
  auto text_gold = [&](std::string text, const std::string& field) {
    if (trim(text).empty()) throw Error(where + ": field " + json_text(field) + ": the gold is empty");
    return Gold::from_text(std::string(trim(text)));
  };
  if (obj.contains("gold")) {
    *used = "gold";
    const auto& g = obj["gold"];
    if (g.is_number()) {
      Gold out(g.get<double>());
      out.text = json_text(g);
      return out;
    }
    if (g.is_string()) return text_gold(g.get<std::string>(), "gold");
    throw Error(where + ": field \"gold\": expected a number or string, found " + g.type_name());
  }
  for (const char* field : {"answer", "solution"}) {
    if (!obj.contains(field)) continue;
    *used = field;
    const std::string text = field_string(obj, field, where);
    if (std::string(field) == "answer" && text.find("####") != std::string::npos) return hashes_gold(text, where);
    const ExtractedAnswer boxed = extract_answer(text, AnswerMode::Math, /*last_number=*/false);
    if (boxed.source != AnswerSource::Boxed)
      throw Error(where + ": field " + json_text(field) + ": no closed \\boxed{...} holding the gold");
    return text_gold(boxed.span, field);
  }
  if (optional) {
    Gold none;
    none.missing = true;
    return none;
  }
  throw Error(where + ": missing field \"gold\" (format: prompt + gold, or an \"answer\" / \"solution\" holding it); fields found: " +
              field_names(obj));
}

std::vector<Example> parse_gsm8k_examples(const std::string& text, const std::string& path, size_t limit) {
  std::vector<Example> examples;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (trim(line).empty()) continue;
    if (limit && examples.size() >= limit) break;
    std::string where = path + ":" + std::to_string(lineno);
    nlohmann::json obj = parse_json(line, where);
    if (!obj.is_object()) throw Error(where + ": expected a JSON object, found " + obj.type_name());
    Example ex = obj.contains("question") ? gsm8k_example(obj, where) : trl_example(obj, where);
    ex.line = lineno;
    if (trim(ex.question).empty()) throw Error(where + ": the question is empty");
    examples.push_back(std::move(ex));
  }
  if (examples.empty()) throw Error(path + ": no examples (the file is empty)");
  return examples;
}

void require_golds(const std::vector<Example>& examples, const std::string& path, AnswerMode mode, bool needed) {
  for (const auto& ex : examples) {
    if (!ex.gold.missing || !needed) continue;
    throw Error(path + ":" + std::to_string(ex.line) +
                ": no gold (fields \"gold\", \"answer\" or \"solution\"), and it is needed: reward_weights.correctness is not 0, or the "
                "file is evaluated; give the line a gold, or score it with rules or a reward program only (reward_weights.correctness: 0)");
  }
  if (mode == AnswerMode::Math) return;
  for (const auto& ex : examples)
    if (!ex.gold.missing && !ex.gold.number)
      throw Error(path + ":" + std::to_string(ex.line) + ": the gold " + quote(ex.gold.text) + " is not one number, and answer_mode " +
                  choice_name(mode) + " compares numbers (answer_mode: math compares answers like this one)");
}

// ---------------------------------------------------------------------------------------------
// Offline groups

std::vector<OfflineGroup> parse_offline_groups(const std::string& text, const std::string& path) {
  std::vector<OfflineGroup> out;
  std::istringstream in(text);
  size_t lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (trim(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    nlohmann::json j = parse_json(line, where);
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      throw Error(where + ": expected an object with a string field \"prompt\"");
    if (!j.contains("responses") || !j["responses"].is_array() || !j.contains("rewards") || !j["rewards"].is_array())
      throw Error(where + ": expected array fields \"responses\" and \"rewards\"");
    OfflineGroup g;
    g.prompt = j["prompt"];
    g.line = lineno;
    for (const auto& r : j["responses"]) {
      if (!r.is_string()) throw Error(where + ": \"responses\" must hold strings, found " + json_text(r));
      g.responses.push_back(r);
    }
    for (const auto& r : j["rewards"]) {
      if (!r.is_number()) throw Error(where + ": \"rewards\" must hold numbers, found " + json_text(r));
      g.rewards.push_back(r.get<float>());
    }
    if (g.responses.size() != g.rewards.size())
      throw Error(where + ": " + std::to_string(g.responses.size()) + " responses but " + std::to_string(g.rewards.size()) + " rewards");
    if (g.responses.size() < 2) throw Error(where + ": a group needs at least 2 responses, found " + std::to_string(g.responses.size()));
    if (!out.empty() && g.responses.size() != out.front().responses.size())
      throw Error(where + ": " + std::to_string(g.responses.size()) + " responses, but line " + std::to_string(out.front().line) + " has " +
                  std::to_string(out.front().responses.size()) + " (every group must have the same size)");
    out.push_back(std::move(g));
  }
  if (out.empty()) throw Error(path + ": no groups (the file is empty)");
  return out;
}

std::vector<OfflineGroup> load_offline_groups(const std::string& path) {
  return parse_offline_groups(read_file(path), path);
}

}  // namespace grpo
