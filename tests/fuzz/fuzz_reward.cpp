// libFuzzer target for answer extraction and the reward functions: a completion (the input's bytes
// after the first, made valid UTF-8) scored against a gold by every built-in function and three
// rules (a regex, keywords, a word-length rule), strict, flexible and math (math also against a
// string gold: the parser on both sides). Every value is finite, the
// total is the weighted sum, an extracted answer is finite; never a crash or a stray exception.
// Run: scripts/fuzz.sh reward [seconds]
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"
#include "grpo/rewards/reward_rules.h"
#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;

namespace {
std::unique_ptr<RewardSet> strict_set, flexible_set, math_set;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::map<std::string, double> weights;
  for (const auto& n : reward_names()) weights[n] = 0.5;
  auto rules = parse_reward_rules(nlohmann::json::parse(R"([
    {"name": "steps", "type": "regex", "pattern": "(?m)^Step \\d+:", "per_match": 0.1, "max": 0.5},
    {"name": "hedges", "type": "keywords", "words": ["maybe", "perhaps"], "ignore_case": true, "whole_words": true, "per_match": -0.2},
    {"name": "words50", "type": "length", "unit": "words", "target": 50, "tolerance": 25}
  ])"),
                                  "fuzz rules");
  RewardContext ctx;
  ctx.length_target = 64;
  strict_set = std::make_unique<RewardSet>(weights, ctx, rules);
  ctx.mode = AnswerMode::Flexible;
  flexible_set = std::make_unique<RewardSet>(weights, ctx, rules);
  ctx.mode = AnswerMode::Math;
  math_set = std::make_unique<RewardSet>(weights, ctx, rules);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const double gold = static_cast<double>(static_cast<int8_t>(data[0])) * 1.5;
  const std::string text = utf8_lossy(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  // Math mode also against a string gold: the input's first 24 bytes (the parser on both sides).
  const Gold text_gold = Gold::from_text(text.substr(0, 24));
  const std::pair<const RewardSet*, Gold> runs[] = {
      {strict_set.get(), gold}, {flexible_set.get(), gold}, {math_set.get(), gold}, {math_set.get(), text_gold}};
  for (const auto& [set, g] : runs) {
    RewardResult r = set->score(text, g, static_cast<int64_t>(size));
    double total = 0;
    for (const auto& [name, v] : r.by_fn) {
      if (!std::isfinite(v)) std::abort();
      const auto w = set->weights().find(name);
      total += (w == set->weights().end() ? 1.0 : w->second) * v;
    }
    if (!std::isfinite(r.total) || std::abs(r.total - total) > 1e-4 * (1 + std::abs(total))) std::abort();
    if (r.extracted.value && !std::isfinite(*r.extracted.value)) std::abort();
  }
  return 0;
}
