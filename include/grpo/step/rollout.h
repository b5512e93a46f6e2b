// rollout.h: homework step 5a, the rollout: B prompts from the data stream, G completions each
// (sampler.h), scored by the rewards (reward.h). With DAPO's dynamic sampling, groups whose G
// rewards are all equal (no advantage, no gradient) are dropped and the batch refilled from the
// next prompts.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grpo/engine/dataset.h"
#include "grpo/step/grpo_state.h"
#include "grpo/step/step_metrics.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// Everything a rollout produced that the update needs.
struct RolloutBatch {
  Rollout rollout;                                    // (N, ...) from the sampler
  torch::Tensor rewards;                              // (B, G) float32 total reward
  std::map<std::string, torch::Tensor> reward_by_fn;  // each (B, G)
  torch::Tensor correct;                              // (B, G) float32 0/1
  std::vector<std::string> completions;               // decoded, N (with tools: the final assistant turn)
  // With tools, N each: the whole transcript (special ids written), its messages (JSON text), the
  // model's tool calls, those answered with an error, and whether one call's result was the gold.
  std::vector<std::string> transcripts, messages;
  std::vector<int64_t> tool_calls, tool_errors;
  std::vector<uint8_t> tool_useful;
  double reward_seconds = 0;     // scoring them (built-ins, rules, the external program)
  int64_t reward_errors = 0;     // completions a reward failed on (each scored 0)
  std::string reward_error;      // the first such failure's reason
  double temperature = 1.0;      // of the distribution the completions came from (data: 1)
  std::vector<size_t> examples;  // B: which training examples the groups answer
};

// Rollout + rewards for one batch of examples (B prompts x G samples); keys: each prompt's draw key;
// step: the step it is for (1-based, as logged).
RolloutBatch rollout_and_score(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch,
                               const std::vector<uint64_t>& keys, int64_t step);
// Groups picked from several scored rollouts (dynamic sampling's refills) as one batch: pick
// (part, group) in order; prompts re-left-padded and completions right-padded to the widest part.
RolloutBatch gather_groups(const std::vector<RolloutBatch>& parts, const std::vector<std::pair<size_t, int64_t>>& picks);

// What the step's rollout gives the step: this rank's groups, how far the data stream moved (every
// rank's prompts, drawn or refilled), and its counts over every rank.
struct StepRollouts {
  RolloutBatch batch;
  int64_t prompts_used = 0;  // the data position's advance
  double reward_errors = 0;  // completions a reward failed on (each scored 0)
  std::optional<DynamicSamplingMetrics> dynamic_sampling;
};

// The step's rollout: this rank's B / W prompts from data position `position`. With
// dynamic_sampling, flat groups are dropped and the batch refilled from the next prompts, up to
// dynamic_sampling_max_rollouts rollouts in all; if still short, the dropped groups fill the rest
// (they cost compute, not correctness: their advantages are 0).
StepRollouts collect_rollouts(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& train, int64_t position,
                              int64_t step);

}  // namespace grpo
