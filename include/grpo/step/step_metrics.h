// step_metrics.h: one training step's metrics as named fields, and the one writer that turns them
// into a line of metrics.jsonl (and so TensorBoard's scalars and the report). The names in the file
// are TRL's where TRL has the quantity (loss, kl, clip_ratio_*, entropy, frac_reward_zero_std,
// sampling/..., reward/<function>); a field left empty (std::nullopt) is not written, a non-finite
// value is written as null. The console line and the report read the same fields.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace grpo {

// The sampler correction (vllm_importance_sampling_correction), over the first pass.
struct SamplerCorrectionMetrics {
  double logp_difference_mean = 0, logp_difference_max = 0;  // |trainer logp - sampler logp| per token
  double ratio_mean = 0, ratio_min = 0, ratio_max = 0;       // the weights after clipping
};

// DAPO's dynamic sampling: how the batch was filled.
struct DynamicSamplingMetrics {
  double rollouts = 1;            // rollouts run this step (1 = no refill)
  double groups_dropped = 0;      // flat groups drawn and left out
  double groups_filled_flat = 0;  // flat groups kept because the refills ran out
  double accuracy_all = 0;        // over every completion drawn, kept or not (the policy's own accuracy)
  double reward_mean_all = 0;
};

// Tool calls in the rollout (tools set), over every rank's completions.
struct ToolMetrics {
  double calls_mean = 0;   // calls per completion
  double errors = 0;       // calls answered with an error (unreadable, unknown tool, the tool's own error)
  double time_s = 0;       // in the tools (the slowest rank's)
  double useful_frac = 0;  // completions with a call whose result is the gold answer
};

// Time and memory of a grpo_train step (the slowest rank's; tokens summed over the ranks).
struct StepTiming {
  double rollout_s = 0, update_s = 0, rewards_s = 0;  // rewards_s is part of rollout_s
  double rollout_tokens_per_s = 0;                    // tokens generated per rollout second
  double update_tokens_per_s = 0;                     // prompt + completion tokens per update second, times num_iterations
  double peak_mem_mb = 0;                             // CUDA allocator peak of this step; CPU: process peak RSS
  std::optional<int64_t> decode_new_shapes;           // static / CUDA-graph decoding: shapes met for the first time
};

struct StepMetrics {
  int64_t step = 0;  // optimizer steps done, this one included
  double epoch = 0;  // training prompts consumed / training set size
  // ---- the update (every objective)
  double loss = 0, lr = 0, grad_norm = 0;
  double skipped = 0;  // 1 when the update was dropped (non-finite loss or gradient)
  // ---- GRPO's loss terms, token-weighted over the micro-batches and passes
  std::optional<double> kl, clip_ratio_low, clip_ratio_high, clip_ratio_region, entropy;
  std::optional<double> entropy_mask_frac;  // top_entropy_quantile < 1: tokens kept / tokens
  std::optional<SamplerCorrectionMetrics> sampling;
  // ---- the trained batch (every rank's groups)
  std::optional<double> reward_mean, reward_std, accuracy, frac_reward_zero_std;
  std::map<std::string, double> reward_by_function;  // "reward/<name>": each function's mean
  std::optional<double> reward_errors;               // completions a reward failed on (scored 0)
  std::optional<double> completion_len_mean, completion_len_max, truncated_frac;
  std::optional<DynamicSamplingMetrics> dynamic_sampling;
  std::optional<ToolMetrics> tools;
  // ---- others
  std::optional<double> tokens;  // grpo_sft: completion tokens of the step
  std::optional<StepTiming> timing;

  // The step's reward over every completion drawn (with dynamic sampling the trained batch's leans to
  // 1/2): the console shows it beside reward_mean when they differ.
  double drawn_reward() const { return dynamic_sampling ? dynamic_sampling->reward_mean_all : reward_mean.value_or(0); }
};

// One metrics.jsonl object (keys sorted, as every JSON object here).
nlohmann::json to_json(const StepMetrics& m);

}  // namespace grpo
