// math_answer.h: gold answers, and `answer_mode: math`: is a completion's answer the gold, judged
// the way Hugging Face's math-verify (0.9) judges it, without Python or sympy.
//
// Both sides are LaTeX-ish text ("\dfrac{1}{2}", "(1, 2]", "x^2+2x+1", "\text{(B)}"). Each is
// normalised (\left/\right, \$ and $, thin spaces, ^\circ and °, \dfrac/\tfrac -> \frac, \frac14 ->
// \frac{1}{4}, \text{..} -> its content, {,} -> ,) and parsed into a small expression tree:
//   numbers (thousands separators "1,000", decimals, a trailing % = x/100), \pi, \infty, \sqrt{..},
//   \sqrt[n]{..}, \frac{..}{..}, a/b, ^, implicit products (2x, 3\sqrt{2}, x(x+1)), mixed numbers
//   (1\frac{1}{2}), one-letter variables (case-free, as math-verify lower-cases them), equations;
//   (a, b) / [a, b) / ... tuples and intervals; \{a, b\} and bare lists "a, b" (or "a and b") as sets.
// Equivalence, as math-verify's verify(gold, answer):
//   - sets: same size, every member matched once, in any order;
//   - tuples and intervals: same brackets, same length, members equal in order;
//   - an equation against a value: an answer "x = 5" gives its right side; a gold "x = 5" gives its
//     right side when the answer is not an equation; two equations: both sides equal;
//   - values: the same variables (names matter), and equal at several points for each (so
//     polynomials equal when expanded, 2\sqrt{3} = \sqrt{12}); when either side is a decimal
//     literal, both are rounded to 6 decimal places first (1/3 = 0.333333, \pi = 3.141593 but not
//     3.14159), else equal to 1e-9 relative (exact for the rationals and radicals answers hold);
//   - percentages: x% is x/100; an integer x% also equals the integer x (math-verify's 9% = 9);
//   - words: text answers ("Monday", a unit after a number is dropped: "5 \text{ cm}" = 5) compare
//     case-free; anything that does not parse compares as its normalised text.
// Deliberate departures (docs/data-and-rewards.md lists the measured disagreements): ° counts as degrees
// (math-verify leaves "30°" unparsed), "1\,000" is 1000 (math-verify reads 1*0), and a bare list
// "1, 2" never equals the interval (1, 2) (math-verify's set/interval comparison says it does).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace grpo {

// A reference answer: a number (GSM8K's, a numeric "gold") or text ("\frac{1}{2}", "(1, 2)", "B").
struct Gold {
  std::string text;              // as given: a string gold's text; a number's JSON text
  std::optional<double> number;  // its value when it is one number (strict and flexible modes need it)
  bool is_string = false;        // given as a JSON string: the reward program receives it as a string
  bool missing = false;          // the line has none (rule rewards and reward programs need none)

  Gold() = default;
  Gold(double v);  // NOLINT(google-explicit-constructor): a number is a gold
  // A string gold: `number` is set when all of the text is one number ("1,080", "-3.5", "\frac{1}{2}").
  static Gold from_text(std::string text);
};

// A gold as the reward program and samples.jsonl receive it: a string gold as its text, else the number.
nlohmann::json gold_json(const Gold& g);

// math-verify's verdict on an answer (the completion's extracted span) against the gold.
bool math_answers_equal(std::string_view answer, std::string_view gold);

}  // namespace grpo
