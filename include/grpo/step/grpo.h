// grpo.h: the GRPO algorithm (DeepSeekMath, arXiv:2402.03300; DeepSeek-R1) as the homework's five
// pieces, each a pure function (tensors in, tensors out) with its formula here:
//
//   step 1  tokenize_prompt / PromptDataset               (dataset.h)
//   step 2  compute_advantages_grpo   A_bg = (r_bg - mean_g r_b.) / (std_g r_b. + eps)
//   step 3  compute_policy_loss       PPO-clip + k3 KL, aggregated per sequence/token
//   step 4  compute_logprobs_from_model  log softmax(logits / temperature)[next token], chunked
//   step 5  train_grpo_step           rollout -> rewards -> advantages -> mu x (micro-batched
//                                     forward/backward) -> clip -> AdamW -> lr schedule (grpo_step.h)
//
// Shapes: B prompts, G samples per prompt, N = B*G sequences, Tp prompt length, Tc completion
// length, V vocab, D hidden.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/model/causal_lm.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Homework step 2: group-relative advantages
//   A = r - mean_group(r), then divided by
//     group: std_group(r) + eps      batch: std(all r) + eps      none: not divided
//   std is the unbiased (n - 1) estimate, eps = 1e-4 (TRL). A group whose rewards are all equal
//   carries no signal: its advantages are exactly 0 (never NaN) and it is counted.

struct Advantages {
  torch::Tensor advantages;         // (B, G)
  double frac_reward_zero_std = 0;  // fraction of groups with identical rewards
};
Advantages compute_advantages_grpo(const torch::Tensor& rewards, RewardScale scale, double eps = 1e-4);

// ---------------------------------------------------------------------------------------------
// Homework step 3: PPO-clip policy loss with optional KL to a reference
//   ratio_t = exp(logp_t - old_logp_t)                                      (token level)
//           = exp(sum_t m (logp - old_logp) / sum_t m)  for every t           (sequence level, GSPO)
//   l_t     = -min(min(ratio_t, delta) * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)
//             (delta: two-sided clip, off when 0: bounds the ratio of a negative advantage too)
//           + beta * (exp(ref_t - logp_t) - (ref_t - logp_t) - 1)          (k3 KL estimator)
//             [x ratio_t with bias_correction_kl: its gradient is then the unbiased reverse-KL
//              gradient (DeepSeek-V3.2), even on-policy where the ratio's value is 1]
//           - entropy_coef * H_t                                             (entropy bonus)
//   aggregation over the completion mask m, normalised for the optimizer step, whose gradient sums
//   the losses of K micro-batches on each of W ranks (n_micro = K W):
//     grpo    : mean_n( sum_t l m / sum_t m ) / n_micro  (per sequence, then over sequences; micro-batches averaged)
//     bnpo    : (sum l m / sum m) / n_micro              (tokens of this micro-batch; micro-batches averaged)
//     dapo    : sum l m / n_tokens_global                (tokens of the whole optimizer step)
//     dr_grpo : sum l m / (N_global * max_new_tokens)    (a constant: no length bias)
//   so that, summed over the step's micro-batches and ranks, each is the one-process, one-batch loss
//   (loss_normaliser, grpo.cpp: the one place these denominators are decided).

struct PolicyLossConfig {
  double clip_eps_low = 0.2, clip_eps_high = 0.2;
  double delta = 0.0;               // two-sided clip (0 = off)
  bool sequence_level = false;      // importance_sampling_level: sequence
  double beta = 0.0;                // KL coefficient (needs ref_logp when > 0)
  bool bias_correction_kl = false;  // KL x ratio (use_bias_correction_kl)
  double entropy_coef = 0.0;        // needs entropy when > 0
  LossAggregation aggregation = LossAggregation::Grpo;
  int64_t max_new_tokens = 0;      // dr_grpo's constant length
  int64_t n_sequences_global = 0;  // dr_grpo: sequences in the optimizer step (0 = this batch)
  int64_t n_tokens_global = 0;     // dapo: completion tokens in the optimizer step (0 = this batch)
  int64_t n_micro = 1;             // grpo, bnpo: micro-batch losses summed into the step's gradient (K x W)
};

struct PolicyLoss {
  torch::Tensor loss;  // scalar, differentiable
  // metrics (detached, over masked tokens)
  double clip_ratio_low = 0;     // ratio < 1 - eps_low with A < 0
  double clip_ratio_high = 0;    // ratio > 1 + eps_high with A > 0
  double clip_ratio_region = 0;  // either
  double kl_mean = 0, ratio_mean = 0, ratio_min = 0, ratio_max = 0, entropy_mean = 0;
  int64_t n_tokens = 0;
};

// The loss settings of a config, for an optimizer step of n_sequences completions holding n_tokens
// completion tokens (the dapo / dr_grpo denominators), in n_micro micro-batches over the ranks.
PolicyLossConfig policy_loss_config(const TrainConfig& cfg, int64_t n_sequences, int64_t n_tokens, int64_t n_micro = 1);

// logp, old_logp, mask (N, Tc); advantages (N,); ref_logp and entropy (N, Tc) or undefined;
// pg_weight (detached, broadcastable to (N, Tc)) multiplies the clipped policy term of each token
// before the KL is added, as TRL does: the sampler correction x the high-entropy mask.
PolicyLoss compute_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& advantages,
                               const torch::Tensor& mask, const PolicyLossConfig& cfg, const torch::Tensor& ref_logp = {},
                               const torch::Tensor& entropy = {}, const torch::Tensor& pg_weight = {});

// Rollout/trainer mismatch correction (TRL's vllm_importance_sampling_correction; our sampler plays
// vLLM's part). The completions were drawn from the sampler's distribution mu; the loss is of the
// trainer's pi (other kernels, a KV cache, bf16 roundings), so each token's policy term is weighted by
//   token modes:     w_t = exp(logp_t - sampler_logp_t)                         (N, Tc)
//   sequence modes:  w   = exp(sum_t m_t (logp_t - sampler_logp_t))             (N, 1)
//   *_truncate: w <- clamp(w, C_min, C_max)      *_mask: w <- 0 where w < C_min or w > C_max
// (C_min = 0: no lower bound). logp is the trainer's at rollout time, detached.
// With top-p / top-k / min-p / a repetition penalty the sampler records the log-probs of the
// filtered distribution it drew from, so mu is that distribution: w <= 1 on every token (the true
// weight of the unfiltered policy), and a sequence ratio shrinks geometrically with the length.
// The trainer warns; a token mode, or the correction off, suits filtered sampling.
struct SamplerCorrection {
  torch::Tensor weight;                                // (N, Tc) or (N, 1), detached
  double logp_diff_sum = 0, logp_diff_max = 0;         // |logp - sampler_logp| over the masked tokens
  double ratio_sum = 0, ratio_min = 0, ratio_max = 0;  // w after clipping, over tokens or sequences
  int64_t n_tokens = 0, n_ratios = 0;
};
SamplerCorrection compute_sampler_correction(const torch::Tensor& logp, const torch::Tensor& sampler_logp, const torch::Tensor& mask,
                                             IsCorrectionMode mode, double clip_min, double clip_max);

// top_entropy_quantile q < 1 (Wang et al. 2025, "80/20"): 1 on the masked tokens whose entropy is
// >= the (1 - q) quantile of the masked entropies (linear interpolation, as torch.quantile), else 0.
torch::Tensor top_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask, double q);  // (N, Tc)

// ---------------------------------------------------------------------------------------------
// Homework step 4: per-token log-probs of the completion under the model
//   input_ids = [prompt (left-padded) | completion], attention_mask likewise, (N, Tp + Tc);
//   logp[n, t] = log softmax(logits[n, Tp - 1 + t] / temperature)[completion[n, t]]
// The (N, Tc, V) logits are never materialised at once in fp32: the lm_head + log-softmax run in
// chunks of `chunk` positions (0: logprob_chunk_rows, a 256 MiB fp32 block: 441 rows at Qwen's
// 151,936 ids: the BLAS repacks the (D, V) weight once per chunk, so on a CPU 64-row chunks
// cost ~1.4x more GEMM time) inside a custom autograd
// function that recomputes each chunk's logits in backward (gradients equal the naive full
// log_softmax path). Dividing by the sampling
// temperature makes the loss see the distribution the completions were drawn from.

struct TokenLogprobs {
  torch::Tensor logprobs;  // (N, Tc) float32
  torch::Tensor entropy;   // (N, Tc) float32, when asked
};
TokenLogprobs compute_logprobs_from_model(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                          int64_t completion_len, double temperature = 1.0, bool with_entropy = false, int64_t chunk = 0);
// The same log-probs with each prompt's forward run once for its whole group: rows n of the
// completions (n, Tc) continue prompt group[n] of prompt_ids (U, Tp). Exact, not an estimate: a
// prompt's hidden states do not depend on what follows it, so the G completions attend to the one
// copy of its K/V (autograd sums their gradients into it). Work per micro-batch falls from
// n (Tp + Tc) tokens to U Tp + n Tc; on GSM8K prompts (Tp >> Tc / G) that is most of the update.
TokenLogprobs compute_logprobs_shared_prompt(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                             const torch::Tensor& group, const torch::Tensor& completion_ids,
                                             const torch::Tensor& completion_mask, double temperature = 1.0, bool with_entropy = false,
                                             int64_t chunk = 0);
int64_t logprob_chunk_rows(int64_t n_vocab);
// Rows [begin, begin + count) of N completions whose consecutive groups of G rows continue the
// same prompt (a rollout's layout), through compute_logprobs_shared_prompt: each prompt it
// touches runs once. prompt_ids/mask (N, Tp), completion_ids/mask (N, Tc).
TokenLogprobs compute_logprobs_grouped(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                       const torch::Tensor& completion_ids, const torch::Tensor& completion_mask, int64_t G, int64_t begin,
                                       int64_t count, double temperature, bool with_entropy);
// The same quantity from given hidden states h (N, Tc, D) and lm_head weight W (V, D), chunked;
// softcap > 0: the logits c tanh(h W^T / c) before the temperature (ModelConfig::final_softcap).
TokenLogprobs chunked_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature,
                               bool with_entropy, int64_t chunk, double softcap = 0);
// The naive reference: full (N, Tc, V) logits and log_softmax.
TokenLogprobs naive_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature,
                             bool with_entropy, double softcap = 0);

// Homework step 5, the training step, is grpo_step.h (rollout.h -> advantages -> update.h).

}  // namespace grpo
