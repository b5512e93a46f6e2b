// run_logs.h: what a run writes as it goes: metrics.jsonl (one line per step), eval.jsonl,
// samples.jsonl (a few completions with their rewards and advantages), TensorBoard (tb/), and the
// --dump-rollouts file. A resumed run keeps their lines up to its checkpoint's step, drops those
// of later steps (the interrupted invocation wrote them; this one redoes them), and rebuilds tb/
// from the kept lines: every log reads as one uninterrupted run, no step twice, whatever number of
// invocations made it.
#pragma once

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/base/tensorboard.h"
#include "grpo/engine/dataset.h"
#include "grpo/step/rollout.h"
#include "grpo/step/update.h"

namespace grpo {

// Only rank 0 writes them (`writer`); on the other ranks every call is a no-op.
class RunLogs {
 public:
  // resume_step < 0: a fresh run, every log starts empty. rollouts_path: --dump-rollouts ("" = off).
  RunLogs(const std::string& out, int64_t resume_step, bool writer, const std::string& rollouts_path);
  void log_step(const nlohmann::json& m);
  void log_eval(const nlohmann::json& e);
  // --dump-rollouts: every trained group of the step, token ids as the loss sees them (the prompt
  // without its left padding, the completion up to and including its stop id), so another trainer
  // can be fed the same prompts in the same order and the same completions (bench/vs_trl).
  void log_rollouts(int64_t step, const RolloutBatch& rb, double lr, const std::vector<int32_t>& stop_ids);
  // The first 2 prompts of the step with their G completions, rewards and advantages (B, G).
  void log_samples(int64_t step, const RolloutBatch& rb, const torch::Tensor& advantages, const PromptDataset& train);

 private:
  std::ofstream metrics_, samples_, eval_, rollouts_;
  std::unique_ptr<TensorBoardWriter> tb_;
};

}  // namespace grpo
