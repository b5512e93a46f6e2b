// evaluation.h: how well the policy answers held-out questions, before, during and after training
// (and in grpo_eval): greedy pass@1 with strict and flexible answer extraction (answer_mode math:
// math-verify's equivalence, strict without the last-number fallback), and optionally the
// accuracy of sampled completions at eval_temperature. The draws are keyed by (seed, question), so
// every evaluation of a run sees the same ones and several ranks give one process's result.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/engine/dataset.h"
#include "grpo/engine/distributed.h"
#include "grpo/engine/tool_server.h"
#include "grpo/model/causal_lm.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Evaluation: greedy pass@1 (strict and flexible extraction) and optional sampled accuracy

struct EvalSample {
  std::string question;
  Gold gold;  // its text as the dataset writes it ("1,080", not 1080.0)
  std::string completion;
  bool correct_strict = false, correct_flexible = false;
  std::string transcript;  // with tools: the whole exchange (completion is its final turn)
  int64_t tool_calls = 0;
  bool tool_useful = false;
};

struct EvalResult {
  double greedy_strict = 0, greedy_flexible = 0;
  double sampled = -1;  // -1: not measured (eval_samples = 0)
  // With tools, of the greedy answers: calls per answer, and the share with a call whose result
  // was the gold (tool_use); -1 without tools.
  double tool_calls_mean = -1, tool_useful_frac = -1;
  int64_t n = 0;
  double seconds = 0;
  std::vector<EvalSample> samples;  // the greedy answers, in dataset order
};

// With several ranks (dist), each evaluates a contiguous share of the questions and every rank
// gets the gathered result (the same draws as one process: keyed by question index).
// With `tools`, the answers may call them (the tools' system turn in every prompt).
EvalResult evaluate(CausalLM& model, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& data, const TrainConfig& cfg,
                    int64_t batch_size = 16, Dist* dist = nullptr, ToolServer* tools = nullptr,
                    bool progress = false);  // progress: a line on stderr every 10% of the questions

// ---------------------------------------------------------------------------------------------
// Results on disk (summary.json's before/after, answers_*.jsonl; report.h reads them back)

nlohmann::json eval_json(const EvalResult& e);  // the counts, without the answers
// Every evaluated question's greedy answer, one JSON line each, for the report's examples.
void write_answers(const std::string& path, const EvalResult& e);

}  // namespace grpo
