// update.h: homework step 5c, the policy update on a scored rollout: old and reference log-probs
// (grpo.h step 4), then num_iterations (mu) passes, each one AdamW update of grad_accum (K)
// micro-batches of the PPO-clip loss (grpo.h step 3), gradients clipped, accumulated in fp32.
// With several ranks every normaliser is global, so W ranks equal one process.
#pragma once

#include <torch/torch.h>

#include "grpo/config/config.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_state.h"
#include "grpo/step/rollout.h"
#include "grpo/step/step_metrics.h"

namespace grpo {

// lr at optimizer update `step` (0-based): linear warmup over warmup_steps from 0, then
// constant | cosine (to 0 at total_steps) | linear (to 0 at total_steps).
double lr_at(int64_t step, int64_t total_steps, const TrainConfig& cfg);

// The update on a scored rollout with its advantages (b, G) (this rank's groups, compute_advantages_grpo
// over every rank's): old/ref log-probs, mu x K micro-batches, clip, AdamW. The schedule reads
// st.step as the steps done; the caller counts this one (train_grpo_step).
// Returns the update's metrics (loss, lr, grad_norm, skipped, the loss terms, the completions'
// lengths and truncation, the sampler correction); the caller adds the rewards'.
StepMetrics update_policy(GrpoState& st, const RolloutBatch& rb, const torch::Tensor& advantages);

// Clip the accumulated gradients, and apply them with AdamW unless the loss or the gradient norm is
// non-finite (then they are dropped and counted). `update` indexes the lr schedule.
struct UpdateResult {
  bool applied = false;
  double grad_norm = 0, lr = 0;
};
UpdateResult apply_update(GrpoState& st, double loss_value, int64_t update, int64_t total_updates);

// Mix the policy into the reference (sync_ref_model, TR-DPO): ref <- alpha * policy + (1 - alpha) * ref,
// after every ref_model_sync_steps-th step (reference_sync_due, step 1-based).
bool reference_sync_due(const TrainConfig& cfg, int64_t step);
void sync_reference(GrpoState& st, double alpha);
// Backpropagate one micro-batch's loss; with fp32 master weights the gradients are then added into
// the masters' fp32 .grad (and the model's bf16 .grad cleared), so K micro-batches accumulate in fp32;
// with zero_stage > 0 into the sharded optimizer's flat fp32 gradient.
void backward_micro(GrpoState& st, const torch::Tensor& loss);
// Drop every accumulated gradient (the model's, the masters', the sharded optimizer's).
void clear_grads(GrpoState& st);

}  // namespace grpo
