// evaluation.cpp: held-out accuracy; see evaluation.h.
#include "grpo/run/evaluation.h"

#include <chrono>
#include <cstdio>

#include "grpo/base/common.h"
#include "grpo/engine/sampler.h"
#include "grpo/rewards/reward.h"

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Evaluation

namespace {

SamplingParams eval_params(const TrainConfig& cfg, const Tokenizer& tok, const SpecialIds& special, int64_t n_vocab) {
  SamplingParams sp;
  sp.max_new_tokens = cfg.max_new_tokens;
  sp.decode = cfg.decode_mode;
  apply_model_limits(sp, tok, special, n_vocab);
  sp.seed = static_cast<uint64_t>(cfg.seed) + 0x5EED;  // the same draws before and after training
  return sp;
}

// Every rank's greedy answers, in question order.
void gather_samples(Dist& dist, std::vector<EvalSample>& samples) {
  json mine = json::array();
  for (const auto& e : samples)
    mine.push_back({e.question, e.gold.text, e.gold.number ? json(*e.gold.number) : json(nullptr), e.gold.is_string, e.completion,
                    e.correct_strict, e.correct_flexible, e.transcript, e.tool_calls, e.tool_useful});
  samples.clear();
  for (const auto& text : dist.all_gather(json_text(mine)))
    for (const auto& j : json::parse(text)) {
      EvalSample e{j[0].get<std::string>(), Gold{}, j[4].get<std::string>(), j[5].get<bool>(), j[6].get<bool>()};
      e.gold.text = j[1].get<std::string>();
      e.gold.is_string = j[3].get<bool>();
      if (!j[2].is_null()) e.gold.number = j[2].get<double>();
      e.transcript = j[7].get<std::string>();
      e.tool_calls = j[8].get<int64_t>();
      e.tool_useful = j[9].get<bool>();
      samples.push_back(std::move(e));
    }
}

}  // namespace

EvalResult evaluate(CausalLM& model, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& data, const TrainConfig& cfg,
                    int64_t batch_size, Dist* dist, ToolServer* tools, bool progress) {
  auto t0 = std::chrono::steady_clock::now();
  EvalResult res;
  const int64_t n = cfg.eval_limit > 0 ? std::min<int64_t>(cfg.eval_limit, data.size()) : data.size();
  res.n = n;
  const int64_t W = dist ? dist->world_size() : 1, R = dist ? dist->rank() : 0;
  const int64_t lo = n * R / W, hi = n * (R + 1) / W;  // this rank's questions
  SamplingParams greedy = eval_params(cfg, tok, special, model->cfg.n_vocab);
  greedy.greedy = true;
  SamplingParams sampled = eval_params(cfg, tok, special, model->cfg.n_vocab);
  sampled.temperature = cfg.eval_temperature;
  greedy.decoder = sampled.decoder = std::make_shared<StaticDecodeState>();  // one set of buffers/graphs for every batch
  const AnswerMode mode = cfg.answer_mode;
  const bool math = mode == AnswerMode::Math;
  RewardContext strict{math ? AnswerMode::Math : AnswerMode::Strict, cfg.length_target};
  strict.math_last_number = false;
  const RewardContext flexible{math ? AnswerMode::Math : AnswerMode::Flexible, cfg.length_target};
  int64_t ok_strict = 0, ok_flex = 0, ok_sampled = 0, tool_calls = 0, tool_useful = 0;
  static const std::vector<ToolSpec> no_tools;
  const std::vector<ToolSpec>& specs = tools ? tools->tools() : no_tools;
  for (int64_t s = lo; s < hi; s += batch_size) {
    const int64_t b = std::min(batch_size, hi - s);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<uint64_t> keys;
    for (int64_t i = s; i < s + b; ++i) {
      prompts.push_back(tokenize_example(tok, special.chat, cfg.system_prompt, data[i], cfg.max_prompt_tokens, specs).ids);
      keys.push_back(static_cast<uint64_t>(i));
    }
    if (tools) tools->attach(greedy, tok, special.chat, b, 0);
    const std::vector<Transcript> answers = read_answers(generate(model, prompts, 1, greedy, keys), tok, tools);
    for (int64_t i = 0; i < b; ++i) {
      EvalSample e;
      e.question = data[s + i].question;
      e.gold = data[s + i].gold;
      e.completion = answers[i].final_text;
      if (tools) {
        const ToolUse use = tool_use(tools->turns()[i], e.gold);
        e.transcript = answers[i].text;
        e.tool_calls = use.calls;
        e.tool_useful = use.useful;
        tool_calls += use.calls;
        tool_useful += use.useful;
      }
      e.correct_strict = correctness_reward(e.completion, e.gold, strict) > 0;
      e.correct_flexible = correctness_reward(e.completion, e.gold, flexible) > 0;
      ok_strict += e.correct_strict;
      ok_flex += e.correct_flexible;
      res.samples.push_back(std::move(e));
    }
    if (cfg.eval_samples > 0) {
      if (tools) tools->attach(sampled, tok, special.chat, b * cfg.eval_samples, 0);
      const std::vector<Transcript> draws = read_answers(generate(model, prompts, cfg.eval_samples, sampled, keys), tok, tools);
      for (int64_t k = 0; k < b * cfg.eval_samples; ++k)
        ok_sampled += correctness_reward(draws[k].final_text, data[s + k / cfg.eval_samples].gold, {mode, cfg.length_target}) > 0;
    }
    const int64_t done = s + b - lo, tenth = std::max<int64_t>(1, (hi - lo) / 10);
    if (progress && (done / tenth != (done - b) / tenth || s + b == hi))
      std::fprintf(stderr, "  evaluated %lld of %lld questions (%.1f s)\n", (long long)done, (long long)(hi - lo),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (dist && dist->active()) {  // every rank's counts and answers, in question order
    auto counts = dist->all_reduce({double(ok_strict), double(ok_flex), double(ok_sampled), double(tool_calls), double(tool_useful)});
    ok_strict = int64_t(counts[0]);
    ok_flex = int64_t(counts[1]);
    ok_sampled = int64_t(counts[2]);
    tool_calls = int64_t(counts[3]);
    tool_useful = int64_t(counts[4]);
    gather_samples(*dist, res.samples);
  }
  res.greedy_strict = double(ok_strict) / std::max<int64_t>(1, n);
  res.greedy_flexible = double(ok_flex) / std::max<int64_t>(1, n);
  if (cfg.eval_samples > 0) res.sampled = double(ok_sampled) / std::max<int64_t>(1, n * cfg.eval_samples);
  if (tools) {
    res.tool_calls_mean = double(tool_calls) / std::max<int64_t>(1, n);
    res.tool_useful_frac = double(tool_useful) / std::max<int64_t>(1, n);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

// ---------------------------------------------------------------------------------------------
// Results on disk

json eval_json(const EvalResult& e) {
  json j = {{"greedy_strict", e.greedy_strict},
            {"greedy_flexible", e.greedy_flexible},
            {"sampled", e.sampled < 0 ? json(nullptr) : json(e.sampled)},
            {"n", e.n},
            {"seconds", e.seconds}};
  if (e.tool_calls_mean >= 0) {
    j["tool_calls_mean"] = e.tool_calls_mean;
    j["tool_useful_frac"] = e.tool_useful_frac;
  }
  return j;
}

// Every evaluated question's greedy answer, for the report's before/after examples.
void write_answers(const std::string& path, const EvalResult& e) {
  std::string s;
  for (const auto& a : e.samples) {
    json j = {{"question", a.question},
              {"gold", a.gold.text},
              {"completion", a.completion},
              {"correct", a.correct_strict},
              {"correct_flexible", a.correct_flexible}};
    if (!a.transcript.empty()) {
      j["transcript"] = a.transcript;
      j["tool_calls"] = a.tool_calls;
      j["tool_useful"] = a.tool_useful;
    }
    s += json_text(j) + "\n";
  }
  write_file_atomic(path, s);
}

}  // namespace grpo
