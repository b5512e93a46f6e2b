// grpo_reward: score completions from stdin with the trainer's rewards, as a run configures them
// (-c FILE and --set, the same keys as grpo_train: reward_weights, reward_rules, reward_command,
// answer_mode, ...), so a reward can be tried on a JSONL of completions before training.
//   in : JSONL, {"completion": "...", "answer": "... #### 42"} or {"completion": "...", "gold": 42}
//        (--mode math: any answer, {"gold": "\\frac{1}{2}"}),
//        optionally "question" (sent to reward_command as the prompt)
//   out: JSONL, same order: {"extracted": <number|null>, "span": <the answer's text|null>, "correct": <bool>,
//        "rewards": {<component>: <value>}, "reward": <weighted total>}
// With reward_command, lines are scored in batches of --batch (one request per batch); otherwise
// one at a time. A bad line is
// reported with its line number on stderr and the program exits 1; the batches before it are
// already written and flushed.
#include <iostream>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/bin/cli.h"
#include "grpo/config/config.h"
#include "grpo/engine/data_files.h"
#include "grpo/rewards/reward.h"
#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;

namespace {

// The line's gold, read as a data file's line (trl_gold); strict and flexible need a number.
Gold gold_of(const nlohmann::json& obj, const std::string& where, AnswerMode mode) {
  Gold g = trl_gold(obj, where);
  if (mode != AnswerMode::Math && !g.number)
    throw Error(where + ": the gold " + quote(g.text) + " is not one number, and --mode " + choice_name(mode) +
                " compares numbers (--mode math compares answers like this one)");
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_reward: score completions (JSONL on stdin) with the GRPO rewards of a config"};
  add_version_flag(app, "grpo_reward");
  std::string mode, weights_arg, tokenizer_path;
  int length_target = 0, batch = 64;
  TrainConfig defaults;
  std::string default_weights;
  for (const auto& [fn, w] : defaults.reward_weights)
    default_weights += (default_weights.empty() ? "" : ",") + fn + "=" + get_config_value(defaults, "reward_weights." + fn);
  ConfigOptions config;
  config.add_to(app, "a grpo_train config (YAML/JSON): its reward keys are used");
  app.add_option("--mode", mode, "answer extraction mode (answer_mode)")->check(CLI::IsMember(choice_names<AnswerMode>()));
  app.add_option("--weights", weights_arg, "reward weights as fn=w,... over the config's [" + default_weights + "]");
  app.add_option("--length-target", length_target, "`length` reward target in characters (length_target)")->check(integer_in(1, INT_MAX));
  app.add_option("--tokenizer", tokenizer_path, "tokenizer (dir or tokenizer.json): token counts for length rules in tokens");
  app.add_option("--batch", batch, "completions per reward_command request")->check(integer_in(1, INT_MAX))->capture_default_str();
  GRPO_CLI_PARSE(app, argc, argv);

  try {
    TrainConfig cfg = defaults;
    config.apply(cfg);
    if (!mode.empty()) set_config_value(cfg, "answer_mode", mode, "--mode");
    if (length_target > 0) set_config_value(cfg, "length_target", std::to_string(length_target), "--length-target");
    if (!weights_arg.empty())
      for (const auto& kv : split(weights_arg, ',')) apply_override(cfg, "reward_weights." + kv);
    std::unique_ptr<Tokenizer> tok;
    if (!tokenizer_path.empty()) tok = load_tokenizer(resolve_model_path(tokenizer_path));
    RewardSet rewards = make_reward_set(cfg);
    if (cfg.reward_command.empty()) batch = 1;  // nothing to batch for: each line out as it comes

    std::vector<ScoreItem> items;
    auto flush = [&] {
      for (const RewardResult& r : rewards.score_batch(items, 0)) {
        nlohmann::json out;
        out["extracted"] = r.extracted.value ? nlohmann::json(*r.extracted.value) : nlohmann::json(nullptr);
        out["span"] = r.extracted.source == AnswerSource::None ? nlohmann::json(nullptr) : nlohmann::json(r.extracted.span);
        out["correct"] = r.correct;
        out["rewards"] = r.by_fn;
        out["reward"] = r.total;
        if (!r.error.empty()) out["error"] = r.error;  // a reward failed on this completion: it scores 0
        std::cout << json_text(out) << "\n";
      }
      std::cout << std::flush;
      items.clear();
    };
    std::string line;
    size_t lineno = 0;
    while (std::getline(std::cin, line)) {
      ++lineno;
      if (trim(line).empty()) continue;
      std::string where = "stdin:" + std::to_string(lineno);
      nlohmann::json obj = parse_json(line, where);
      if (!obj.is_object()) throw Error(where + ": expected a JSON object");
      if (!obj.contains("completion") || !obj["completion"].is_string()) throw Error(where + ": missing string field \"completion\"");
      ScoreItem it;
      it.completion = obj["completion"].get<std::string>();
      it.gold = gold_of(obj, where, cfg.answer_mode);
      if (obj.contains("question") && obj["question"].is_string()) it.prompt = obj["question"].get<std::string>();
      if (tok) it.n_tokens = static_cast<int64_t>(tok->encode(it.completion, /*match_special=*/false).size());
      items.push_back(std::move(it));
      if (static_cast<int>(items.size()) == batch) flush();
    }
    flush();
  } catch (const std::exception& e) {
    std::cout << std::flush;
    return tool_error("grpo_reward", e);
  }
  return 0;
}
