// data_files.cpp: the user's JSONL data files, parsed from text (definitions in data_files.h).
#include "grpo/data_files.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/common.h"
#include "grpo/reward.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// GSM8K examples

namespace {

std::string field_string(const nlohmann::json& obj, const char* name, const std::string& where) {
  const auto& v = obj.at(name);
  if (!v.is_string()) throw Error(where + ": field \"" + name + "\": expected a string, found " + v.type_name());
  return v.get<std::string>();
}

}  // namespace

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
    Example ex;
    ex.line = lineno;
    if (obj.contains("question")) {
      ex.question = field_string(obj, "question", where);
      if (!obj.contains("answer")) throw Error(where + ": missing field \"answer\" (GSM8K format: question + answer)");
      ex.answer = field_string(obj, "answer", where);
      if (ex.answer.find("####") == std::string::npos)
        throw Error(where + ": field \"answer\": expected the gold after \"####\", found no \"####\"");
      auto gold = parse_gsm8k_gold(ex.answer);
      if (!gold) throw Error(where + ": field \"answer\": no number after the last \"####\"");
      ex.gold = *gold;
    } else if (obj.contains("prompt")) {
      ex.question = field_string(obj, "prompt", where);
      if (!obj.contains("gold")) throw Error(where + ": missing field \"gold\" (format: prompt + gold)");
      const auto& g = obj["gold"];
      if (g.is_number()) {
        ex.gold = g.get<double>();
      } else if (g.is_string()) {
        std::string s;
        for (char ch : g.get<std::string>())
          if (ch != ',') s += ch;
        std::vector<double> nums = find_numbers(s);
        if (nums.size() != 1) throw Error(where + ": field \"gold\": expected one number, found " + quote(g.get<std::string>()));
        ex.gold = nums[0];
      } else {
        throw Error(where + ": field \"gold\": expected a number or string, found " + g.type_name());
      }
      ex.answer = obj.contains("answer") && obj["answer"].is_string() ? obj["answer"].get<std::string>() : "#### " + json_text(g);
    } else {
      throw Error(where + ": missing field \"question\" (or \"prompt\")");
    }
    if (trim(ex.question).empty()) throw Error(where + ": the question is empty");
    examples.push_back(std::move(ex));
  }
  if (examples.empty()) throw Error(path + ": no examples (the file is empty)");
  return examples;
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
