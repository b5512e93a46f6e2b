#!/usr/bin/env python3
"""Interop 8: answer_mode math against Hugging Face's math-verify (the referee, pinned in the venv).
A corpus written here, of golds of every kind the mode reads (integers, decimals, thousands
separators, fractions in each spelling, radicals, pi, percentages, degrees, dollars, text, \\left
and \\right, tuples, intervals, lists and sets of roots, multiple-choice letters, polynomials,
equations), each with completions that give it right in several forms and wrong in several, in
the places a completion puts an answer (a \\boxed{} after reasoning, after a think block, a "####"
line, a last number). Every (gold, completion) pair is scored by
  grpo_reward --mode math          (ours: {"completion", "gold"} lines on stdin)
  verify(parse("$" + gold + "$"), parse(completion))   (math-verify's documented use)
Agreement must be at least 97%; every disagreement is printed (docs/rewards.md lists them with the
reason).
  test_math_verify.py BUILD_DIR
"""
import json
import logging
import sys

from math_verify import parse, verify

from common import check, finish, tool

logging.disable(logging.WARNING)  # math-verify warns on every unparsable candidate

# gold -> (forms that equal it, forms that do not)
CASES = [
    ("72", ["72", "72.0", "\\$72", "72 \\text{ clips}", "\\dfrac{144}{2}"], ["71", "7.2", "-72", "720"]),
    ("1080", ["1080", "1,080", "1{,}080", "1080.00"], ["108", "1,800", "10.80"]),
    ("-3", ["-3", "-3.0", "\\frac{-6}{2}", "-\\frac{9}{3}"], ["3", "-\\frac{1}{3}", "-30"]),
    ("1000000", ["1,000,000", "1000000", "10^6", "10^{6}"], ["100,000", "10^5"]),
    ("0.5", ["0.5", "\\frac{1}{2}", "\\dfrac12", ".5", "1/2", "0.50"], ["0.05", "\\frac{1}{5}", "2"]),
    ("2.25", ["2.25", "\\frac{9}{4}", "2\\frac{1}{4}", "\\tfrac{9}{4}"], ["2.5", "\\frac{4}{9}", "225"]),
    ("\\frac{1}{2}", ["\\frac{1}{2}", "\\frac12", "0.5", "\\dfrac{2}{4}", "\\frac{3}{6}"], ["\\frac{1}{3}", "2", "0.51"]),
    ("\\dfrac{3}{4}", ["\\frac{3}{4}", "0.75", "3/4", "\\tfrac34", "\\frac{6}{8}"], ["\\frac{4}{3}", "0.7", "\\frac{3}{5}"]),
    ("-\\frac{5}{2}", ["-\\frac{5}{2}", "-2.5", "\\frac{-5}{2}", "-2\\frac{1}{2}"], ["\\frac{5}{2}", "-\\frac{2}{5}", "-5"]),
    ("\\frac{1}{3}", ["\\frac{1}{3}", "\\frac{2}{6}", "0.333333", "1/3"], ["0.33", "0.3333", "3"]),
    ("\\frac14", ["\\frac{1}{4}", "0.25", "\\dfrac{1}{4}", "25\\%"], ["4", "\\frac{1}{5}", "0.4"]),
    ("2\\sqrt{3}", ["2\\sqrt{3}", "\\sqrt{12}", "2 \\sqrt 3", "\\sqrt{3} \\cdot 2"], ["\\sqrt{6}", "3\\sqrt{2}", "2\\sqrt{2}"]),
    ("\\frac{\\sqrt{2}}{2}", ["\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "\\frac{1}{2}\\sqrt{2}", "\\sqrt{\\frac{1}{2}}"],
     ["\\sqrt{2}", "\\frac{\\sqrt{3}}{2}", "0.7"]),
    ("\\sqrt[3]{8}", ["2", "\\sqrt[3]{8}", "8^{1/3}"], ["\\sqrt{8}", "3", "8"]),
    ("5\\sqrt{2}", ["5\\sqrt{2}", "\\sqrt{50}", "\\sqrt{2}\\cdot 5"], ["2\\sqrt{5}", "\\sqrt{10}", "7.07"]),
    ("\\frac{\\pi}{2}", ["\\frac{\\pi}{2}", "\\pi/2", "\\frac{1}{2}\\pi", "1.570796"], ["\\pi", "1.57", "\\frac{\\pi}{3}"]),
    ("2\\pi", ["2\\pi", "2 \\pi", "\\pi \\cdot 2", "\\frac{4\\pi}{2}", "6.283185"], ["\\pi", "4\\pi", "6.28"]),
    ("\\frac{3\\pi}{4}", ["\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi", "0.75\\pi"], ["\\frac{4\\pi}{3}", "\\frac{3}{4}", "\\frac{\\pi}{4}"]),
    ("25\\%", ["25\\%", "25", "0.25", "\\frac{1}{4}"], ["26\\%", "2.5", "0.025"]),
    ("12.5\\%", ["12.5\\%", "0.125", "\\frac{1}{8}"], ["12\\%", "0.13", "1.25"]),
    ("30^\\circ", ["30^\\circ", "30^{\\circ}", "30", "30.0"], ["60^\\circ", "3", "45"]),
    ("\\$18", ["\\$18", "18", "18.00", "\\$18.00"], ["\\$17", "1.8", "19"]),
    ("\\$4.50", ["\\$4.50", "4.5", "4.50", "\\frac{9}{2}"], ["\\$4.05", "45", "4"]),
    ("5\\text{ cm}", ["5", "5\\text{ cm}", "5 \\text{cm}", "5.0"], ["6", "50", "0.5"]),
    ("\\text{Monday}", ["\\text{Monday}", "\\text{monday}"], ["\\text{Tuesday}", "\\text{Sunday}"]),
    ("\\left(\\frac{1}{2}, 3\\right)", ["\\left(\\frac{1}{2}, 3\\right)", "(0.5, 3)", "\\left( \\frac12,3 \\right)"],
     ["(3, \\frac{1}{2})", "[\\frac{1}{2}, 3]", "(0.5, 4)"]),
    ("(3, -1)", ["(3, -1)", "(3,-1)", "\\left(3, -1\\right)", "(\\frac{6}{2}, -1)"], ["(-1, 3)", "(3, 1)", "[3, -1]"]),
    ("(1, 2, 3)", ["(1, 2, 3)", "(1,2,3)", "\\left(1, 2, 3\\right)"], ["(3, 2, 1)", "(1, 2)", "(1, 2, 4)"]),
    ("[0, 1)", ["[0, 1)", "[0,1)", "\\left[0, 1\\right)"], ["(0, 1)", "[0, 1]", "(0, 1]"]),
    ("(-\\infty, 2]", ["(-\\infty, 2]", "(-\\infty,2]", "\\left(-\\infty, 2\\right]"], ["(-\\infty, 2)", "(2, \\infty)", "[2, \\infty)"]),
    ("[2, 5]", ["[2, 5]", "[2,5]", "\\left[2, 5\\right]"], ["(2, 5)", "[2, 5)", "[5, 2]"]),
    ("1, 2", ["1, 2", "2, 1", "\\{1, 2\\}", "1 \\text{ and } 2"], ["1", "1, 3", "1, 2, 3"]),
    ("-3, 4", ["-3, 4", "4, -3", "4,-3"], ["3, -4", "-3", "3, 4"]),
    ("\\{1, 4, 9\\}", ["\\{1, 4, 9\\}", "9, 4, 1", "\\{9,1,4\\}"], ["\\{1, 4\\}", "1, 4, 8", "\\{1, 4, 9, 16\\}"]),
    ("B", ["B", "\\text{B}", "\\text{(B)}", "\\textbf{B}"], ["A", "C", "\\text{(D)}"]),
    ("\\text{(C)}", ["C", "\\text{C}", "\\text{(C)}", "(C)"], ["B", "\\text{(E)}", "D"]),
    ("x^2+2x+1", ["x^2+2x+1", "(x+1)^2", "1+2x+x^2", "x^{2} + 2 x + 1"], ["x^2+1", "(x-1)^2", "x^2+2x"]),
    ("(x-1)(x+1)", ["x^2-1", "(x+1)(x-1)", "-1+x^2"], ["x^2+1", "(x-1)^2", "x-1"]),
    ("3x^2-5x", ["3x^2-5x", "x(3x-5)", "-5x+3x^2"], ["3x^2+5x", "5x-3x^2", "3x-5"]),
    ("x^3-1", ["x^3-1", "(x-1)(x^2+x+1)", "-1+x^3"], ["(x-1)^3", "x^3+1", "x^2-1"]),
    ("2y+3", ["2y+3", "3+2y", "y+y+3"], ["2x+3", "2y-3", "3y+2"]),
    ("x=5", ["x=5", "5", "x = 5", "5.0"], ["x=4", "4", "y=5"]),
    ("y=2x+1", ["y=2x+1", "y=1+2x", "2x+1"], ["y=2x-1", "y=x+1", "x=2y+1"]),
    ("\\frac{x}{2}", ["\\frac{x}{2}", "0.5x", "\\frac{1}{2}x", "x/2"], ["2x", "\\frac{2}{x}", "\\frac{x}{3}"]),
]

# Where a completion puts its answer: math-verify and we both read these.
SHAPES = [
    "We add the parts, 3 + 4 = 7, and check again.\nSo the answer is $\\boxed{{{f}}}$.",
    "<think>\nFirst try: 17. Then 4.\n</think>\nThe final answer is $\\boxed{{{f}}}$",
    "Step 1: compute 12 and 8.\nStep 2: simplify.\n\nTherefore, the answer is $\\boxed{{{f}}}$.",
]
# Plain numbers also stand after "####", and as the last number of a sentence.
NUMBER_SHAPES = ["She had 48 and then 24 more.\n#### {f}", "So she has 48 + 24 in all: the answer is {f}."]


def pairs():
    for gold, right, wrong in CASES:
        for forms, label in ((right, True), (wrong, False)):
            for form in forms:
                for shape in SHAPES:
                    yield gold, shape.format(f=form), label
                if all(c in "0123456789.,-" for c in form):
                    for shape in NUMBER_SHAPES:
                        yield gold, shape.format(f=form), label


def main():
    corpus = list(pairs())
    lines = "".join(json.dumps({"completion": c, "gold": g}) + "\n" for g, c, _ in corpus)
    ours = [json.loads(l)["correct"] for l in tool("grpo_reward", "--mode", "math", stdin=lines).splitlines()]
    check(len(ours) == len(corpus), f"grpo_reward scored {len(ours)} of {len(corpus)} pairs")
    agree, intended, disagreements = 0, 0, []
    for (gold, completion, label), mine in zip(corpus, ours):
        theirs = bool(verify(parse("$" + gold + "$"), parse(completion)))
        agree += mine == theirs
        intended += mine == label
        if mine != theirs:
            disagreements.append((gold, completion, mine, theirs))
    for gold, completion, mine, theirs in disagreements:
        print(f"disagree: gold {gold!r}: ours {mine}, math-verify {theirs}: {completion!r}")
    rate = agree / len(corpus)
    print(f"{len(corpus)} pairs from {len(CASES)} golds; agreement with math-verify {agree}/{len(corpus)} = {100 * rate:.1f}%; "
          f"ours as the corpus intends {intended}/{len(corpus)}")
    check(len(corpus) >= 300, f"the corpus has {len(corpus)} pairs, fewer than 300")
    check(rate >= 0.97, f"agreement {100 * rate:.1f}% is under 97%")
    finish()


if __name__ == "__main__":
    sys.exit(main())
