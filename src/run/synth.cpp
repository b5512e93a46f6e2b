// synth.cpp: see synth.h.
#include "grpo/run/synth.h"

#include <nlohmann/json.hpp>
#include <unordered_set>

#include "grpo/base/common.h"
#include "grpo/chat/tool_calls.h"

namespace grpo {

namespace {

struct Draw {
  uint64_t state;
  uint64_t below(uint64_t n) {
    state = splitmix64(state);
    return state % n;
  }
  double unit() {
    state = splitmix64(state);
    return (state >> 11) * 0x1.0p-53;
  }
};

const char* const kNames[] = {"Mia", "Leo", "Ava", "Sam", "Zoe", "Max", "Ivy", "Ben", "Eva", "Tom", "Amy", "Raj"};
const bool kShe[] = {true, false, true, false, true, false, true, false, true, false, true, false};
const char* const kObjects[] = {"apples", "pens", "cards", "books", "shells", "coins", "stamps", "marbles", "cookies", "rocks"};

}  // namespace

namespace {

const char* const kMultiplyForms[] = {"What is {a} * {b}?", "{name} packs {b} {obj} into each of {a} boxes. How many {obj} is that?"};

SynthProblem multiply_problem(Draw& d, uint64_t index) {
  SynthProblem p;
  p.index = index;
  p.a = 10 + static_cast<int>(d.below(90));
  p.b = 10 + static_cast<int>(d.below(90));
  std::string q = kMultiplyForms[d.below(2)];
  auto put = [&](const std::string& key, const std::string& v) {
    for (size_t at = q.find(key); at != std::string::npos; at = q.find(key)) q.replace(at, key.size(), v);
  };
  put("{a}", std::to_string(p.a));
  put("{b}", std::to_string(p.b));
  put("{name}", kNames[d.below(12)]);
  put("{obj}", kObjects[d.below(10)]);
  p.question = q;
  p.gold = p.a * p.b;
  p.answer = std::to_string(p.a) + "*" + std::to_string(p.b) + "=" + std::to_string(p.gold) + "\n#### " + std::to_string(p.gold);
  return p;
}

}  // namespace

std::string synth_tool_transcript(const SynthProblem& p, uint64_t seed, double good, double bad) {
  Draw d{splitmix64(seed) ^ splitmix64(p.index + 0x7001)};
  const double u = d.unit();
  if (u < good + bad) {
    int a = p.a, b = p.b;
    if (u >= good) (d.below(2) ? a : b) += (d.below(2) ? 1 : -1) * static_cast<int>(1 + d.below(9));
    ToolCall call{"calculator", ordered_json::object({{"expression", std::to_string(a) + " * " + std::to_string(b)}}), ""};
    const std::string result = std::to_string(a * b);
    const std::string results = ChatTemplate().tool_response_text({result}, tools_json({calculator_tool()}), "<|im_end|>").s;
    return tool_call_text(call) + "<|im_end|>" + results + "#### " + result;
  }
  int guess = p.gold;
  if (d.below(10) != 0) guess += (d.below(2) ? 1 : -1) * static_cast<int>(1 + d.below(99));
  return std::to_string(p.a) + "*" + std::to_string(p.b) + "=" + std::to_string(guess) + "\n#### " + std::to_string(guess);
}

SynthProblem synth_problem(const SynthConfig& cfg, uint64_t index) {
  Draw d{splitmix64(cfg.seed) ^ splitmix64(index + 0x51ED)};
  if (cfg.multiply) return multiply_problem(d, index);
  const int who = static_cast<int>(d.below(12));
  const std::string name = kNames[who], obj = kObjects[d.below(10)];
  const std::string pron = kShe[who] ? "She" : "He";
  const int N = cfg.max_number + 1;
  const int kind = static_cast<int>(d.below(cfg.max_ops >= 2 ? 5 : 4));
  int a = static_cast<int>(d.below(N)), b = static_cast<int>(d.below(N));
  SynthProblem p;
  p.index = index;
  std::string step;
  switch (kind) {
    case 0:
      p.question = name + " has " + std::to_string(a) + " " + obj + ". " + pron + " gets " + std::to_string(b) + " more. How many " + obj +
                   " does " + name + " have now?";
      p.gold = a + b;
      step = std::to_string(a) + "+" + std::to_string(b);
      break;
    case 1:
      p.question = "There are " + std::to_string(a) + " " + obj + " in a box and " + std::to_string(b) + " on the table. How many " + obj +
                   " are there in all?";
      p.gold = a + b;
      step = std::to_string(a) + "+" + std::to_string(b);
      break;
    case 2:
      if (a < b) std::swap(a, b);
      p.question = name + " had " + std::to_string(a) + " " + obj + " and gave " + std::to_string(b) + " away. How many " + obj + " does " +
                   name + " have left?";
      p.gold = a - b;
      step = std::to_string(a) + "-" + std::to_string(b);
      break;
    case 3:
      if (a < b) std::swap(a, b);
      p.question = name + " made " + std::to_string(a) + " " + obj + " and lost " + std::to_string(b) + ". How many " + obj + " are left?";
      p.gold = a - b;
      step = std::to_string(a) + "-" + std::to_string(b);
      break;
    default: {
      int c = static_cast<int>(d.below(static_cast<uint64_t>(a + b + 1)));
      p.question = name + " has " + std::to_string(a) + " " + obj + ", buys " + std::to_string(b) + " more and gives " + std::to_string(c) +
                   " away. How many " + obj + " are left?";
      p.gold = a + b - c;
      step = std::to_string(a) + "+" + std::to_string(b) + "-" + std::to_string(c);
    }
  }
  int shown = p.gold;
  if (cfg.label_noise > 0 && d.unit() < cfg.label_noise) {
    int off = 1 + static_cast<int>(d.below(3));
    shown = (d.below(2) == 0 && p.gold - off >= 0) ? p.gold - off : p.gold + off;
  }
  p.answer = step + "=" + std::to_string(shown) + "\n#### " + std::to_string(shown);
  return p;
}

void synth_split(const SynthConfig& cfg, size_t n_train, size_t n_test, std::vector<SynthProblem>* train, std::vector<SynthProblem>* test) {
  std::unordered_set<std::string> seen;
  uint64_t index = 0;
  const size_t limit = 200 * (n_train + n_test) + 1000;  // the question space is finite
  auto fill = [&](std::vector<SynthProblem>* out, size_t n) {
    while (out->size() < n && index < limit) {
      SynthProblem p = synth_problem(cfg, index++);
      if (seen.insert(p.question).second) out->push_back(std::move(p));
    }
  };
  fill(test, n_test);  // test first: train never repeats a test question
  fill(train, n_train);
}

std::string synth_jsonl(const std::vector<SynthProblem>& problems) {
  std::string s;
  for (const auto& p : problems) s += json_text(nlohmann::json({{"question", p.question}, {"answer", p.answer}})) + "\n";
  return s;
}

}  // namespace grpo
