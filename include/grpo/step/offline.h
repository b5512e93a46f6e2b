// offline.h: training without rollouts. Scored groups from a file go through the same update as
// rollouts (update_policy) or a softmax-weighted likelihood; SFT is cross-entropy on reference
// answers. Log-probs at temperature 1: the data was not sampled at cfg.temperature.
#pragma once

#include <string>
#include <vector>

#include "grpo/engine/data_files.h"
#include "grpo/step/update.h"

namespace grpo {

// Offline objective on groups of scored responses (no rollouts):
//   L = -mean_b sum_i softmax(r_b / beta)_i * log p(y_bi | x_b),  seq_logp (B, G) = sum of token log-probs.
torch::Tensor compute_softmax_weighted_loss(const torch::Tensor& seq_logp, const torch::Tensor& rewards, double beta);

// ---------------------------------------------------------------------------------------------
// Offline training on scored groups (data_files.h: load_offline_groups), no rollouts.

enum class OfflineObjective { Ppo, SoftmaxWeighted };
// The groups become a RolloutBatch (response ids + the first EOS id, cut at max_new_tokens), then
// Ppo: update_policy; SoftmaxWeighted: L = -sum_i softmax(r / softmax_beta)_i log p(y_i | x).
RolloutBatch offline_batch(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<OfflineGroup>& groups);
StepMetrics train_offline_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<OfflineGroup>& groups,
                               OfflineObjective objective, double softmax_beta = 1.0);

// ---------------------------------------------------------------------------------------------
// Supervised fine-tuning (grpo_sft): cross-entropy on the answer tokens only (+ the EOS id),
//   L = -sum_t m_t log p(y_t | x, y_<t) / sum_t m_t
StepMetrics sft_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch);

}  // namespace grpo
