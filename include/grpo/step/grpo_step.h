// grpo_step.h: homework step 5, one GRPO step as grpo_train runs it:
//
//   rollout     B prompts x G completions, scored; DAPO's dynamic sampling refills flat groups  (rollout.h)
//   advantages  A = (r - mean_group r) / (std_group r + eps) over every rank's B groups          (grpo.h step 2)
//   update      old/ref log-probs, mu x K micro-batches of the clipped loss, clip, AdamW         (update.h)
//
// Each phase runs with the device synchronised around it, so the timings are the phase's own.
// Running out of memory in a phase throws OutOfMemory naming the phase and the settings that shrink it.
#pragma once

#include <torch/torch.h>

#include "grpo/base/common.h"
#include "grpo/engine/dataset.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_state.h"
#include "grpo/step/rollout.h"
#include "grpo/step/step_metrics.h"
#include "grpo/step/update.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

struct StepResult {
  RolloutBatch batch;        // this rank's trained groups (b = B / W of them)
  torch::Tensor advantages;  // (b, G), as the loss saw them
  StepMetrics metrics;       // rewards, update, dynamic sampling, reward errors, timing
};

// The step: collect_rollouts -> compute_advantages_grpo -> update_policy, on every rank.
StepResult train_grpo_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& train);

// The step's reward figures: mean, std (over rewards (B, G), every rank's groups), accuracy and each
// reward function's mean over every rank, the share of groups with zero std. Offline PPO reports them too.
void add_reward_metrics(const GrpoState& st, const RolloutBatch& rb, const torch::Tensor& rewards, const Advantages& adv, StepMetrics& m);

// Out of memory in a phase of the step ("rollout" or "update"): the message says which settings to lower.
struct OutOfMemory : Error {
  using Error::Error;
};

}  // namespace grpo
