// reward.h: rule-based rewards for GSM8K completions (DeepSeek-R1 style: accuracy + format).
//
// extract_answer reads the text after the last "</think>" when there is one (a number in the
// reasoning is never the answer: Qwen3's native thinking, R1's think block), then picks ONE span in
// priority order and takes the LAST number in it:
//   (1) the content of the last <answer>...</answer> (an unclosed <answer> runs to the end)
//   (2) else the last balanced \boxed{...}
//   (3) else the text after the last "####" to the end of that line
//   (4) else, in flexible mode only, the whole completion.
// If the chosen span holds no number, extraction fails: an empty <answer></answer> never falls
// through to a later span (that would let a policy hide a guess and still be paid).
//
// Numbers: optional sign (- or U+2212, only when not glued to a preceding letter/digit), digits
// with optional thousands groups (a comma followed by exactly three digits), optional decimals,
// fractions a/b and \frac{a}{b} / \dfrac / \tfrac; a leading $ and a trailing % are ignored.
// Equality with the gold is numeric: |x - gold| <= 1e-6 * max(1, |gold|).
//
// answer_mode math (MATH-style string golds): the span is the last balanced \boxed{...} after any
// "</think>", else the last <answer>...</answer>, else the text after the last "####", else the last
// number; it equals the gold as math-verify judges (math_answer.h), not by the number it holds.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/base/settings.h"
#include "grpo/rewards/math_answer.h"
#include "grpo/rewards/reward_rules.h"

namespace grpo {

class RewardProgram;

AnswerMode parse_answer_mode(const std::string& s);  // "strict" | "flexible" | "math"

enum class AnswerSource { None, AnswerTag, Boxed, Hashes, Whole, LastNumber };
const char* answer_source_name(AnswerSource s);

struct ExtractedAnswer {
  std::optional<double> value;  // the last number of the chosen span; empty = extraction failed (strict, flexible)
  AnswerSource source = AnswerSource::None;
  std::string span;  // the chosen span's text
};

// ---------------------------------------------------------------------------------------------
// Numbers
// All numbers in `text`, left to right, with fractions folded into one value.
std::vector<double> find_numbers(std::string_view text);
// The value of `text` (trimmed) when all of it is one number as find_numbers reads them ("1,080",
// "$18", "-\frac{1}{2}", "3/4", "25%" = 25); empty otherwise ("\frac{\pi}{2}", "(1, 2)", "18 apples").
std::optional<double> whole_number(std::string_view text);
// True if `text` (trimmed) is exactly one plain number: sign, digits, thousands groups, decimals.
bool is_plain_number(std::string_view text);
bool answers_equal(double x, double gold);

// ---------------------------------------------------------------------------------------------
// Extraction
// `last_number`: math mode's last fallback (evaluation's strict column turns it off).
ExtractedAnswer extract_answer(std::string_view completion, AnswerMode mode, bool last_number = true);
// Gold of a GSM8K answer: the number after the last "####" (thousands separators removed).
// Empty when there is no "####" or no number after it.
std::optional<double> parse_gsm8k_gold(std::string_view answer);

// ---------------------------------------------------------------------------------------------
// Reward functions, each (completion, gold) -> float

struct RewardContext {
  AnswerMode mode = AnswerMode::Strict;
  int length_target = 1024;       // characters (code points) before the length penalty starts
  int overlong_max_len = 512;     // `overlong`: tokens at which the penalty reaches -1 (L_max)
  int overlong_buffer_len = 128;  // `overlong`: the soft zone before it (L_cache)
  bool math_last_number = true;   // math mode: fall back to the completion's last number
};

float correctness_reward(std::string_view completion, const Gold& gold, const RewardContext& ctx);  // 1 / 0
float format_reward(std::string_view completion);                            // 1 iff exactly <think>..</think> <answer>..</answer>
float tags_reward(std::string_view completion);                              // 0.25 per tag present exactly once, in order
float digit_reward(std::string_view completion, const RewardContext& ctx);   // 1 iff span is a plain number
float length_reward(std::string_view completion, const RewardContext& ctx);  // 0 .. -1 past target
// DAPO's soft overlong punishment on the completion's token count n (L_max, L_cache from ctx):
//   0 when n <= L_max - L_cache;  (L_max - L_cache - n) / L_cache up to L_max;  -1 beyond.
// An unknown count (n < 0) scores 0.
float overlong_reward(int64_t n_tokens, const RewardContext& ctx);

// The reward functions by name, in report order.
const std::vector<std::string>& reward_names();

struct RewardResult {
  ExtractedAnswer extracted;
  bool correct = false;
  std::map<std::string, float> by_fn;  // each component's raw value: built-ins, rules, program's
  float total = 0;                     // sum of weight * value
  std::string error;                   // non-empty: a reward failed on this completion, which scores 0
};

// One completion to score, with what rules and the external program may read.
struct ScoreItem {
  std::string prompt;  // the question (sent to the external program)
  std::string completion;
  Gold gold;
  int64_t n_tokens = -1;  // completion tokens (length rules with unit tokens); < 0 unknown
  std::string columns;    // the example's other fields, a JSON object's text ("" = none): the program's "columns"
  std::string messages;   // with tools: the transcript's messages, a JSON list's text: the program's "messages"
};

// Scores completions with every reward: the built-in functions (weights by name), the config's
// rule rewards (reward_rules.h, each with its own weight) and, when given, the external reward
// program (reward_program.h; each of its components weighs `program_weight`).
// A reward that fails on one completion (a rule's regex hitting PCRE2's match limit on it, the
// program answering null for it) does not stop the run: that completion scores 0 in every
// component, with the reason in RewardResult::error for the caller to count and report.
class RewardSet {
 public:
  RewardSet(std::map<std::string, double> weights, RewardContext ctx, std::vector<RewardRule> rules = {},
            std::shared_ptr<RewardProgram> program = nullptr, double program_weight = 1.0);
  // Built-ins and rules only (no program call): one completion.
  RewardResult score(std::string_view completion, const Gold& gold, int64_t n_tokens = -1) const;
  // Everything, the program called once for the whole batch; `step` goes into its request.
  std::vector<RewardResult> score_batch(const std::vector<ScoreItem>& items, int64_t step) const;
  const std::map<std::string, double>& weights() const { return weights_; }
  const RewardContext& context() const { return ctx_; }

 private:
  RewardResult score_unguarded(std::string_view completion, const Gold& gold, int64_t n_tokens) const;

  std::map<std::string, double> weights_;
  RewardContext ctx_;
  std::vector<CompiledRule> rules_;
  std::shared_ptr<RewardProgram> program_;
  double program_weight_;
};

// The reward set a config asks for (weights, answer mode, rules, external program started now).

}  // namespace grpo
