// grpo_reward: score completions from stdin with the trainer's reward functions.
//   in : JSONL, {"completion": "...", "answer": "... #### 42"} or {"completion": "...", "gold": 42}
//   out: JSONL, same order: {"extracted": <number|null>, "correct": <bool>,
//        "rewards": {<fn>: <value>}, "reward": <weighted total>}
// A bad line is reported with its line number on stderr; nothing is written for it and the
// program exits 1 (earlier lines are already written and flushed).
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "grpo/common.h"
#include "grpo/config.h"
#include "grpo/reward.h"

using namespace grpo;

namespace {

double gold_of(const nlohmann::json& obj, const std::string& where) {
  if (obj.contains("gold")) {
    const auto& g = obj["gold"];
    if (g.is_number()) return g.get<double>();
    if (g.is_string()) {
      auto v = parse_gsm8k_gold("#### " + g.get<std::string>());
      if (v) return *v;
    }
    throw Error(where + ": field \"gold\": expected a number, found " + g.dump());
  }
  if (obj.contains("answer")) {
    if (!obj["answer"].is_string()) throw Error(where + ": field \"answer\": expected a string");
    auto v = parse_gsm8k_gold(obj["answer"].get<std::string>());
    if (!v) throw Error(where + ": field \"answer\": no number after \"####\"");
    return *v;
  }
  throw Error(where + ": missing field \"answer\" or \"gold\"");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_reward: score completions (JSONL on stdin) with the GRPO reward functions"};
  std::string mode = "strict", weights_arg;
  TrainConfig defaults;
  std::string default_weights;
  for (const auto& [fn, w] : defaults.reward_weights)
    default_weights += (default_weights.empty() ? "" : ",") + fn + "=" + get_config_value(defaults, "reward_weights." + fn);
  app.add_option("--mode", mode, "answer extraction mode")->check(CLI::IsMember({"strict", "flexible"}))->capture_default_str();
  app.add_option("--weights", weights_arg, "reward weights as fn=w,... over the defaults [" + default_weights + "]");
  app.add_option("--length-target", defaults.length_target, "length reward target in characters")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    TrainConfig cfg = defaults;
    if (!weights_arg.empty())
      for (const auto& kv : split(weights_arg, ',')) apply_override(cfg, "reward_weights." + kv);
    RewardSet rewards(cfg.reward_weights, RewardContext{parse_answer_mode(mode), cfg.length_target});
    std::string line;
    size_t lineno = 0;
    while (std::getline(std::cin, line)) {
      ++lineno;
      if (trim(line).empty()) continue;
      std::string where = "stdin:" + std::to_string(lineno);
      nlohmann::json obj = parse_json(line, where);
      if (!obj.is_object()) throw Error(where + ": expected a JSON object");
      if (!obj.contains("completion") || !obj["completion"].is_string())
        throw Error(where + ": missing string field \"completion\"");
      double gold = gold_of(obj, where);
      RewardResult r = rewards.score(obj["completion"].get<std::string>(), gold);
      nlohmann::json out;
      out["extracted"] = r.extracted.value ? nlohmann::json(*r.extracted.value) : nlohmann::json(nullptr);
      out["correct"] = r.correct;
      out["rewards"] = r.by_fn;
      out["reward"] = r.total;
      std::cout << out.dump() << "\n" << std::flush;
    }
  } catch (const std::exception& e) {
    std::cerr << "grpo_reward: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
