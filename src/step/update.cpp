// update.cpp: homework step 5c, the policy update; see update.h.
// References: DeepSeekMath (GRPO), DAPO (clip-higher, token-level loss), Dr. GRPO (constant
// normaliser), TRL's GRPOTrainer for the metric definitions. Departure: the warmup is
// lr * (update + 1) / warmup_steps, so the first update is not wasted with lr = 0 (HF uses update / warmup).
#include "grpo/step/update.h"

#include <cmath>
#include <limits>

#include "grpo/base/common.h"
#include "grpo/model/lora.h"

namespace grpo {

double lr_at(int64_t step, int64_t total_steps, const TrainConfig& cfg) {
  const double lr = cfg.learning_rate;
  if (step < cfg.warmup_steps) return lr * double(step + 1) / cfg.warmup_steps;
  const double span = std::max<int64_t>(1, total_steps - cfg.warmup_steps);
  const double progress = std::min(1.0, double(step - cfg.warmup_steps) / span);
  if (cfg.lr_schedule == LrSchedule::Cosine) return lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (cfg.lr_schedule == LrSchedule::Linear) return lr * (1.0 - progress);
  return lr;
}

// ---------------------------------------------------------------------------------------------
// Homework step 5b: the update, in four phases: the batch and its loss settings (built once),
// old and reference log-probs, the micro-batch loop (mu passes, K micro-batches each), metrics.

namespace {

// Everything the micro-batches share, built once from the config and the scored rollout.
struct UpdateBatch {
  int64_t N = 0, K = 1, mb = 0, G = 1, Tc = 1;
  torch::Tensor comp_ids, comp_mask;  // (N, Tc), trimmed to the longest completion
  bool share = false;                 // each prompt's forward once per group
  torch::Tensor ids, attn;            // full rows (N, Tp + Tc), only without sharing
  torch::Tensor A;                    // (N,) the advantages, one per completion
  torch::Tensor truncated;            // (N,) 1 where cut at max_new_tokens
  torch::Tensor cmask;                // (N, Tc) float: the tokens the loss sees
  torch::Tensor sampler_logp;         // (N, Tc) when the sampler correction is on
  PolicyLossConfig plc;
  int64_t n_tokens_global = 0;  // completion tokens the loss sees, over every rank
  double temperature = 1;
};

UpdateBatch prepare_update(const GrpoState& st, const RolloutBatch& rb, const torch::Tensor& advantages) {
  const TrainConfig& cfg = st.cfg;
  const Rollout& r = rb.rollout;
  const auto device = r.completion_ids.device();
  UpdateBatch u;
  u.N = r.completion_ids.size(0);
  u.K = cfg.grad_accum;
  u.mb = u.N / u.K;
  u.G = rb.rewards.size(1);
  TORCH_CHECK(u.N % u.K == 0, "grad_accum must divide N = ", u.N);
  u.temperature = rb.temperature;
  // The sampler's width is max_new_tokens (and the tools' room); the update spans only what was
  // generated: up to the last attended column (a tool call's holes are inside the mask's span).
  auto col = torch::arange(1, r.completion_mask.size(1) + 1, r.completion_mask.options());
  u.Tc = std::max<int64_t>(1, (r.completion_mask * col).max().item<int64_t>());
  u.comp_ids = r.completion_ids.narrow(1, 0, u.Tc);    // (N, Tc)
  u.comp_mask = r.completion_mask.narrow(1, 0, u.Tc);  // (N, Tc)
  // Gradient checkpointing recomputes whole rows, so it keeps the full-row forward.
  auto row_group = torch::arange(u.N, torch::TensorOptions().dtype(torch::kInt64).device(device)).div(u.G, "floor");  // (N,)
  u.share = !cfg.gradient_checkpointing && torch::equal(r.prompt_ids, r.prompt_ids.index_select(0, row_group * u.G));
  if (!u.share) {
    u.ids = torch::cat({r.prompt_ids, u.comp_ids}, 1);
    u.attn = torch::cat({r.prompt_mask, u.comp_mask}, 1);
  }

  Dist& dist = *st.dist;
  u.A = advantages.flatten().to(device);  // (N,)
  std::vector<float> trunc_v;
  for (auto f : r.finish) trunc_v.push_back(f == FinishReason::Length ? 1.0f : 0.0f);
  u.truncated = torch::tensor(trunc_v, torch::kFloat32).to(device);  // (N,)
  // (N, Tc): the tokens the loss sees, the model's own (a tool's result is attended, never trained)
  u.cmask = r.own_mask().narrow(1, 0, u.Tc).to(torch::kFloat32);
  if (cfg.mask_truncated_completions) u.cmask = u.cmask * (1.0 - u.truncated).unsqueeze(1);
  if (cfg.vllm_importance_sampling_correction && r.logprobs.defined()) u.sampler_logp = r.logprobs.narrow(1, 0, u.Tc);
  // The step's counts over every rank, for the loss's denominators (loss_normaliser, grpo.cpp).
  u.n_tokens_global = static_cast<int64_t>(dist.all_reduce(u.cmask.sum().item<double>()));
  u.plc = policy_loss_config(cfg, u.N * dist.world_size(), u.n_tokens_global, u.K * dist.world_size());
  return u;
}

torch::Tensor rows_of(const UpdateBatch& u, const torch::Tensor& x, int64_t k) {
  return x.narrow(0, k * u.mb, u.mb);
}

// Log-probs of micro-batch k's completions (mb, Tc) under model m.
TokenLogprobs micro_logprobs(const UpdateBatch& u, const Rollout& r, CausalLM& m, int64_t k, bool with_entropy) {
  if (u.share)
    return compute_logprobs_grouped(m, r.prompt_ids, r.prompt_mask, u.comp_ids, u.comp_mask, u.G, k * u.mb, u.mb, u.temperature,
                                    with_entropy);
  return compute_logprobs_from_model(m, rows_of(u, u.ids, k), rows_of(u, u.attn, k), u.Tc, u.temperature, with_entropy);
}

// All N rows' log-probs under m, without gradients: old (mu > 1) and reference (beta > 0) log-probs.
torch::Tensor logprobs_nograd(const UpdateBatch& u, const Rollout& r, CausalLM& m) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  for (int64_t k = 0; k < u.K; ++k) parts.push_back(micro_logprobs(u, r, m, k, false).logprobs);
  return torch::cat(parts, 0);  // (N, Tc)
}

// Token-weighted sums of the loss metrics over the micro-batches and passes; the sampler
// correction's over the first pass. Reduced over the ranks by reduce_over_ranks.
struct LossSums {
  double loss = 0, kl = 0, clip_lo = 0, clip_hi = 0, clip_reg = 0, ent = 0, grad_norm = 0, lr = 0;
  int64_t skipped = 0;
  double is_diff_sum = 0, is_diff_max = 0, is_ratio_sum = 0, is_ratio_min = INFINITY, is_ratio_max = 0;
  int64_t is_tokens = 0, is_ratios = 0, entropy_kept = 0;
};

// Old (mu > 1) and reference (beta > 0) log-probs of all N rows, before any update.
struct FixedLogprobs {
  torch::Tensor old_logp, ref_logp;  // (N, Tc) or undefined
};

FixedLogprobs fixed_logprobs(GrpoState& st, const UpdateBatch& u, const Rollout& r) {
  FixedLogprobs f;
  if (st.cfg.num_iterations > 1) f.old_logp = logprobs_nograd(u, r, st.policy);
  if (st.cfg.beta > 0 && st.ref) {
    f.ref_logp = logprobs_nograd(u, r, st.ref);
  } else if (st.cfg.beta > 0) {  // LoRA: the reference is the base, i.e. the policy with its adapters off
    LoraDisabled base(st.policy);
    f.ref_logp = logprobs_nograd(u, r, st.policy);
  }
  return f;
}

// The policy-term weight of micro-batch k's tokens: the sampler correction x the high-entropy mask
// (undefined: 1). The first pass's statistics go to `sums`.
torch::Tensor policy_weight(const GrpoState& st, const UpdateBatch& u, const torch::Tensor& old, const TokenLogprobs& lp, int64_t k,
                            bool first_pass, LossSums& sums) {
  const TrainConfig& cfg = st.cfg;
  torch::Tensor pg_weight;
  if (u.sampler_logp.defined()) {
    SamplerCorrection sc =
        compute_sampler_correction(old, rows_of(u, u.sampler_logp, k), rows_of(u, u.cmask, k), cfg.vllm_importance_sampling_mode,
                                   cfg.vllm_importance_sampling_clip_min, cfg.vllm_importance_sampling_clip_max);
    pg_weight = sc.weight;
    if (first_pass) {
      sums.is_diff_sum += sc.logp_diff_sum;
      sums.is_diff_max = std::max(sums.is_diff_max, sc.logp_diff_max);
      sums.is_tokens += sc.n_tokens;
      sums.is_ratio_sum += sc.ratio_sum;
      sums.is_ratios += sc.n_ratios;
      if (sc.n_ratios > 0) {
        sums.is_ratio_min = std::min(sums.is_ratio_min, sc.ratio_min);
        sums.is_ratio_max = std::max(sums.is_ratio_max, sc.ratio_max);
      }
    }
  }
  if (cfg.top_entropy_quantile < 1.0) {
    auto keep = top_entropy_mask(lp.entropy, rows_of(u, u.cmask, k), cfg.top_entropy_quantile);  // (mb, Tc)
    if (first_pass) sums.entropy_kept += static_cast<int64_t>(keep.sum().item<double>());
    pg_weight = pg_weight.defined() ? pg_weight * keep : keep;
  }
  return pg_weight;
}

// Pass `it` of mu: K micro-batches of loss + backward, then one optimizer update.
void update_pass(GrpoState& st, const UpdateBatch& u, const Rollout& r, const FixedLogprobs& f, int64_t it, LossSums& sums) {
  const TrainConfig& cfg = st.cfg;
  const double n_tok_all = std::max<double>(1.0, double(u.n_tokens_global)) * cfg.num_iterations;
  clear_grads(st);
  double loss_it = 0;
  for (int64_t k = 0; k < u.K; ++k) {
    auto rows = [&](const torch::Tensor& x) { return rows_of(u, x, k); };
    TokenLogprobs lp = micro_logprobs(u, r, st.policy, k, /*with_entropy=*/true);
    auto old = f.old_logp.defined() ? rows(f.old_logp) : lp.logprobs.detach();  // the trainer's log-probs at rollout time
    torch::Tensor pg_weight = policy_weight(st, u, old, lp, k, it == 0, sums);
    PolicyLoss pl = compute_policy_loss(lp.logprobs, old, rows(u.A), rows(u.cmask), u.plc,
                                        f.ref_logp.defined() ? rows(f.ref_logp) : torch::Tensor(), lp.entropy, pg_weight);
    loss_it += pl.loss.item<double>();
    if (std::isfinite(loss_it)) backward_micro(st, pl.loss);
    const double w = double(pl.n_tokens) / n_tok_all;
    sums.kl += pl.kl_mean * w;
    sums.clip_lo += pl.clip_ratio_low * w;
    sums.clip_hi += pl.clip_ratio_high * w;
    sums.clip_reg += pl.clip_ratio_region * w;
    sums.ent += pl.entropy_mean * w;
  }
  loss_it = st.dist->all_reduce(loss_it);  // the ranks' shares: a non-finite one skips the update on every rank
  UpdateResult res = apply_update(st, loss_it, st.step * cfg.num_iterations + it, st.total_steps * cfg.num_iterations);
  sums.skipped += !res.applied;
  sums.loss += loss_it / cfg.num_iterations;
  sums.grad_norm = res.grad_norm;
  sums.lr = res.lr;
}

// Sums and extrema over every rank's rows.
void reduce_over_ranks(Dist& dist, LossSums& s) {
  auto sums = dist.all_reduce({s.kl, s.clip_lo, s.clip_hi, s.clip_reg, s.ent, s.is_diff_sum, s.is_ratio_sum, double(s.is_tokens),
                               double(s.is_ratios), double(s.entropy_kept)});
  s.kl = sums[0];
  s.clip_lo = sums[1];
  s.clip_hi = sums[2];
  s.clip_reg = sums[3];
  s.ent = sums[4];
  s.is_diff_sum = sums[5];
  s.is_ratio_sum = sums[6];
  s.is_tokens = int64_t(sums[7]);
  s.is_ratios = int64_t(sums[8]);
  s.entropy_kept = int64_t(sums[9]);
  auto maxes = dist.all_reduce({s.is_diff_max, s.is_ratio_max, -s.is_ratio_min}, Dist::Op::Max);
  s.is_diff_max = maxes[0];
  s.is_ratio_max = maxes[1];
  s.is_ratio_min = -maxes[2];
}

// The update's metrics (names as in TRL where they exist), over every rank's rows: per-sequence
// values gathered.
StepMetrics update_metrics(const GrpoState& st, const UpdateBatch& u, const Rollout& r, const LossSums& s) {
  Dist& dist = *st.dist;
  StepMetrics m;
  m.loss = s.loss;
  m.lr = s.lr;
  m.grad_norm = s.grad_norm;
  m.skipped = double(s.skipped);
  m.kl = s.kl;
  m.clip_ratio_low = s.clip_lo;
  m.clip_ratio_high = s.clip_hi;
  m.clip_ratio_region = s.clip_reg;
  m.entropy = s.ent;
  // (N_global,) the model's own tokens (a tool's answers are not the model's length)
  auto lens = dist.all_gather(r.own_mask().sum(1).to(torch::kFloat32));
  m.completion_len_mean = lens.mean().item<double>();
  m.completion_len_max = lens.max().item<double>();
  m.truncated_frac = dist.all_gather(u.truncated).mean().item<double>();
  if (u.sampler_logp.defined())
    m.sampling = SamplerCorrectionMetrics{s.is_diff_sum / std::max<int64_t>(1, s.is_tokens), s.is_diff_max,
                                          s.is_ratio_sum / std::max<int64_t>(1, s.is_ratios), s.is_ratios > 0 ? s.is_ratio_min : 0.0,
                                          s.is_ratio_max};
  if (st.cfg.top_entropy_quantile < 1.0) m.entropy_mask_frac = double(s.entropy_kept) / std::max<double>(1.0, double(u.n_tokens_global));
  return m;
}

}  // namespace

void clear_grads(GrpoState& st) {
  st.policy->zero_grad();
  if (st.optimizer) st.optimizer->zero_grad();
  if (st.zero) st.zero->zero_grad();
}

void backward_micro(GrpoState& st, const torch::Tensor& loss) {
  loss.backward();
  if (st.zero) return st.zero->accumulate();  // into its flat fp32 gradient
  if (st.master.empty()) return;
  torch::NoGradGuard ng;
  auto& params = st.params;
  for (size_t i = 0; i < params.size(); ++i) {
    auto& g = params[i].mutable_grad();
    if (!g.defined()) continue;
    auto& mg = st.master[i].mutable_grad();
    if (mg.defined())
      mg.add_(g.to(torch::kFloat32));
    else
      mg = g.to(torch::kFloat32);
    g = torch::Tensor();
  }
}

StepMetrics update_policy(GrpoState& st, const RolloutBatch& rb, const torch::Tensor& advantages) {
  const TrainConfig& cfg = st.cfg;
  const Rollout& r = rb.rollout;
  const UpdateBatch u = prepare_update(st, rb, advantages);
  const FixedLogprobs fixed = fixed_logprobs(st, u, r);  // before the policy moves
  st.policy->train();
  LossSums sums;
  for (int64_t it = 0; it < cfg.num_iterations; ++it) update_pass(st, u, r, fixed, it, sums);
  reduce_over_ranks(*st.dist, sums);
  return update_metrics(st, u, r, sums);
}

namespace {

// zero_stage 1 / 2: the sharded optimizer reduces, clips by the global norm and updates its share.
UpdateResult apply_sharded_update(GrpoState& st, double loss_value, double lr, double max_norm) {
  UpdateResult u;
  u.lr = lr;
  const bool finite = std::isfinite(loss_value);  // the same on every rank: they all take the same branch
  ShardedAdamW::Outcome o = finite ? st.zero->step(lr, max_norm) : ShardedAdamW::Outcome{};
  u.grad_norm = o.grad_norm;
  u.applied = o.applied;
  if (!u.applied) ++st.skipped_updates;
  clear_grads(st);
  return u;
}

}  // namespace

UpdateResult apply_update(GrpoState& st, double loss_value, int64_t update, int64_t total_updates) {
  const double max_norm = st.cfg.max_grad_norm > 0 ? st.cfg.max_grad_norm : std::numeric_limits<double>::infinity();
  if (st.zero) return apply_sharded_update(st, loss_value, lr_at(update, total_updates, st.cfg), max_norm);
  UpdateResult u;
  auto& params = st.params;
  auto trainable = st.trainable();  // the gradients live here (fp32 masters: accumulated by backward_micro)
  // loss_value is the same on every rank, so they all take the same branch; after the sum every
  // rank holds the same gradient, norm and skip decision.
  if (std::isfinite(loss_value)) st.dist->all_reduce_grads(trainable);
  u.grad_norm = std::isfinite(loss_value) ? torch::nn::utils::clip_grad_norm_(trainable, max_norm) : NAN;
  u.lr = lr_at(update, total_updates, st.cfg);
  if (!std::isfinite(loss_value) || !std::isfinite(u.grad_norm)) {  // never applied; logged and counted
    ++st.skipped_updates;
    clear_grads(st);
    return u;
  }
  for (auto& g : st.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(u.lr);
  st.optimizer->step();
  if (!st.master.empty()) {  // fp32 master weights: the update happens in fp32, the model gets the rounded result
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(st.master[i]);
  }
  clear_grads(st);
  u.applied = true;
  return u;
}

bool reference_sync_due(const TrainConfig& cfg, int64_t step) {
  return cfg.sync_ref_model && step % cfg.ref_model_sync_steps == 0;
}

void sync_reference(GrpoState& st, double alpha) {
  TORCH_CHECK(st.ref, "sync_reference: no reference model (beta = 0)");
  torch::NoGradGuard ng;
  auto policy = st.policy->named_parameters();
  auto master = st.master;
  auto& names = st.param_names;
  for (auto& item : st.ref->named_parameters()) {
    const auto i = static_cast<size_t>(std::find(names.begin(), names.end(), item.key()) - names.begin());
    auto p = master.empty() ? policy[item.key()] : master[i];
    auto mixed = p.to(torch::kFloat32) * alpha + item.value().to(torch::kFloat32) * (1.0 - alpha);
    item.value().copy_(mixed);
  }
}

}  // namespace grpo
