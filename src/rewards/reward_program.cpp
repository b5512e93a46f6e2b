// reward_program.cpp: the external reward program's requests and replies (protocol in
// include/grpo/reward_program.h; the process is line_program.h's).
#include "grpo/rewards/reward_program.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Reply parsing

std::map<std::string, std::vector<float>> parse_reward_reply(const std::string& line, size_t n, const std::string& who) {
  auto bad = [&](const std::string& what) { return Error(who + ": bad reply (" + what + "): " + quote_reply(line)); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw bad("not JSON; NaN and Infinity are not JSON either");
  }
  if (!j.is_object() || !j.contains("rewards")) throw bad("expected an object with \"rewards\"");
  auto values = [&](const nlohmann::json& a, const std::string& name) {
    if (!a.is_array()) throw bad("\"" + name + "\": expected an array of numbers");
    if (a.size() != n) throw bad("\"" + name + "\": expected " + std::to_string(n) + " rewards, found " + std::to_string(a.size()));
    std::vector<float> out;
    for (size_t i = 0; i < n; ++i) {
      if (a[i].is_null()) {  // the program could not score this one completion: it scores 0, counted
        out.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      if (!a[i].is_number()) throw bad("\"" + name + "\"[" + std::to_string(i) + "]: expected a number or null, found " + json_text(a[i]));
      const double v = a[i].get<double>();
      if (!std::isfinite(v) || std::abs(v) > 3e38) throw bad("\"" + name + "\"[" + std::to_string(i) + "]: not a finite float");
      out.push_back(static_cast<float>(v));
    }
    return out;
  };
  std::map<std::string, std::vector<float>> out;
  const auto& r = j["rewards"];
  if (r.is_array()) {
    out["external"] = values(r, "rewards");
  } else if (r.is_object() && !r.empty()) {
    for (const auto& [name, a] : r.items()) {
      if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
        throw bad("component name " + json_text(nlohmann::json(name)) + ": expected [a-z0-9_]+");
      out[name] = values(a, name);
    }
  } else {
    throw bad("\"rewards\": expected an array or an object of arrays");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The program

RewardProgram::RewardProgram(std::vector<std::string> argv, double timeout_s, int max_restarts)
    : program_("reward_command", "reward_timeout", "reward_restarts", std::move(argv), timeout_s, max_restarts) {}

std::map<std::string, std::vector<float>> RewardProgram::score(const RewardRequest& req) {
  const size_t n = req.completions.size();
  nlohmann::json j;
  j["prompts"] = req.prompts;
  j["completions"] = req.completions;
  j["golds"] = nlohmann::json::array();
  for (const auto& g : req.golds) j["golds"].push_back(gold_json(g));
  // The examples' other columns (as TRL passes dataset columns to reward functions), only when a line had any.
  if (std::any_of(req.columns.begin(), req.columns.end(), [](const std::string& c) { return !c.empty(); })) {
    j["columns"] = nlohmann::json::array();
    for (const auto& c : req.columns) j["columns"].push_back(c.empty() ? nlohmann::json::object() : nlohmann::json::parse(c));
  }
  // With tools, each completion's transcript as messages (TRL passes conversational completions so).
  if (std::any_of(req.messages.begin(), req.messages.end(), [](const std::string& m) { return !m.empty(); })) {
    j["messages"] = nlohmann::json::array();
    for (const auto& m : req.messages) j["messages"].push_back(m.empty() ? nlohmann::json::array() : nlohmann::json::parse(m));
  }
  j["step"] = req.step;
  return parse_reward_reply(program_.ask(json_text(j), req.step), n, program_.describe());
}

}  // namespace grpo
