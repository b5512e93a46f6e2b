// Tests for math_answer.h: answer_mode math's equivalence, one hand-checked group per rule (the
// verdicts are math-verify 0.9's on the same pairs, except the departures the header names), then
// extraction and scoring in math mode, and string golds.
#include <gtest/gtest.h>

#include "grpo/rewards/math_answer.h"
#include "grpo/rewards/reward.h"

using namespace grpo;

namespace {

struct Pair {
  const char* answer;
  const char* gold;
  bool equal;
};

void expect_pairs(const std::vector<Pair>& pairs) {
  for (const auto& p : pairs) EXPECT_EQ(math_answers_equal(p.answer, p.gold), p.equal) << "answer " << p.answer << "  gold " << p.gold;
}

}  // namespace

TEST(MathAnswer, IntegersDecimalsAndThousands) {
  expect_pairs({{"72", "72", true},
                {"72.0", "72", true},
                {"1,080", "1080", true},
                {"1{,}080", "1080", true},
                {"1\\,080", "1080", true},  // departure: math-verify reads 1*080
                {"1,000,000", "1000000", true},
                {"-3", "-3", true},
                {"\xE2\x88\x92"
                 "3",
                 "-3", true},  // U+2212
                {"71", "72", false},
                {"7.2", "72", false},
                {"-72", "72", false},
                {".5", "0.5", true},
                {"10^6", "1000000", true},
                {"3.", "3", true}});
}

TEST(MathAnswer, FractionsInEverySpelling) {
  expect_pairs({{"\\frac{1}{2}", "0.5", true},
                {"\\dfrac{1}{2}", "\\frac12", true},
                {"\\tfrac34", "0.75", true},
                {"\\frac14", "\\frac{1}{4}", true},
                {"3/4", "\\dfrac{3}{4}", true},
                {"\\frac{6}{8}", "\\frac{3}{4}", true},
                {"\\frac{-5}{2}", "-\\frac{5}{2}", true},
                {"-2\\frac{1}{2}", "-2.5", true},  // a mixed number
                {"2\\frac{1}{4}", "\\frac{9}{4}", true},
                {"\\frac{4}{3}", "\\frac{3}{4}", false},
                {"\\frac{1}{3}", "0.333333", true},  // a decimal: both rounded to 6 places
                {"0.3333", "\\frac{1}{3}", false},
                {"0.33", "\\frac{1}{3}", false}});
}

TEST(MathAnswer, RadicalsAndPi) {
  expect_pairs({{"\\sqrt{12}", "2\\sqrt{3}", true},
                {"2 \\sqrt 3", "2\\sqrt{3}", true},
                {"\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", true},
                {"\\sqrt[3]{8}", "2", true},
                {"8^{1/3}", "\\sqrt[3]{8}", true},
                {"\\sqrt{6}", "2\\sqrt{3}", false},
                {"\\pi/2", "\\frac{\\pi}{2}", true},
                {"\\frac{3}{4}\\pi", "\\frac{3\\pi}{4}", true},
                {"1.570796", "\\frac{\\pi}{2}", true},
                {"1.57", "\\frac{\\pi}{2}", false},
                {"3.14159", "\\pi", false},  // rounds to 3.141590, pi to 3.141593
                {"\\pi", "2\\pi", false}});
}

TEST(MathAnswer, PercentDegreesDollarsText) {
  expect_pairs({{"25\\%", "0.25", true},
                {"25", "25\\%", true},  // an integer percentage also equals the integer (math-verify's 9% = 9)
                {"\\frac14", "25\\%", true},
                {"12.5", "12.5\\%", false},  // not for a decimal one: 12.5% is 0.125
                {"0.125", "12.5\\%", true},
                {"30^{\\circ}", "30^\\circ", true},
                {"30", "30^\\circ", true},
                {"30\xC2\xB0", "30", true},  // departure: math-verify leaves "30°" unparsed
                {"\\$18.00", "18", true},
                {"$\\$4.50$", "\\frac{9}{2}", true},
                {"5 \\text{ cm}", "5", true},
                {"5 \\text{cm}", "5\\text{ cm}", true},
                {"\\text{monday}", "\\text{Monday}", true},
                {"\\text{Tuesday}", "\\text{Monday}", false},
                {"\\left( \\frac12,3 \\right)", "(0.5, 3)", true}});
}

TEST(MathAnswer, TuplesAndIntervalsKeepOrderAndBrackets) {
  expect_pairs({{"(3,-1)", "(3, -1)", true},
                {"(-1, 3)", "(3, -1)", false},
                {"(1,2,3)", "(1, 2, 3)", true},
                {"(3,2,1)", "(1, 2, 3)", false},
                {"(1, 2)", "(1, 2, 3)", false},
                {"[0,1)", "[0, 1)", true},
                {"(0, 1)", "[0, 1)", false},
                {"[0, 1]", "[0, 1)", false},
                {"(-\\infty,2]", "(-\\infty, 2]", true},
                {"(2, \\infty)", "(-\\infty, 2]", false},
                {"[3, -1]", "(3, -1)", false}});  // departure: math-verify ignores a non-interval's brackets
}

TEST(MathAnswer, ListsAndSetsOfRootsInAnyOrder) {
  expect_pairs({{"2, 1", "1, 2", true},
                {"\\{1, 2\\}", "1, 2", true},
                {"1 \\text{ and } 2", "1, 2", true},
                {"3 and 2", "2, 3", true},
                {"4,-3", "-3, 4", true},
                {"1", "1, 2", false},
                {"1, 2, 3", "1, 2", false},
                {"\\{9,1,4\\}", "\\{1, 4, 9\\}", true},
                {"(1, 2)", "1, 2", false}});  // departure: a list is not the interval (1, 2)
}

TEST(MathAnswer, MultipleChoiceLetters) {
  expect_pairs({{"B", "B", true},
                {"\\text{(B)}", "B", true},
                {"\\textbf{B}", "B", true},
                {"b", "B", true},
                {"(C)", "\\text{(C)}", true},
                {"C", "B", false},
                {"\\text{(D)}", "\\text{(C)}", false}});
}

TEST(MathAnswer, PolynomialsEqualWhenExpanded) {
  expect_pairs({{"(x+1)^2", "x^2+2x+1", true},
                {"x^{2} + 2 x + 1", "x^2+2x+1", true},
                {"X^2+2X+1", "x^2+2x+1", true},  // variables are case-free, as math-verify lower-cases them
                {"(x-1)^2", "x^2+2x+1", false},
                {"x(3x-5)", "3x^2-5x", true},
                {"(x-1)(x^2+x+1)", "x^3-1", true},
                {"(x-1)^3", "x^3-1", false},
                {"0.5x", "\\frac{x}{2}", true},
                {"2x+3", "2y+3", false},  // variables' names matter
                {"y+y+3", "2y+3", true}});
}

TEST(MathAnswer, Equations) {
  expect_pairs({{"x = 5", "5", true},   // an answer's equation gives its right side
                {"5", "x=5", true},     // a gold assignment gives its right side
                {"y=5", "x=5", false},  // two equations: both sides
                {"y=1+2x", "y=2x+1", true},
                {"2x+1", "y=2x+1", true},
                {"x=2y+1", "y=2x+1", false}});
}

TEST(MathAnswer, UnparsableTextComparesAsText) {
  expect_pairs({{"12:30", "12:30", true}, {"12:31", "12:30", false}, {"", "", false}, {"((((", "((((", true}});
  // Nesting past the parser's limit is refused, never a crash: it falls back to the text.
  const std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_TRUE(math_answers_equal(deep, deep));
  EXPECT_FALSE(math_answers_equal(deep, "1"));
}

// ---------------------------------------------------------------------------------------------
// Extraction and scoring in math mode

TEST(MathAnswer, ExtractionOrderInMathMode) {
  auto span = [](const char* c, bool last_number = true) {
    ExtractedAnswer a = extract_answer(c, AnswerMode::Math, last_number);
    return std::string(answer_source_name(a.source)) + ":" + a.span;
  };
  EXPECT_EQ(span("so \\boxed{\\frac{1}{\\sqrt{2}}} and 7"), "boxed:\\frac{1}{\\sqrt{2}}");  // nested braces
  EXPECT_EQ(span("<think>\\boxed{5}</think> so \\boxed{3}"), "boxed:3");
  EXPECT_EQ(span("<think>it is \\boxed{5}</think> I give up"), "none:");   // nothing after the think block but words
  EXPECT_EQ(span("<answer>\\frac12</answer> and \\boxed{2}"), "boxed:2");  // boxed before the tag (MATH's convention)
  EXPECT_EQ(span("<answer>(1, 2)</answer>"), "answer_tag:(1, 2)");
  EXPECT_EQ(span("work\n#### 1,080\nmore 3"), "hashes: 1,080");
  EXPECT_EQ(span("so it is 48 + 24 = 72."), "last_number:72");
  EXPECT_EQ(span("the answer is .5"), "last_number:.5");
  EXPECT_EQ(span("so it is 72", /*last_number=*/false), "none:");
  EXPECT_EQ(span("an unclosed \\boxed{3 and 4"), "last_number:4");
}

TEST(MathAnswer, CorrectnessAgainstStringAndNumberGolds) {
  RewardContext math{AnswerMode::Math};
  EXPECT_EQ(correctness_reward("So $\\boxed{\\dfrac{\\sqrt2}{2}}$.", Gold::from_text("\\frac{1}{\\sqrt{2}}"), math), 1.0f);
  EXPECT_EQ(correctness_reward("So $\\boxed{\\frac{\\sqrt3}{2}}$.", Gold::from_text("\\frac{1}{\\sqrt{2}}"), math), 0.0f);
  EXPECT_EQ(correctness_reward("#### 1,080", Gold(1080), math), 1.0f);  // GSM8K's numeric golds too
  EXPECT_EQ(correctness_reward("<answer>72</answer>", Gold(72), math), 1.0f);
  // Strict and flexible compare numbers: a string gold without one never scores.
  EXPECT_EQ(correctness_reward("\\boxed{\\frac{\\pi}{2}}", Gold::from_text("\\frac{\\pi}{2}"), RewardContext{}), 0.0f);
  EXPECT_EQ(correctness_reward("<answer>1080</answer>", Gold::from_text("1,080"), RewardContext{}), 1.0f);
}

TEST(MathAnswer, GoldsKeepTheirText) {
  const Gold n(72);
  EXPECT_EQ(n.number, 72);
  EXPECT_FALSE(n.is_string);
  EXPECT_EQ(gold_json(n), nlohmann::json(72.0));
  const Gold s = Gold::from_text("1,080");
  EXPECT_EQ(s.number, 1080);
  EXPECT_EQ(gold_json(s), nlohmann::json("1,080"));  // the reward program gets it as given
  EXPECT_FALSE(Gold::from_text("(1, 2)").number);
  EXPECT_FALSE(Gold::from_text("\\frac{\\pi}{2}").number);
}
