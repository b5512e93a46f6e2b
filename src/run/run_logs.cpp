// run_logs.cpp: the run's logs; see run_logs.h.
#include "grpo/run/run_logs.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "grpo/base/common.h"

namespace fs = std::filesystem;

namespace grpo {

using json = nlohmann::json;

namespace {

// The JSON lines of `path` whose "step" is at most `step`, rewritten in place.
std::vector<json> keep_lines_up_to(const std::string& path, int64_t step) {
  std::vector<json> kept;
  if (!file_exists(path)) return kept;
  std::istringstream in(read_file(path));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    if (trim(line).empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("step", int64_t(0)) > step) continue;
    kept.push_back(j);
    text += line + "\n";
  }
  write_file_atomic(path, text);
  return kept;
}

void add_step_scalars(TensorBoardWriter& tb, const json& m) {
  for (const auto& [k, v] : m.items())
    if (v.is_number() && k != "step") tb.add_scalar(k, v.get<double>(), m["step"].get<int64_t>());
}

void add_eval_scalars(TensorBoardWriter& tb, const json& e) {
  for (const char* k : {"greedy_strict", "greedy_flexible", "sampled"})
    if (e.contains(k) && e[k].is_number()) tb.add_scalar(std::string("eval/") + k, e[k].get<double>(), e["step"].get<int64_t>());
}

}  // namespace

RunLogs::RunLogs(const std::string& out, int64_t resume_step, bool writer, const std::string& rollouts_path) {
  if (!writer) return;
  const int64_t keep = std::max<int64_t>(resume_step, 0);
  auto history = keep_lines_up_to(out + "/metrics.jsonl", keep);
  auto evals = keep_lines_up_to(out + "/eval.jsonl", keep);
  keep_lines_up_to(out + "/samples.jsonl", keep);
  if (!rollouts_path.empty()) {
    keep_lines_up_to(rollouts_path, keep);
    rollouts_.open(rollouts_path, std::ios::app);
    if (!rollouts_) throw Error("--dump-rollouts " + rollouts_path + ": cannot open for writing (" + std::strerror(errno) + ")");
  }
  const std::string tb_dir = out + "/tb";
  if (dir_exists(tb_dir))
    for (const auto& e : fs::directory_iterator(tb_dir))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) fs::remove(e.path());
  tb_ = std::make_unique<TensorBoardWriter>(tb_dir);
  for (const auto& m : history) add_step_scalars(*tb_, m);
  for (const auto& e : evals) add_eval_scalars(*tb_, e);
  tb_->flush();
  metrics_.open(out + "/metrics.jsonl", std::ios::app);
  samples_.open(out + "/samples.jsonl", std::ios::app);
  eval_.open(out + "/eval.jsonl", std::ios::app);
}

void RunLogs::log_step(const json& m) {
  if (!tb_) return;
  metrics_ << json_text(m) << "\n" << std::flush;
  add_step_scalars(*tb_, m);
  tb_->flush();
}

void RunLogs::log_eval(const json& e) {
  if (!tb_) return;
  eval_ << json_text(e) << "\n" << std::flush;
  add_eval_scalars(*tb_, e);
  tb_->flush();
}

void RunLogs::log_rollouts(int64_t step, const RolloutBatch& rb, double lr, const std::vector<int32_t>& stop_ids) {
  if (!rollouts_.is_open()) return;
  const Rollout& r = rb.rollout;
  const int64_t G = rb.rewards.size(1);
  auto prompt = r.prompt_ids.to(torch::kCPU), pmask = r.prompt_mask.to(torch::kCPU);
  const auto completions = completion_token_ids(r);
  auto rewards = rb.rewards.to(torch::kCPU).contiguous();  // (B, G) -> N values in completion order
  json j = {{"step", step},
            {"examples", rb.examples},
            {"prompt_ids", json::array()},
            {"completion_ids", completions},
            {"rewards", std::vector<float>(rewards.data_ptr<float>(), rewards.data_ptr<float>() + rewards.numel())},
            {"lr", lr},
            {"stop_ids", stop_ids}};
  if (r.loss_mask.defined()) j["completion_own"] = completion_own_flags(r);  // tools: 0 on a tool's answer (never trained)
  for (int64_t b = 0; b < rb.rewards.size(0); ++b) {
    auto ids = prompt[b * G].masked_select(pmask[b * G].to(torch::kBool));
    j["prompt_ids"].push_back(std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()));
  }
  rollouts_ << json_text(j) << "\n" << std::flush;
}

void RunLogs::log_samples(int64_t step, const RolloutBatch& rb, const torch::Tensor& advantages, const PromptDataset& train) {
  if (!tb_) return;
  const int64_t G = rb.rewards.size(1);
  for (int64_t b = 0; b < std::min<int64_t>(2, rb.rewards.size(0)); ++b) {
    const Example& ex = train[rb.examples[b]];
    json j = {{"step", step}, {"question", ex.question}, {"gold", gold_json(ex.gold)}, {"completions", json::array()}};
    if (!ex.columns.empty()) j["columns"] = json::parse(ex.columns);  // the line's other fields, as given
    for (int64_t g = 0; g < G; ++g) {
      const size_t n = static_cast<size_t>(b * G + g);
      json c = {{"text", rb.completions[n]},
                {"reward", rb.rewards[b][g].item<float>()},
                {"advantage", advantages[b][g].item<float>()},
                {"correct", rb.correct[b][g].item<float>() > 0}};
      if (!rb.transcripts.empty()) {  // with tools: the whole exchange, as the model saw it and as messages
        c["transcript"] = rb.transcripts[n];
        c["messages"] = json::parse(rb.messages[n]);
        c["tool_calls"] = rb.tool_calls[n];
        c["tool_errors"] = rb.tool_errors[n];
      }
      j["completions"].push_back(std::move(c));
    }
    samples_ << json_text(j) << "\n";
  }
  samples_.flush();
}

}  // namespace grpo
