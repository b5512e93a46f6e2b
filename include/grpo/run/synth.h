// synth.h: a synthetic grade-school math task in GSM8K format, for the embedded tiny model and the
// CPU demo. Word problems about people and objects with small numbers, one or two operations:
//   "Mia has 3 apples. She gets 4 more. How many apples does Mia have now?"
//   answer: "3+4=7\n#### 7"       (a short worked step, then the gold after "####")
// Everything is a pure function of the seed. Train and test questions are disjoint as texts.
// For the SFT warm start, `label_noise` replaces the result (in the step and after ####) by a
// near miss (off by 1..3) with that probability: a model trained on it is only partly right,
// which leaves GRPO something to fix.
// Task "multiply" (the tool demo, issue 34): the product of two 2-digit numbers, which a tiny model
// cannot work out in its head ("What is 47 * 83?", answer "47*83=3901\n#### 3901"). Its SFT answers
// are transcripts as a rollout with the calculator writes them (synth_tool_transcript): a call
// with the right expression, one with a wrong operand, or a guess without a call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grpo {

struct SynthConfig {
  uint64_t seed = 1;
  int max_number = 9;        // operands in [0, max_number]
  int max_ops = 1;           // 1: a+b or a-b; 2: also a+b-c
  double label_noise = 0.0;  // probability of a near-miss result in the answer text
  bool multiply = false;     // the tool demo's task (above) instead of the word problems
};

struct SynthProblem {
  std::string question;
  std::string answer;  // worked step + "#### N"
  int gold = 0;        // the true result (also when the answer text was made noisy)
  uint64_t index = 0;  // position in the stream: synth_problem(cfg, index) regenerates it
  int a = 0, b = 0;    // multiply: the factors
};

// The multiply task's SFT answer: with probability `good` a calculator call with the right
// expression then "#### <result>", with probability `bad` a call with one factor off by 1..9
// (the answer then follows the wrong result), otherwise a guess without a call (off by 1..99,
// or right with probability 1/10). The text after each call is the built-in template's tool_response_text, as a rollout
// appends it.
std::string synth_tool_transcript(const SynthProblem& p, uint64_t seed, double good, double bad);

// Problem number `index` of the stream (pure function of config and index).
SynthProblem synth_problem(const SynthConfig& cfg, uint64_t index);
// n_train + n_test distinct problems; no test question text appears in train.
void synth_split(const SynthConfig& cfg, size_t n_train, size_t n_test, std::vector<SynthProblem>* train, std::vector<SynthProblem>* test);
std::string synth_jsonl(const std::vector<SynthProblem>& problems);  // {"question", "answer"} lines

}  // namespace grpo
