// grpo.cpp: the GRPO algorithm; formulas in grpo.h.
// References: DeepSeekMath (GRPO), DAPO (clip-higher, token-level loss), Dr. GRPO (constant
// normaliser), TRL's GRPOTrainer for the metric definitions. Departure: the warmup is
// lr * (update + 1) / warmup_steps, so the first update is not wasted with lr = 0 (HF uses update / warmup).
#include "grpo/step/grpo.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/model/lora.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Homework step 2: advantages

Advantages compute_advantages_grpo(const torch::Tensor& rewards, RewardScale scale, double eps) {
  TORCH_CHECK(rewards.dim() == 2 && rewards.size(1) >= 2, "rewards must be (B, G) with G >= 2, got ", rewards.sizes());
  auto r = rewards.to(torch::kFloat32);                                          // (B, G)
  auto centered = r - r.mean(1, /*keepdim=*/true);                               // (B, G)
  auto flat = (std::get<0>(r.max(1, true)) - std::get<0>(r.min(1, true))) == 0;  // (B, 1) no signal
  torch::Tensor a;
  switch (scale) {
    case RewardScale::Group:
      a = centered / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + eps);
      break;
    case RewardScale::Batch:
      a = centered / (r.std(/*unbiased=*/true) + eps);
      break;
    case RewardScale::None:
      a = centered;
      break;
  }
  Advantages out;
  out.advantages = a.masked_fill(flat, 0.0);
  out.frac_reward_zero_std = double(flat.sum().item<int64_t>()) / double(r.size(0));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Homework step 3: policy loss

PolicyLossConfig policy_loss_config(const TrainConfig& cfg, int64_t n_sequences, int64_t n_tokens, int64_t n_micro) {
  PolicyLossConfig plc;
  plc.clip_eps_low = cfg.clip_eps_low;
  plc.clip_eps_high = cfg.clip_eps_high;
  plc.delta = cfg.delta;
  plc.sequence_level = cfg.importance_sampling_level == ImportanceSamplingLevel::Sequence;
  plc.beta = cfg.beta;
  plc.bias_correction_kl = cfg.use_bias_correction_kl;
  plc.entropy_coef = cfg.entropy_coef;
  plc.aggregation = cfg.loss_aggregation;
  plc.max_new_tokens = cfg.max_new_tokens;
  plc.n_sequences_global = n_sequences;
  plc.n_tokens_global = std::max<int64_t>(1, n_tokens);
  plc.n_micro = n_micro;
  return plc;
}

namespace {

// The aggregation table of grpo.h: a micro-batch's masked token losses (N, Tc) as its share of the
// optimizer step's loss. The one place the loss's denominators are decided.
torch::Tensor loss_normaliser(const torch::Tensor& masked, const torch::Tensor& m, const PolicyLossConfig& cfg) {
  const double averaged = 1.0 / double(cfg.n_micro);  // grpo, bnpo: the step averages its micro-batches
  switch (cfg.aggregation) {
    case LossAggregation::Grpo:
      return (masked.sum(1) / m.sum(1).clamp_min(1.0)).mean() * averaged;
    case LossAggregation::Bnpo:
      return masked.sum() / m.sum().clamp_min(1.0) * averaged;
    case LossAggregation::Dapo:
      return cfg.n_tokens_global > 0 ? masked.sum() / double(cfg.n_tokens_global) : masked.sum() / m.sum().clamp_min(1.0);
    case LossAggregation::DrGrpo: {
      TORCH_CHECK(cfg.max_new_tokens > 0, "dr_grpo needs max_new_tokens");
      const int64_t n = cfg.n_sequences_global > 0 ? cfg.n_sequences_global : masked.size(0);
      return masked.sum() / double(n * cfg.max_new_tokens);
    }
  }
  throw Error("loss_normaliser: unknown aggregation");
}

}  // namespace

PolicyLoss compute_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& advantages,
                               const torch::Tensor& mask, const PolicyLossConfig& cfg, const torch::Tensor& ref_logp,
                               const torch::Tensor& entropy, const torch::Tensor& pg_weight) {
  TORCH_CHECK(logp.sizes() == old_logp.sizes() && logp.sizes() == mask.sizes(), "logp, old_logp, mask must be (N, Tc)");
  TORCH_CHECK(advantages.dim() == 1 && advantages.size(0) == logp.size(0), "advantages must be (N,)");
  TORCH_CHECK(cfg.beta == 0 || ref_logp.defined(), "beta > 0 needs ref_logp");
  TORCH_CHECK(cfg.entropy_coef == 0 || entropy.defined(), "entropy_coef > 0 needs entropy");
  auto m = mask.to(torch::kFloat32);                                                                 // (N, Tc)
  auto A = advantages.to(torch::kFloat32).unsqueeze(1);                                              // (N, 1)
  auto log_ratio = logp - old_logp;                                                                  // (N, Tc)
  if (cfg.sequence_level) log_ratio = (log_ratio * m).sum(1, true) / m.sum(1, true).clamp_min(1.0);  // (N, 1)
  auto ratio = torch::exp(log_ratio);                                                                // (N, Tc) or (N, 1)
  auto clipped = torch::clamp(ratio, 1.0 - cfg.clip_eps_low, 1.0 + cfg.clip_eps_high);
  auto capped = cfg.delta > 0 ? torch::clamp_max(ratio, cfg.delta) : ratio;
  auto per_token = -torch::min(capped * A, clipped * A);       // (N, Tc) or (N, 1)
  if (pg_weight.defined()) per_token = per_token * pg_weight;  // (N, Tc)
  torch::Tensor kl;
  if (cfg.beta > 0) {
    auto d = ref_logp - logp;
    kl = torch::exp(d) - d - 1.0;  // k3, >= 0
    if (cfg.bias_correction_kl) kl = kl * ratio;
    per_token = per_token + cfg.beta * kl;
  }
  if (cfg.entropy_coef > 0) per_token = per_token - cfg.entropy_coef * entropy;

  PolicyLoss out;
  out.loss = loss_normaliser(per_token * m, m, cfg);

  // ---- metrics over the real tokens
  torch::NoGradGuard ng;
  const double n_tok = m.sum().item<double>();
  out.n_tokens = static_cast<int64_t>(n_tok);
  if (n_tok > 0) {
    auto mean_of = [&](const torch::Tensor& x) { return (x.to(torch::kFloat32) * m).sum().item<double>() / n_tok; };
    auto low = (ratio < 1.0 - cfg.clip_eps_low).logical_and(A < 0);
    auto high = (ratio > 1.0 + cfg.clip_eps_high).logical_and(A > 0);
    out.clip_ratio_low = mean_of(low);
    out.clip_ratio_high = mean_of(high);
    out.clip_ratio_region = mean_of(low.logical_or(high));
    out.ratio_mean = mean_of(ratio);
    auto real = m > 0;
    out.ratio_min = ratio.masked_select(real).min().item<double>();
    out.ratio_max = ratio.masked_select(real).max().item<double>();
    if (kl.defined()) out.kl_mean = mean_of(kl);
    if (entropy.defined()) out.entropy_mean = mean_of(entropy);
  }
  return out;
}

SamplerCorrection compute_sampler_correction(const torch::Tensor& logp, const torch::Tensor& sampler_logp, const torch::Tensor& mask,
                                             IsCorrectionMode mode, double clip_min, double clip_max) {
  TORCH_CHECK(logp.sizes() == sampler_logp.sizes() && logp.sizes() == mask.sizes(), "logp, sampler_logp, mask must be (N, Tc)");
  torch::NoGradGuard ng;
  auto m = mask.to(torch::kFloat32);                                                       // (N, Tc)
  auto diff = (logp.detach().to(torch::kFloat32) - sampler_logp.to(torch::kFloat32)) * m;  // (N, Tc)
  const bool sequence = mode == IsCorrectionMode::SequenceTruncate || mode == IsCorrectionMode::SequenceMask;
  auto w = torch::exp(sequence ? diff.sum(1, true) : diff);  // (N, 1) or (N, Tc)
  if (mode == IsCorrectionMode::TokenTruncate || mode == IsCorrectionMode::SequenceTruncate)
    w = w.clamp(clip_min, clip_max);
  else
    w = w.masked_fill((w < clip_min).logical_or(w > clip_max), 0.0);
  SamplerCorrection out;
  out.weight = w;
  auto real = m > 0;
  out.n_tokens = real.sum().item<int64_t>();
  if (out.n_tokens > 0) {
    auto d = diff.abs().masked_select(real);
    out.logp_diff_sum = d.sum().item<double>();
    out.logp_diff_max = d.max().item<double>();
  }
  auto ws = sequence ? w.flatten() : w.masked_select(real);
  out.n_ratios = ws.numel();
  if (out.n_ratios > 0) {
    out.ratio_sum = ws.sum().item<double>();
    out.ratio_min = ws.min().item<double>();
    out.ratio_max = ws.max().item<double>();
  }
  return out;
}

torch::Tensor top_entropy_mask(const torch::Tensor& entropy, const torch::Tensor& mask, double q) {
  TORCH_CHECK(entropy.sizes() == mask.sizes() && q > 0 && q <= 1, "top_entropy_mask: entropy and mask (N, Tc), q in (0, 1]");
  torch::NoGradGuard ng;
  auto real = mask > 0;
  auto e = entropy.detach().to(torch::kFloat32);
  auto values = e.masked_select(real);
  if (values.numel() == 0) return torch::zeros_like(e);
  auto threshold = torch::quantile(values, 1.0 - q);
  return (e >= threshold).logical_and(real).to(torch::kFloat32);  // (N, Tc)
}

// ---------------------------------------------------------------------------------------------
// Homework step 4: chunked log-probs

namespace {

// The lm_head GEMM and the softmax run in at least fp32 (fp64 stays fp64), whatever the model's
// dtype: a bf16 logit carries 8 bits, so near |z| = 16 it moves in steps of 0.125, and a log-ratio
// error that size is most of the 0.2 clip band. The fp32 copy of a bf16 (V, D) weight is made once
// per call (forward, backward), not per chunk.
torch::ScalarType softmax_dtype(const torch::Tensor& w) {
  return at::promote_types(w.scalar_type(), torch::kFloat32);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Each row's sum_v a_v b_v over (c, V) operands as a batched GEMV: no (c, V) temporary.
torch::Tensor row_dot(const torch::Tensor& a, const torch::Tensor& b) {
  return at::bmm(a.unsqueeze(1), b.unsqueeze(2)).view({a.size(0), 1});  // (c, 1)
}

// One chunk's logits z = cap(h W^T) / temperature, (c, V), cap(y) = c tanh(y / c) where the model
// soft-caps (c > 0); w is already in the softmax dtype.
torch::Tensor chunk_logits(const torch::Tensor& hc, const torch::Tensor& w, double temperature, double cap) {
  auto z = torch::nn::functional::linear(hc.to(w.scalar_type()), w);
  if (cap > 0) z = softcap(z, cap);
  if (temperature != 1.0) z.mul_(1.0 / temperature);
  return z;
}

// Forward and backward both walk the rows in chunks; only one chunk's (rows, V) logits exist at a
// time. The big (c, V) passes are the cost once V is ~150K (the GEMMs aside): the forward makes
// 3 (log_softmax; exp for the entropy), the backward 4-6, all in place after the softmax.
struct ChunkedLogprobFn : public torch::autograd::Function<ChunkedLogprobFn> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor h, torch::Tensor w, torch::Tensor targets, double temperature,
                               int64_t chunk, bool with_entropy, double cap) {
    ctx->save_for_backward({h, w, targets});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["chunk"] = chunk;
    ctx->set_materialize_grads(false);  // an unused entropy output costs its backward nothing
    const int64_t D = h.size(-1);
    auto h2 = h.reshape({-1, D});        // (M, D), M = N * Tc
    auto t2 = targets.reshape({-1, 1});  // (M, 1)
    const int64_t M = h2.size(0);
    const auto sd = softmax_dtype(w);
    auto w_sd = w.to(sd);  // (V, D)
    auto logp = torch::empty({M}, h.options().dtype(sd));
    auto ent = torch::zeros({M}, h.options().dtype(sd));
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t c = std::min(chunk, M - s);
      auto lsm = torch::log_softmax(chunk_logits(h2.narrow(0, s, c), w_sd, temperature, cap), -1);  // (c, V)
      logp.narrow(0, s, c).copy_(lsm.gather(1, t2.narrow(0, s, c)).squeeze(1));
      if (with_entropy) ent.narrow(0, s, c).copy_(row_dot(lsm.exp(), lsm).neg().squeeze(1));  // H = -sum p log p
    }
    return {logp.view(targets.sizes()), ent.view(targets.sizes())};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto h = saved[0], w = saved[1], targets = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const double cap = ctx->saved_data["cap"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t D = h.size(-1);
    auto h2 = h.reshape({-1, D});
    auto t2 = targets.reshape({-1, 1});
    const int64_t M = h2.size(0);
    const auto sd = softmax_dtype(w);
    auto w_sd = w.to(sd);  // (V, D)
    auto g_logp = grads[0].defined() ? grads[0].reshape({-1, 1}).to(sd) : torch::Tensor();
    auto g_ent = grads[1].defined() ? grads[1].reshape({-1, 1}).to(sd) : torch::Tensor();
    auto grad_h = torch::zeros_like(h2);
    // A frozen lm_head (LoRA) needs no (V, D) gradient: neither its fp32 buffer nor its GEMMs.
    const bool want_w = ctx->needs_input_grad(1);
    auto grad_w = want_w ? torch::zeros(w.sizes(), w.options().dtype(sd)) : torch::Tensor();
    auto w_out = [&] { return want_w ? grad_w.to(w.scalar_type()) : torch::Tensor(); };
    if (!g_logp.defined() && !g_ent.defined()) return {grad_h.view(h.sizes()), w_out(), {}, {}, {}, {}, {}};
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t c = std::min(chunk, M - s);
      auto hc = h2.narrow(0, s, c).to(sd);                // (c, D)
      auto z = chunk_logits(hc, w_sd, temperature, cap);  // (c, V)
      auto p = torch::softmax(z, -1);                     // (c, V)
      // Soft-capped: dz/dy = 1 - tanh^2 = 1 - (z T / c)^2, taken before z becomes the gradient.
      auto slope = cap > 0 ? 1 - (z * (temperature / cap)).square() : torch::Tensor();  // (c, V)
      // dlogp/dz = onehot(target) - p;  dH/dz = p (E_p[z] - z); so
      // dL/dz = p * (g_ent (E_p[z] - z) - g_logp) + onehot * g_logp, built in place in z.
      torch::Tensor gz;
      if (g_ent.defined()) {
        auto ge = g_ent.narrow(0, s, c);
        z.sub_(row_dot(p, z)).mul_(-ge);  // g_ent (E_p[z] - z)
        if (g_logp.defined()) z.sub_(g_logp.narrow(0, s, c));
        gz = z.mul_(p);
      } else {
        gz = p.mul_(-g_logp.narrow(0, s, c));
      }
      if (g_logp.defined()) gz.scatter_add_(1, t2.narrow(0, s, c), g_logp.narrow(0, s, c));
      if (temperature != 1.0) gz.mul_(1.0 / temperature);
      if (cap > 0) gz.mul_(slope);
      grad_h.narrow(0, s, c).copy_(gz.mm(w_sd));  // (c, D), rounded to the model dtype once
      if (want_w) grad_w.addmm_(gz.t(), hc);      // (V, D) in the softmax dtype
    }
    return {grad_h.view(h.sizes()), w_out(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

int64_t logprob_chunk_rows(int64_t n_vocab) {
  constexpr int64_t kChunkBytes = int64_t(256) << 20;  // one (rows, V) fp32 logits block
  return std::clamp<int64_t>(kChunkBytes / (4 * std::max<int64_t>(1, n_vocab)), 16, 16384);
}

TokenLogprobs chunked_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature,
                               bool with_entropy, int64_t chunk, double softcap) {
  TORCH_CHECK(hidden.dim() == 3 && targets.dim() == 2 && hidden.size(0) == targets.size(0) && hidden.size(1) == targets.size(1),
              "hidden (N, Tc, D) and targets (N, Tc) must agree");
  TORCH_CHECK(chunk >= 0 && temperature > 0, "chunk >= 0 and temperature > 0");
  if (chunk == 0) chunk = logprob_chunk_rows(weight.size(0));
  auto out = ChunkedLogprobFn::apply(hidden, weight, targets, temperature, chunk, with_entropy, softcap);
  TokenLogprobs r;
  r.logprobs = out[0];
  if (with_entropy) r.entropy = out[1];
  return r;
}

TokenLogprobs naive_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature,
                             bool with_entropy, double cap) {
  const auto sd = softmax_dtype(weight);
  auto z = torch::nn::functional::linear(hidden.to(sd), weight.to(sd));  // (N, Tc, V)
  if (cap > 0) z = softcap(z, cap);
  z = z / temperature;
  auto lsm = torch::log_softmax(z, -1);
  TokenLogprobs r;
  r.logprobs = lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  if (with_entropy) r.entropy = -(lsm.exp() * lsm).sum(-1);
  return r;
}

TokenLogprobs compute_logprobs_from_model(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                          int64_t completion_len, double temperature, bool with_entropy, int64_t chunk) {
  const int64_t T = input_ids.size(1), Tc = completion_len;
  TORCH_CHECK(Tc >= 1 && Tc < T, "completion_len must be in [1, T)");
  auto hidden = model->forward_hidden(input_ids, attention_mask, positions_from_mask(attention_mask));  // (N, T, D)
  auto h = hidden.narrow(1, T - Tc - 1, Tc);       // positions Tp-1 .. T-2 predict the completion
  auto targets = input_ids.narrow(1, T - Tc, Tc);  // (N, Tc)
  return chunked_logprobs(h, model->output_weight(), targets, temperature, with_entropy, chunk, model->cfg.final_softcap);
}

TokenLogprobs compute_logprobs_shared_prompt(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                             const torch::Tensor& group, const torch::Tensor& completion_ids,
                                             const torch::Tensor& completion_mask, double temperature, bool with_entropy, int64_t chunk) {
  const int64_t Tp = prompt_ids.size(1), Tc = completion_ids.size(1);
  TORCH_CHECK(Tp >= 1 && Tc >= 1 && group.size(0) == completion_ids.size(0), "shared prompt: bad shapes");
  KVCache cache = KVCache::growing(model->cfg.n_layer);
  auto hp = model->forward_hidden(prompt_ids, prompt_mask, positions_from_mask(prompt_mask), &cache);          // (U, Tp, D)
  cache.select_rows(group);                                                                                    // K/V (n, Hkv, Tp, hd)
  auto mask = torch::cat({prompt_mask.index_select(0, group), completion_mask}, 1);                            // (n, Tp + Tc)
  auto hc = model->forward_hidden(completion_ids, mask, positions_from_mask(mask).narrow(1, Tp, Tc), &cache);  // (n, Tc, D)
  // The prompt's last position predicts completion token 0; completion position t predicts t + 1.
  auto h = torch::cat({hp.narrow(1, Tp - 1, 1).index_select(0, group), hc.narrow(1, 0, Tc - 1)}, 1);  // (n, Tc, D)
  return chunked_logprobs(h, model->output_weight(), completion_ids, temperature, with_entropy, chunk, model->cfg.final_softcap);
}

TokenLogprobs compute_logprobs_grouped(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                       const torch::Tensor& completion_ids, const torch::Tensor& completion_mask, int64_t G, int64_t begin,
                                       int64_t count, double temperature, bool with_entropy) {
  const int64_t first = begin / G, last = (begin + count - 1) / G;  // the groups the rows touch
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(prompt_ids.device());
  auto prompt_rows = torch::arange(first, last + 1, i64) * G;                     // (U,)
  auto group = torch::arange(begin, begin + count, i64).div(G, "floor") - first;  // (count,)
  return compute_logprobs_shared_prompt(model, prompt_ids.index_select(0, prompt_rows), prompt_mask.index_select(0, prompt_rows), group,
                                        completion_ids.narrow(0, begin, count), completion_mask.narrow(0, begin, count), temperature,
                                        with_entropy);
}

}  // namespace grpo
