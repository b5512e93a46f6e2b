// Tests for reward.h: number scanning, answer extraction (both modes) and each reward function.
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/config/config.h"
#include "grpo/rewards/reward.h"

using namespace grpo;

namespace {

constexpr double kFail = NAN;  // extraction must fail

struct Case {
  const char* completion;
  AnswerMode mode;
  double expected;  // kFail: no value
  AnswerSource source;
};

const AnswerMode S = AnswerMode::Strict, F = AnswerMode::Flexible;
using Src = AnswerSource;

const Case kCases[] = {
    // (1) <answer> spans
    {"<think>2+2</think><answer>4</answer>", S, 4, Src::AnswerTag},
    {"<answer> 18 </answer>", S, 18, Src::AnswerTag},
    {"<answer>The answer is 3 then 7</answer>", S, 7, Src::AnswerTag},     // last number in span
    {"<answer>1</answer> blah <answer>2</answer>", S, 2, Src::AnswerTag},  // last <answer>
    {"<answer>5</answer> trailing 99", S, 5, Src::AnswerTag},              // text after span ignored
    {"<think>...</think><answer>42", S, 42, Src::AnswerTag},               // unclosed runs to end
    {"<answer></answer> #### 7", S, kFail, Src::AnswerTag},                // empty: no fall-through
    {"<answer>none</answer> \\boxed{3}", S, kFail, Src::AnswerTag},        // no number: fail
    {"<answer>no idea</answer>", F, kFail, Src::AnswerTag},                // flexible doesn't fall through either
    {"<think>7 apples</think><answer>$1,234.50</answer>", S, 1234.5, Src::AnswerTag},
    {"<answer>50%</answer>", S, 50, Src::AnswerTag},
    {"<answer>-5</answer>", S, -5, Src::AnswerTag},
    {"<answer>\xE2\x88\x92"
     "12</answer>",
     S, -12, Src::AnswerTag},  // U+2212 minus
    {"<answer>3/4</answer>", S, 0.75, Src::AnswerTag},
    {"<answer>\\frac{1}{2}</answer>", S, 0.5, Src::AnswerTag},
    {"<answer>\\dfrac{3}{8}</answer>", S, 0.375, Src::AnswerTag},
    {"<answer>\\tfrac{ 9 }{ 3 }</answer>", S, 3, Src::AnswerTag},
    {"<answer>-\\frac{1}{4}</answer>", S, -0.25, Src::AnswerTag},
    {"<answer>1,234,567</answer>", S, 1234567, Src::AnswerTag},
    {"<answer>3,4</answer>", S, 4, Src::AnswerTag},        // two numbers: 3 and 4
    {"<answer>1,2345</answer>", S, 2345, Src::AnswerTag},  // not a thousands group
    {"<answer>18.00</answer>", S, 18, Src::AnswerTag},
    {"<answer>The answer is 18.</answer>", S, 18, Src::AnswerTag},  // final period not decimal
    {"<answer>pages 3-5</answer>", S, 5, Src::AnswerTag},           // hyphen, not minus
    {"<answer>x = -3</answer>", S, -3, Src::AnswerTag},
    {"<answer>$-7</answer>", S, -7, Src::AnswerTag},
    {"<answer>-$7</answer>", S, -7, Src::AnswerTag},
    {"<answer>0.5</answer>", S, 0.5, Src::AnswerTag},
    // (2) \boxed
    {"so the total is \\boxed{72}.", S, 72, Src::Boxed},
    {"\\boxed{1} and later \\boxed{2}", S, 2, Src::Boxed},
    {"\\boxed{\\frac{3}{4}}", S, 0.75, Src::Boxed},           // nested braces balance
    {"\\boxed{5} then \\boxed{6", S, 5, Src::Boxed},          // last one unbalanced
    {"\\boxed{x} #### 9", S, kFail, Src::Boxed},              // boxed wins, no number
    {"\\boxed{12} #### 9", S, 12, Src::Boxed},                // boxed before ####
    {"<answer>4</answer> \\boxed{5}", S, 4, Src::AnswerTag},  // answer tag first
    // (3) ####
    {"Natalia sold 48+24 = 72 clips.\n#### 72", S, 72, Src::Hashes},
    {"#### 1,080\nextra 5", S, 1080, Src::Hashes},  // to end of that line
    {"#### 3\n#### 4", S, 4, Src::Hashes},          // last ####
    {"#### none\n42", S, kFail, Src::Hashes},
    {"#### -2.5 dollars", S, -2.5, Src::Hashes},
    // (4) whole completion, flexible only
    {"The answer is 42.", S, kFail, Src::None},
    {"The answer is 42.", F, 42, Src::Whole},
    {"So 3 + 4 = 7, then 7 * 2 = 14", F, 14, Src::Whole},
    {"no numbers at all", F, kFail, Src::Whole},
    {"", F, kFail, Src::Whole},
    {"", S, kFail, Src::None},
    {"It costs $1,500 in total", F, 1500, Src::Whole},
    {"version2 has 10 items", F, 10, Src::Whole},
    // after thinking: only the text after the last </think> is read
    {"<think>\nso \\boxed{5}? no, 6\n</think>\n\nThe total is \\boxed{6}.", S, 6, Src::Boxed},
    {"<think><answer>5</answer></think> <answer>7</answer>", S, 7, Src::AnswerTag},
    {"<think>#### 5</think>", S, kFail, Src::None},               // the guess inside the reasoning is not read
    {"<think>5</think> it is 8</think> or 9", F, 9, Src::Whole},  // the last </think>
};

}  // namespace

TEST(Reward, ExtractAnswerHandCases) {
  ASSERT_GE(std::size(kCases), 40u);
  for (const auto& c : kCases) {
    SCOPED_TRACE(std::string("completion: ") + c.completion + (c.mode == S ? " [strict]" : " [flexible]"));
    ExtractedAnswer a = extract_answer(c.completion, c.mode);
    EXPECT_EQ(a.source, c.source) << answer_source_name(a.source);
    if (std::isnan(c.expected)) {
      EXPECT_FALSE(a.value.has_value()) << *a.value;
    } else {
      ASSERT_TRUE(a.value.has_value());
      EXPECT_NEAR(*a.value, c.expected, 1e-12);
    }
  }
}

TEST(Reward, FindNumbersFoldsFractionsAndGroups) {
  EXPECT_EQ(find_numbers("1/2 and 3,000 and 4.5% and \\frac{1}{8}"), (std::vector<double>{0.5, 3000, 4.5, 0.125}));
  EXPECT_EQ(find_numbers("5/0"), (std::vector<double>{5, 0}));  // no division by zero
  EXPECT_TRUE(find_numbers("no digits").empty());
}

TEST(Reward, PlainNumber) {
  EXPECT_TRUE(is_plain_number(" 42 "));
  EXPECT_TRUE(is_plain_number("-1,234.5"));
  EXPECT_FALSE(is_plain_number("$42"));
  EXPECT_FALSE(is_plain_number("42 apples"));
  EXPECT_FALSE(is_plain_number("3/4"));
  EXPECT_FALSE(is_plain_number(""));
}

TEST(Reward, NumericEqualityTolerance) {
  EXPECT_TRUE(answers_equal(18.0, 18));
  EXPECT_TRUE(answers_equal(1e6 + 0.5, 1e6));  // 0.5 <= 1e-6 * 1e6
  EXPECT_FALSE(answers_equal(1e6 + 1.5, 1e6));
  EXPECT_TRUE(answers_equal(0.0000005, 0));  // 5e-7 <= 1e-6 * max(1, 0)
  EXPECT_FALSE(answers_equal(0.000002, 0));
}

TEST(Reward, GsmGold) {
  EXPECT_EQ(parse_gsm8k_gold("blah\n#### 1,080"), 1080);
  EXPECT_EQ(parse_gsm8k_gold("#### -3"), -3);
  EXPECT_FALSE(parse_gsm8k_gold("no hashes 5").has_value());
  EXPECT_FALSE(parse_gsm8k_gold("#### none").has_value());
}

TEST(Reward, Correctness) {
  RewardContext strict{AnswerMode::Strict, 1024}, flex{AnswerMode::Flexible, 1024};
  EXPECT_EQ(correctness_reward("<answer>18.00</answer>", 18, strict), 1.0f);
  EXPECT_EQ(correctness_reward("<answer>17</answer>", 18, strict), 0.0f);
  EXPECT_EQ(correctness_reward("the answer is 18", 18, strict), 0.0f);
  EXPECT_EQ(correctness_reward("the answer is 18", 18, flex), 1.0f);
  EXPECT_EQ(correctness_reward("<answer></answer> 18", 18, flex), 0.0f);
}

TEST(Reward, Format) {
  EXPECT_EQ(format_reward("<think>a</think><answer>1</answer>"), 1.0f);
  EXPECT_EQ(format_reward("  <think>\nx\n</think>\n <answer> 1 </answer>\n"), 1.0f);
  EXPECT_EQ(format_reward("<think>a</think> x <answer>1</answer>"), 0.0f);               // text between
  EXPECT_EQ(format_reward("hi <think>a</think><answer>1</answer>"), 0.0f);               // text before
  EXPECT_EQ(format_reward("<think>a</think><answer>1</answer> bye"), 0.0f);              // text after
  EXPECT_EQ(format_reward("<answer>1</answer><think>a</think>"), 0.0f);                  // wrong order
  EXPECT_EQ(format_reward("<think>a</think><think>b</think><answer>1</answer>"), 0.0f);  // twice
  EXPECT_EQ(format_reward("<think>a<answer>1</answer></think>"), 0.0f);                  // nested
  EXPECT_EQ(format_reward("<think>a</think>"), 0.0f);
}

TEST(Reward, Tags) {
  EXPECT_FLOAT_EQ(tags_reward("<think>a</think><answer>1</answer>"), 1.0f);
  EXPECT_FLOAT_EQ(tags_reward("<think>a</think> 1"), 0.5f);
  EXPECT_FLOAT_EQ(tags_reward("<answer>1</answer>"), 0.5f);
  EXPECT_FLOAT_EQ(tags_reward("<think><think></think>"), 0.25f);  // <think> twice: no credit
  EXPECT_FLOAT_EQ(tags_reward("</think><think>"), 0.25f);         // out of order: only the first
  EXPECT_FLOAT_EQ(tags_reward("plain text"), 0.0f);
}

TEST(Reward, Digit) {
  RewardContext strict{AnswerMode::Strict, 1024};
  EXPECT_EQ(digit_reward("<answer> 42 </answer>", strict), 1.0f);
  EXPECT_EQ(digit_reward("<answer>42 apples</answer>", strict), 0.0f);
  EXPECT_EQ(digit_reward("<answer>$42</answer>", strict), 0.0f);
  EXPECT_EQ(digit_reward("#### 1,080", strict), 1.0f);
  EXPECT_EQ(digit_reward("42", strict), 0.0f);  // strict: no span at all
}

TEST(Reward, Length) {
  RewardContext ctx{AnswerMode::Strict, 10};
  EXPECT_EQ(length_reward("0123456789", ctx), 0.0f);                  // at target
  EXPECT_FLOAT_EQ(length_reward("0123456789ab", ctx), -0.2f);         // 2 over 10
  EXPECT_FLOAT_EQ(length_reward(std::string(100, 'x'), ctx), -1.0f);  // capped
  EXPECT_EQ(length_reward("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", ctx),
            0.0f);  // 10 code points, 20 bytes
}

TEST(Reward, OverlongSoftPunishment) {
  RewardContext ctx;
  ctx.overlong_max_len = 20;  // soft zone 16..20
  ctx.overlong_buffer_len = 5;
  EXPECT_EQ(overlong_reward(15, ctx), 0.0f);
  EXPECT_FLOAT_EQ(overlong_reward(16, ctx), -0.2f);  // (15 - 16) / 5
  EXPECT_FLOAT_EQ(overlong_reward(18, ctx), -0.6f);
  EXPECT_FLOAT_EQ(overlong_reward(20, ctx), -1.0f);
  EXPECT_FLOAT_EQ(overlong_reward(21, ctx), -1.0f);
  EXPECT_EQ(overlong_reward(-1, ctx), 0.0f);  // unknown length
  TrainConfig c;                              // the defaults: L_max = max_new_tokens, L_cache = L_max / 4
  c.max_new_tokens = 40;
  c.reward_weights["overlong"] = 2.0;
  RewardSet rs = make_reward_set(c);
  RewardResult r = rs.score("no answer", 3.0, 35);  // (30 - 35) / 10
  EXPECT_FLOAT_EQ(r.by_fn.at("overlong"), -0.5f);
  EXPECT_NEAR(r.total, 2.0 * -0.5, 1e-6);
}

TEST(Reward, RewardSetCombinesWeights) {
  RewardSet set({{"correctness", 1.0}, {"format", 0.5}, {"tags", 0.2}}, RewardContext{});
  RewardResult r = set.score("<think>x</think><answer>7</answer>", 7);
  EXPECT_TRUE(r.correct);
  EXPECT_EQ(r.by_fn.at("correctness"), 1.0f);
  EXPECT_EQ(r.by_fn.at("format"), 1.0f);
  EXPECT_EQ(r.by_fn.at("tags"), 1.0f);
  EXPECT_EQ(r.by_fn.at("digit"), 1.0f);  // reported even though its weight is 0
  EXPECT_FLOAT_EQ(r.total, 1.0f + 0.5f + 0.2f);
  RewardResult w = set.score("<answer>8</answer>", 7);
  EXPECT_FALSE(w.correct);
  EXPECT_FLOAT_EQ(w.total, 0.2f * 0.5f);  // only the two answer tags
  EXPECT_THROW(RewardSet({{"corectness", 1.0}}, RewardContext{}), std::exception);
}
