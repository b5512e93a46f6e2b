// reward_rules.h: rule rewards written in the config (`reward_rules:`), each a name, a weight and
// one of three types, logged as reward/<name> like the built-in functions:
//
//   regex     count = non-overlapping matches of `pattern` (PCRE2, UTF-8, Unicode properties:
//             \p{Han}, \w over all scripts), or 0/1 with `presence: true`;
//             value = clamp(per_match * count, -max, max)
//   keywords  the same over a list of literal `words` (any of them; `whole_words: true` wants no
//             letter or digit on either side; `ignore_case: true`)
//   length    L = the completion's length in `unit`s: words | chars | tokens; d = |L - target|;
//               shape triangular: value = max(0, 1 - d / tolerance)      (1 at the target)
//               shape linear:     value = -min(1, max(0, d - tolerance) / target)   (a penalty)
//
// Every type reads the whole completion, or with `on: answer` only its extracted answer span
// (reward.h's extract_answer; empty when extraction fails). Words: each Han / Hiragana / Katakana
// character is one word (those scripts put no spaces between words), other words are runs of
// letters and digits with inner ' or -. Chars are Unicode code points. Tokens are the policy's
// completion tokens (grpo_reward needs --tokenizer for them).
//
// TRL takes Python callables for this; a rule is the common case without code, and the external
// program (reward_program.h) the rest.
#pragma once

#include <limits>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/base/common.h"

namespace grpo {

enum class RuleType { Regex, Keywords, Length };
enum class RuleTarget { Completion, Answer };
enum class LengthUnit { Words, Chars, Tokens };
enum class LengthShape { Triangular, Linear };

struct RewardRule {
  std::string name;  // reward/<name> in the logs; [a-z0-9_]+
  RuleType type = RuleType::Regex;
  double weight = 1.0;                     // its weight in the total reward
  RuleTarget on = RuleTarget::Completion;  // completion | answer (the extracted answer span)
  // ---- regex, keywords
  std::string pattern;             // regex: the PCRE2 pattern
  std::vector<std::string> words;  // keywords: the literal words
  bool presence = false;           // count 0 or 1 instead of every match
  bool ignore_case = false;
  bool whole_words = false;                              // keywords: no letter or digit either side
  double per_match = 1.0;                                // value per match (negative: a penalty)
  double max = std::numeric_limits<double>::infinity();  // |value| cap
  // ---- length
  LengthUnit unit = LengthUnit::Words;
  double target = 0;
  double tolerance = 0;
  LengthShape shape = LengthShape::Triangular;

  std::string origin;  // where it was written ("file.yaml:12"), for messages
};

// Parses one rule object (JSON, or YAML converted to JSON whose scalars may be strings) and checks
// it (the pattern compiles, the numbers are in range); errors name `where` and the field.
RewardRule parse_reward_rule(const nlohmann::json& obj, const std::string& where);
// Parses a list of rules and checks names are unique and not a built-in function's.
std::vector<RewardRule> parse_reward_rules(const nlohmann::json& arr, const std::string& where);
// The rule as the JSON object parse_reward_rule reads back (only the fields of its type).
nlohmann::json reward_rule_to_json(const RewardRule& r);

// Word and code point counts as the length rule defines them.
int64_t count_words(std::string_view text);
int64_t count_chars(std::string_view text);

// A rule ready to score: the regex compiled once.
// A rule that cannot score one completion (its regex hits PCRE2's match limit on that text): that
// completion scores 0 and the run goes on (RewardSet::score). Configuration mistakes stay Error.
class CompletionError : public Error {
 public:
  using Error::Error;
};

class CompiledRule {
 public:
  explicit CompiledRule(RewardRule rule);
  const RewardRule& rule() const { return rule_; }
  // Non-overlapping matches of the pattern (regex, keywords).
  int64_t count_matches(std::string_view text) const;
  // The rule's value for one completion; `answer_span` is used with `on: answer`, `n_tokens` by
  // unit tokens (< 0: unknown, an Error).
  float value(std::string_view completion, std::string_view answer_span, int64_t n_tokens) const;

 private:
  RewardRule rule_;
  std::shared_ptr<void> code_;  // pcre2_code_8, freed by its deleter
};

}  // namespace grpo
