// reward.cpp: answer extraction and the rule-based reward functions (see reward.h for the rules).
#include "grpo/rewards/reward.h"

#include <cmath>
#include <cstdlib>

#include "grpo/base/common.h"
#include "grpo/base/settings.h"
#include "grpo/rewards/reward_program.h"

namespace grpo {

AnswerMode parse_answer_mode(const std::string& s) {
  return parse_choice<AnswerMode>(s, "answer mode");
}

const char* answer_source_name(AnswerSource s) {
  switch (s) {
    case AnswerSource::AnswerTag:
      return "answer_tag";
    case AnswerSource::Boxed:
      return "boxed";
    case AnswerSource::Hashes:
      return "hashes";
    case AnswerSource::Whole:
      return "whole";
    case AnswerSource::LastNumber:
      return "last_number";
    default:
      return "none";
  }
}

// ---------------------------------------------------------------------------------------------
// Number scanning

namespace {

constexpr std::string_view kUnicodeMinus = "\xE2\x88\x92";  // U+2212

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

struct Scan {
  double value;
  size_t end;  // one past the last consumed byte
};

// Unsigned decimal at s[i]: digits, thousands groups (",ddd" not followed by a digit), decimals.
std::optional<Scan> scan_unsigned(std::string_view s, size_t i) {
  size_t n = s.size(), j = i;
  if (j >= n || !is_digit(s[j])) return std::nullopt;
  std::string text;
  while (j < n && is_digit(s[j])) text += s[j++];
  while (j + 3 < n && s[j] == ',' && is_digit(s[j + 1]) && is_digit(s[j + 2]) && is_digit(s[j + 3]) &&
         (j + 4 >= n || !is_digit(s[j + 4]))) {
    text.append(s.substr(j + 1, 3));
    j += 4;
  }
  if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
    text += s[j++];
    while (j < n && is_digit(s[j])) text += s[j++];
  }
  return Scan{std::strtod(text.c_str(), nullptr), j};
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return i;
}

// Sign at s[i] ('-' or U+2212): returns its length, 0 if none.
size_t sign_len(std::string_view s, size_t i) {
  if (i < s.size() && s[i] == '-') return 1;
  if (s.substr(i, kUnicodeMinus.size()) == kUnicodeMinus) return kUnicodeMinus.size();
  return 0;
}

std::optional<Scan> scan_value(std::string_view s, size_t i);

// {signed number} at s[i], spaces allowed inside the braces.
std::optional<Scan> scan_braced(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  auto v = scan_value(s, skip_spaces(s, i + 1));
  if (!v) return std::nullopt;
  size_t j = skip_spaces(s, v->end);
  if (j >= s.size() || s[j] != '}') return std::nullopt;
  return Scan{v->value, j + 1};
}

// \frac{a}{b}, \dfrac{a}{b}, \tfrac{a}{b} at s[i].
std::optional<Scan> scan_latex_frac(std::string_view s, size_t i) {
  for (std::string_view cmd : {"\\frac", "\\dfrac", "\\tfrac"}) {
    if (s.substr(i, cmd.size()) != cmd) continue;
    auto num = scan_braced(s, i + cmd.size());
    if (!num) return std::nullopt;
    auto den = scan_braced(s, num->end);
    if (!den || den->value == 0) return std::nullopt;
    return Scan{num->value / den->value, den->end};
  }
  return std::nullopt;
}

// One value at s[i]: [$][sign][$](\frac{..}{..} | unsigned[/unsigned])[%].
// A sign glued to a preceding letter or digit ("3-5") is a hyphen, not a sign.
std::optional<Scan> scan_value(std::string_view s, size_t i) {
  size_t j = i;
  if (j < s.size() && s[j] == '$') ++j;
  double sign = 1;
  if (size_t sl = sign_len(s, j)) {
    if (j > 0 && is_alnum(s[j - 1])) return std::nullopt;
    sign = -1;
    j += sl;
    if (j < s.size() && s[j] == '$') ++j;
  }
  std::optional<Scan> v = scan_latex_frac(s, j);
  if (!v) {
    v = scan_unsigned(s, j);
    if (!v) return std::nullopt;
    if (v->end + 1 < s.size() && s[v->end] == '/') {
      auto den = scan_unsigned(s, v->end + 1);
      if (den && den->value != 0) v = Scan{v->value / den->value, den->end};
    }
  }
  size_t end = v->end;
  if (end < s.size() && s[end] == '%') ++end;
  return Scan{sign * v->value, end};
}

}  // namespace

namespace {

// Calls fn(start, scan) for every number in `text`, left to right.
template <class Fn>
void for_each_number(std::string_view text, Fn fn) {
  size_t i = 0;
  while (i < text.size()) {
    if (auto v = scan_value(text, i)) {
      fn(i, *v);
      i = v->end;
    } else {
      ++i;
    }
  }
}

}  // namespace

std::vector<double> find_numbers(std::string_view text) {
  std::vector<double> out;
  for_each_number(text, [&](size_t, const Scan& v) { out.push_back(v.value); });
  return out;
}

std::optional<double> whole_number(std::string_view text) {
  std::string_view t = trim(text);
  auto v = scan_value(t, 0);
  if (!v || v->end != t.size()) return std::nullopt;
  return v->value;
}

bool is_plain_number(std::string_view text) {
  std::string_view t = trim(text);
  size_t j = sign_len(t, 0);
  auto v = scan_unsigned(t, j);
  return v && v->end == t.size();
}

bool answers_equal(double x, double gold) {
  return std::abs(x - gold) <= 1e-6 * std::max(1.0, std::abs(gold));
}

// ---------------------------------------------------------------------------------------------
// Span selection

namespace {

// Content of the last balanced \boxed{...}, if any.
std::optional<std::string_view> last_boxed(std::string_view s) {
  constexpr std::string_view kBoxed = "\\boxed{";
  size_t pos = s.rfind(kBoxed);
  while (pos != std::string_view::npos) {
    size_t start = pos + kBoxed.size(), depth = 1, j = start;
    for (; j < s.size() && depth > 0; ++j) {
      if (s[j] == '{')
        ++depth;
      else if (s[j] == '}')
        --depth;
    }
    if (depth == 0) return s.substr(start, j - 1 - start);
    if (pos == 0) break;
    pos = s.rfind(kBoxed, pos - 1);
  }
  return std::nullopt;
}

// The content of the last <answer> (an unclosed one runs to the end).
std::optional<std::string_view> last_answer_tag(std::string_view c) {
  size_t open = c.rfind("<answer>");
  if (open == std::string_view::npos) return std::nullopt;
  size_t start = open + 8;
  size_t close = c.find("</answer>", start);
  return c.substr(start, close == std::string_view::npos ? std::string_view::npos : close - start);
}

// The text after the last "####" to the end of its line.
std::optional<std::string_view> last_hashes(std::string_view c) {
  size_t h = c.rfind("####");
  if (h == std::string_view::npos) return std::nullopt;
  size_t eol = c.find('\n', h);
  return c.substr(h + 4, eol == std::string_view::npos ? std::string_view::npos : eol - h - 4);
}

// The last number's text; a leading "." joins it (".5") when no digit stands before the dot.
std::optional<std::string_view> last_number_text(std::string_view c) {
  std::optional<std::string_view> last;
  for_each_number(c, [&](size_t start, const Scan& v) {
    if (start > 0 && c[start - 1] == '.' && (start == 1 || !is_digit(c[start - 2]))) --start;
    last = c.substr(start, v.end - start);
  });
  return last;
}

// Math mode's span: boxed first (MATH's convention), then the tag, "####", the last number.
ExtractedAnswer extract_math_answer(std::string_view c, bool last_number) {
  ExtractedAnswer out;
  std::optional<std::string_view> span;
  if ((span = last_boxed(c)))
    out.source = AnswerSource::Boxed;
  else if ((span = last_answer_tag(c)))
    out.source = AnswerSource::AnswerTag;
  else if ((span = last_hashes(c)))
    out.source = AnswerSource::Hashes;
  else if (last_number && (span = last_number_text(c)))
    out.source = AnswerSource::LastNumber;
  else
    return out;
  out.span = std::string(*span);
  out.value = whole_number(*span);  // a value only when the answer is one number (the rules' "found" is the span)
  return out;
}

}  // namespace

ExtractedAnswer extract_answer(std::string_view c, AnswerMode mode, bool last_number) {
  ExtractedAnswer out;
  if (size_t think_end = c.rfind("</think>"); think_end != std::string_view::npos) c.remove_prefix(think_end + 8);
  if (mode == AnswerMode::Math) return extract_math_answer(c, last_number);
  std::string_view span;
  if (auto tag = last_answer_tag(c)) {
    span = *tag;
    out.source = AnswerSource::AnswerTag;
  } else if (auto boxed = last_boxed(c)) {
    span = *boxed;
    out.source = AnswerSource::Boxed;
  } else if (auto hashes = last_hashes(c)) {
    span = *hashes;
    out.source = AnswerSource::Hashes;
  } else if (mode == AnswerMode::Flexible) {
    span = c;
    out.source = AnswerSource::Whole;
  } else {
    return out;
  }
  out.span = std::string(span);
  std::vector<double> nums = find_numbers(span);
  if (!nums.empty()) out.value = nums.back();
  return out;
}

std::optional<double> parse_gsm8k_gold(std::string_view answer) {
  size_t h = answer.rfind("####");
  if (h == std::string_view::npos) return std::nullopt;
  std::string tail;
  for (char ch : answer.substr(h + 4))
    if (ch != ',') tail += ch;
  std::vector<double> nums = find_numbers(tail);
  if (nums.empty()) return std::nullopt;
  return nums.back();
}

// ---------------------------------------------------------------------------------------------
// Reward functions

namespace {

// The two rewards that judge the extracted answer, shared by the free functions and RewardSet.
float correct_from(const ExtractedAnswer& a, const Gold& gold, AnswerMode mode) {
  if (mode == AnswerMode::Math) return a.source != AnswerSource::None && math_answers_equal(a.span, gold.text) ? 1.0f : 0.0f;
  return a.value && gold.number && answers_equal(*a.value, *gold.number) ? 1.0f : 0.0f;
}
float digit_from(const ExtractedAnswer& a) {
  return a.source != AnswerSource::None && is_plain_number(a.span) ? 1.0f : 0.0f;
}

size_t count_of(std::string_view s, std::string_view needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + needle.size())) ++n;
  return n;
}

bool only_space(std::string_view s) {
  return trim(s).empty();
}

constexpr std::string_view kTags[4] = {"<think>", "</think>", "<answer>", "</answer>"};

}  // namespace

float correctness_reward(std::string_view completion, const Gold& gold, const RewardContext& ctx) {
  return correct_from(extract_answer(completion, ctx.mode, ctx.math_last_number), gold, ctx.mode);
}

float format_reward(std::string_view completion) {
  std::string_view t = trim(completion);
  for (auto tag : kTags)
    if (count_of(t, tag) != 1) return 0.0f;
  if (!starts_with(t, kTags[0]) || !ends_with(t, kTags[3])) return 0.0f;
  size_t think_close = t.find(kTags[1]), answer_open = t.find(kTags[2]);
  if (!(think_close < answer_open)) return 0.0f;
  size_t gap = think_close + kTags[1].size();
  return only_space(t.substr(gap, answer_open - gap)) ? 1.0f : 0.0f;
}

float tags_reward(std::string_view completion) {
  // Walk the tags in canonical order; a tag earns 0.25 when it occurs exactly once and after the
  // previous credited tag, so partial structure gets partial credit but disorder does not.
  float r = 0;
  size_t after = 0;
  for (auto tag : kTags) {
    if (count_of(completion, tag) != 1) continue;
    size_t pos = completion.find(tag);
    if (pos < after) continue;
    r += 0.25f;
    after = pos + tag.size();
  }
  return r;
}

float digit_reward(std::string_view completion, const RewardContext& ctx) {
  return digit_from(extract_answer(completion, ctx.mode, ctx.math_last_number));
}

float length_reward(std::string_view completion, const RewardContext& ctx) {
  size_t chars = 0;
  for (char ch : completion)
    if ((static_cast<unsigned char>(ch) & 0xC0) != 0x80) ++chars;  // count UTF-8 code points
  if (chars <= static_cast<size_t>(ctx.length_target)) return 0.0f;
  double over = double(chars - ctx.length_target) / ctx.length_target;
  return static_cast<float>(-std::min(1.0, over));
}

float overlong_reward(int64_t n_tokens, const RewardContext& ctx) {
  const int64_t soft_from = ctx.overlong_max_len - ctx.overlong_buffer_len;
  if (n_tokens < 0 || n_tokens <= soft_from) return 0.0f;
  if (n_tokens > ctx.overlong_max_len) return -1.0f;
  return static_cast<float>(double(soft_from - n_tokens) / std::max(1, ctx.overlong_buffer_len));
}

const std::vector<std::string>& reward_names() {
  static const std::vector<std::string> names = {"correctness", "format", "tags", "digit", "length", "overlong"};
  return names;
}

// ---------------------------------------------------------------------------------------------
// RewardSet

RewardSet::RewardSet(std::map<std::string, double> weights, RewardContext ctx, std::vector<RewardRule> rules,
                     std::shared_ptr<RewardProgram> program, double program_weight)
    : weights_(std::move(weights)), ctx_(ctx), program_(std::move(program)), program_weight_(program_weight) {
  const auto& names = reward_names();
  for (const auto& [fn, w] : weights_) {
    if (std::find(names.begin(), names.end(), fn) == names.end()) {
      std::string msg = "reward weights: unknown reward function '" + fn + "'";
      std::string best = closest_match(fn, names);
      throw Error(best.empty() ? msg : msg + "; did you mean '" + best + "'?");
    }
    if (!std::isfinite(w)) throw Error("reward weights: weight of '" + fn + "' is not finite");
  }
  for (auto& r : rules) rules_.emplace_back(std::move(r));
}

namespace {

// A completion a reward failed on: every component 0, the reason kept.
void zero_failed(RewardResult& r, std::string why) {
  for (auto& [fn, v] : r.by_fn) v = 0.0f;
  r.total = 0;
  r.correct = false;
  r.error = std::move(why);
}

}  // namespace

RewardResult RewardSet::score(std::string_view completion, const Gold& gold, int64_t n_tokens) const {
  RewardResult r;
  try {
    r = score_unguarded(completion, gold, n_tokens);
  } catch (const CompletionError& e) {
    for (const auto& fn : reward_names()) r.by_fn[fn] = 0.0f;
    for (const auto& rule : rules_) r.by_fn[rule.rule().name] = 0.0f;
    zero_failed(r, e.what());
  }
  return r;
}

RewardResult RewardSet::score_unguarded(std::string_view completion, const Gold& gold, int64_t n_tokens) const {
  RewardResult r;
  r.extracted = extract_answer(completion, ctx_.mode, ctx_.math_last_number);
  r.by_fn["correctness"] = correct_from(r.extracted, gold, ctx_.mode);
  r.correct = r.by_fn["correctness"] == 1.0f;
  r.by_fn["format"] = format_reward(completion);
  r.by_fn["tags"] = tags_reward(completion);
  r.by_fn["digit"] = digit_from(r.extracted);
  r.by_fn["length"] = length_reward(completion, ctx_);
  r.by_fn["overlong"] = overlong_reward(n_tokens, ctx_);
  double total = 0;
  for (const auto& [fn, v] : r.by_fn) {
    auto it = weights_.find(fn);
    if (it != weights_.end()) total += it->second * v;
  }
  for (const auto& rule : rules_) {
    const bool found = ctx_.mode == AnswerMode::Math ? r.extracted.source != AnswerSource::None : r.extracted.value.has_value();
    const float v = rule.value(completion, found ? r.extracted.span : std::string_view(), n_tokens);
    r.by_fn[rule.rule().name] = v;
    total += rule.rule().weight * v;
  }
  r.total = static_cast<float>(total);
  return r;
}

std::vector<RewardResult> RewardSet::score_batch(const std::vector<ScoreItem>& items, int64_t step) const {
  std::vector<RewardResult> out;
  for (const auto& it : items) out.push_back(score(it.completion, it.gold, it.n_tokens));
  if (!program_ || items.empty()) return out;
  RewardRequest req;
  req.step = step;
  for (const auto& it : items) {
    req.prompts.push_back(it.prompt);
    req.completions.push_back(it.completion);
    req.golds.push_back(it.gold);
    req.columns.push_back(it.columns);
    req.messages.push_back(it.messages);
  }
  for (const auto& [name, values] : program_->score(req)) {
    if (out[0].by_fn.count(name))
      throw Error(program_->describe() + ": component '" + name +
                  "' has the name of a built-in reward or a rule; rename it in the program");
    for (size_t i = 0; i < out.size(); ++i) {
      const bool failed = std::isnan(values[i]);  // the program answered null for this completion
      out[i].by_fn[name] = failed ? 0.0f : values[i];
      if (failed && out[i].error.empty()) out[i].error = program_->describe() + ": component '" + name + "' is null for this completion";
      out[i].total += failed ? 0.0f : static_cast<float>(program_weight_ * values[i]);
    }
  }
  for (auto& r : out)
    if (!r.error.empty()) zero_failed(r, r.error);
  return out;
}

}  // namespace grpo
