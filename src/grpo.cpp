// grpo.cpp: the GRPO algorithm; formulas in grpo.h.
// References: DeepSeekMath (GRPO), DAPO (clip-higher, token-level loss), Dr. GRPO (constant
// normaliser), TRL's GRPOTrainer for the metric definitions. Departure: the warmup is
// lr * (update + 1) / warmup_steps, so the first update is not wasted with lr = 0 (HF uses update / warmup).
#include "grpo/grpo.h"
#include "grpo/lora.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Homework step 2: advantages

Advantages compute_advantages_grpo(const torch::Tensor& rewards, RewardScale scale, double eps) {
  TORCH_CHECK(rewards.dim() == 2 && rewards.size(1) >= 2, "rewards must be (B, G) with G >= 2, got ", rewards.sizes());
  auto r = rewards.to(torch::kFloat32);                            // (B, G)
  auto centered = r - r.mean(1, /*keepdim=*/true);                 // (B, G)
  auto flat = (std::get<0>(r.max(1, true)) - std::get<0>(r.min(1, true))) == 0;  // (B, 1) no signal
  torch::Tensor a;
  switch (scale) {
    case RewardScale::Group: a = centered / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + eps); break;
    case RewardScale::Batch: a = centered / (r.std(/*unbiased=*/true) + eps); break;
    case RewardScale::None: a = centered; break;
  }
  Advantages out;
  out.advantages = a.masked_fill(flat, 0.0);
  out.frac_reward_zero_std = double(flat.sum().item<int64_t>()) / double(r.size(0));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Homework step 3: policy loss

PolicyLossConfig policy_loss_config(const TrainConfig& cfg, int64_t n_sequences, int64_t n_tokens) {
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
  return plc;
}

PolicyLoss compute_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& advantages,
                               const torch::Tensor& mask, const PolicyLossConfig& cfg, const torch::Tensor& ref_logp,
                               const torch::Tensor& entropy, const torch::Tensor& pg_weight) {
  TORCH_CHECK(logp.sizes() == old_logp.sizes() && logp.sizes() == mask.sizes(), "logp, old_logp, mask must be (N, Tc)");
  TORCH_CHECK(advantages.dim() == 1 && advantages.size(0) == logp.size(0), "advantages must be (N,)");
  TORCH_CHECK(cfg.beta == 0 || ref_logp.defined(), "beta > 0 needs ref_logp");
  TORCH_CHECK(cfg.entropy_coef == 0 || entropy.defined(), "entropy_coef > 0 needs entropy");
  const int64_t N = logp.size(0);
  auto m = mask.to(torch::kFloat32);                                // (N, Tc)
  auto A = advantages.to(torch::kFloat32).unsqueeze(1);             // (N, 1)
  auto log_ratio = logp - old_logp;                                 // (N, Tc)
  if (cfg.sequence_level) log_ratio = (log_ratio * m).sum(1, true) / m.sum(1, true).clamp_min(1.0);  // (N, 1)
  auto ratio = torch::exp(log_ratio);                               // (N, Tc) or (N, 1)
  auto clipped = torch::clamp(ratio, 1.0 - cfg.clip_eps_low, 1.0 + cfg.clip_eps_high);
  auto capped = cfg.delta > 0 ? torch::clamp_max(ratio, cfg.delta) : ratio;
  auto per_token = -torch::min(capped * A, clipped * A);            // (N, Tc) or (N, 1)
  if (pg_weight.defined()) per_token = per_token * pg_weight;       // (N, Tc)
  torch::Tensor kl;
  if (cfg.beta > 0) {
    auto d = ref_logp - logp;
    kl = torch::exp(d) - d - 1.0;                                   // k3, >= 0
    if (cfg.bias_correction_kl) kl = kl * ratio;
    per_token = per_token + cfg.beta * kl;
  }
  if (cfg.entropy_coef > 0) per_token = per_token - cfg.entropy_coef * entropy;

  PolicyLoss out;
  auto masked = per_token * m;
  switch (cfg.aggregation) {
    case LossAggregation::Grpo: out.loss = (masked.sum(1) / m.sum(1).clamp_min(1.0)).mean(); break;
    case LossAggregation::Bnpo: out.loss = masked.sum() / m.sum().clamp_min(1.0); break;
    case LossAggregation::Dapo:
      out.loss = cfg.n_tokens_global > 0 ? masked.sum() / double(cfg.n_tokens_global) : masked.sum() / m.sum().clamp_min(1.0);
      break;
    case LossAggregation::DrGrpo: {
      TORCH_CHECK(cfg.max_new_tokens > 0, "dr_grpo needs max_new_tokens");
      const int64_t n = cfg.n_sequences_global > 0 ? cfg.n_sequences_global : N;
      out.loss = masked.sum() / double(n * cfg.max_new_tokens);
      break;
    }
  }

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

SamplerCorrection compute_sampler_correction(const torch::Tensor& logp, const torch::Tensor& sampler_logp,
                                             const torch::Tensor& mask, IsCorrectionMode mode, double clip_min, double clip_max) {
  TORCH_CHECK(logp.sizes() == sampler_logp.sizes() && logp.sizes() == mask.sizes(), "logp, sampler_logp, mask must be (N, Tc)");
  torch::NoGradGuard ng;
  auto m = mask.to(torch::kFloat32);                                              // (N, Tc)
  auto diff = (logp.detach().to(torch::kFloat32) - sampler_logp.to(torch::kFloat32)) * m;  // (N, Tc)
  const bool sequence = mode == IsCorrectionMode::SequenceTruncate || mode == IsCorrectionMode::SequenceMask;
  auto w = torch::exp(sequence ? diff.sum(1, true) : diff);                       // (N, 1) or (N, Tc)
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
torch::ScalarType softmax_dtype(const torch::Tensor& w) { return at::promote_types(w.scalar_type(), torch::kFloat32); }

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Each row's sum_v a_v b_v over (c, V) operands as a batched GEMV: no (c, V) temporary.
torch::Tensor row_dot(const torch::Tensor& a, const torch::Tensor& b) {
  return at::bmm(a.unsqueeze(1), b.unsqueeze(2)).view({a.size(0), 1});  // (c, 1)
}

// One chunk's logits z = h W^T / temperature, (c, V); w is already in the softmax dtype.
torch::Tensor chunk_logits(const torch::Tensor& hc, const torch::Tensor& w, double temperature) {
  auto z = torch::nn::functional::linear(hc.to(w.scalar_type()), w);
  if (temperature != 1.0) z.mul_(1.0 / temperature);
  return z;
}

// Forward and backward both walk the rows in chunks; only one chunk's (rows, V) logits exist at a
// time. The big (c, V) passes are the cost once V is ~150K (the GEMMs aside): the forward makes
// 3 (log_softmax; exp for the entropy), the backward 4-6, all in place after the softmax.
struct ChunkedLogprobFn : public torch::autograd::Function<ChunkedLogprobFn> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor h, torch::Tensor w, torch::Tensor targets,
                               double temperature, int64_t chunk, bool with_entropy) {
    ctx->save_for_backward({h, w, targets});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    ctx->set_materialize_grads(false);  // an unused entropy output costs its backward nothing
    const int64_t D = h.size(-1);
    auto h2 = h.reshape({-1, D});                            // (M, D), M = N * Tc
    auto t2 = targets.reshape({-1, 1});                      // (M, 1)
    const int64_t M = h2.size(0);
    const auto sd = softmax_dtype(w);
    auto w_sd = w.to(sd);                                    // (V, D)
    auto logp = torch::empty({M}, h.options().dtype(sd));
    auto ent = torch::zeros({M}, h.options().dtype(sd));
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t c = std::min(chunk, M - s);
      auto lsm = torch::log_softmax(chunk_logits(h2.narrow(0, s, c), w_sd, temperature), -1);  // (c, V)
      logp.narrow(0, s, c).copy_(lsm.gather(1, t2.narrow(0, s, c)).squeeze(1));
      if (with_entropy) ent.narrow(0, s, c).copy_(row_dot(lsm.exp(), lsm).neg().squeeze(1));  // H = -sum p log p
    }
    return {logp.view(targets.sizes()), ent.view(targets.sizes())};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto h = saved[0], w = saved[1], targets = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
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
    if (!g_logp.defined() && !g_ent.defined()) return {grad_h.view(h.sizes()), w_out(), {}, {}, {}, {}};
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t c = std::min(chunk, M - s);
      auto hc = h2.narrow(0, s, c).to(sd);        // (c, D)
      auto z = chunk_logits(hc, w_sd, temperature);  // (c, V)
      auto p = torch::softmax(z, -1);             // (c, V)
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
      grad_h.narrow(0, s, c).copy_(gz.mm(w_sd));  // (c, D), rounded to the model dtype once
      if (want_w) grad_w.addmm_(gz.t(), hc);      // (V, D) in the softmax dtype
    }
    return {grad_h.view(h.sizes()), w_out(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

int64_t logprob_chunk_rows(int64_t n_vocab) {
  constexpr int64_t kChunkBytes = int64_t(256) << 20;  // one (rows, V) fp32 logits block
  return std::clamp<int64_t>(kChunkBytes / (4 * std::max<int64_t>(1, n_vocab)), 16, 16384);
}

TokenLogprobs chunked_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                               double temperature, bool with_entropy, int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 3 && targets.dim() == 2 && hidden.size(0) == targets.size(0) && hidden.size(1) == targets.size(1),
              "hidden (N, Tc, D) and targets (N, Tc) must agree");
  TORCH_CHECK(chunk >= 0 && temperature > 0, "chunk >= 0 and temperature > 0");
  if (chunk == 0) chunk = logprob_chunk_rows(weight.size(0));
  auto out = ChunkedLogprobFn::apply(hidden, weight, targets, temperature, chunk, with_entropy);
  TokenLogprobs r;
  r.logprobs = out[0];
  if (with_entropy) r.entropy = out[1];
  return r;
}

TokenLogprobs naive_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                             double temperature, bool with_entropy) {
  const auto sd = softmax_dtype(weight);
  auto z = torch::nn::functional::linear(hidden.to(sd), weight.to(sd)) / temperature;  // (N, Tc, V)
  auto lsm = torch::log_softmax(z, -1);
  TokenLogprobs r;
  r.logprobs = lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  if (with_entropy) r.entropy = -(lsm.exp() * lsm).sum(-1);
  return r;
}

TokenLogprobs compute_logprobs_from_model(Qwen2ForCausalLM& model, const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask, int64_t completion_len, double temperature,
                                          bool with_entropy, int64_t chunk) {
  const int64_t T = input_ids.size(1), Tc = completion_len;
  TORCH_CHECK(Tc >= 1 && Tc < T, "completion_len must be in [1, T)");
  auto hidden = model->forward_hidden(input_ids, attention_mask, positions_from_mask(attention_mask));  // (N, T, D)
  auto h = hidden.narrow(1, T - Tc - 1, Tc);        // positions Tp-1 .. T-2 predict the completion
  auto targets = input_ids.narrow(1, T - Tc, Tc);   // (N, Tc)
  return chunked_logprobs(h, model->output_weight(), targets, temperature, with_entropy, chunk);
}

TokenLogprobs compute_logprobs_shared_prompt(Qwen2ForCausalLM& model, const torch::Tensor& prompt_ids,
                                             const torch::Tensor& prompt_mask, const torch::Tensor& group,
                                             const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                                             double temperature, bool with_entropy, int64_t chunk) {
  const int64_t Tp = prompt_ids.size(1), Tc = completion_ids.size(1);
  TORCH_CHECK(Tp >= 1 && Tc >= 1 && group.size(0) == completion_ids.size(0), "shared prompt: bad shapes");
  KVCache cache = KVCache::growing(model->cfg.n_layer);
  auto hp = model->forward_hidden(prompt_ids, prompt_mask, positions_from_mask(prompt_mask), &cache);  // (U, Tp, D)
  cache.select_rows(group);                                                                  // K/V (n, Hkv, Tp, hd)
  auto mask = torch::cat({prompt_mask.index_select(0, group), completion_mask}, 1);         // (n, Tp + Tc)
  auto hc = model->forward_hidden(completion_ids, mask, positions_from_mask(mask).narrow(1, Tp, Tc), &cache);  // (n, Tc, D)
  // The prompt's last position predicts completion token 0; completion position t predicts t + 1.
  auto h = torch::cat({hp.narrow(1, Tp - 1, 1).index_select(0, group), hc.narrow(1, 0, Tc - 1)}, 1);  // (n, Tc, D)
  return chunked_logprobs(h, model->output_weight(), completion_ids, temperature, with_entropy, chunk);
}

TokenLogprobs compute_logprobs_grouped(Qwen2ForCausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                       const torch::Tensor& completion_ids, const torch::Tensor& completion_mask, int64_t G,
                                       int64_t begin, int64_t count, double temperature, bool with_entropy) {
  const int64_t first = begin / G, last = (begin + count - 1) / G;  // the groups the rows touch
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(prompt_ids.device());
  auto prompt_rows = torch::arange(first, last + 1, i64) * G;                       // (U,)
  auto group = torch::arange(begin, begin + count, i64).div(G, "floor") - first;    // (count,)
  return compute_logprobs_shared_prompt(model, prompt_ids.index_select(0, prompt_rows), prompt_mask.index_select(0, prompt_rows),
                                        group, completion_ids.narrow(0, begin, count), completion_mask.narrow(0, begin, count),
                                        temperature, with_entropy);
}

// ---------------------------------------------------------------------------------------------
// Homework step 5: the step

double lr_at(int64_t step, int64_t total_steps, const TrainConfig& cfg) {
  const double lr = cfg.learning_rate;
  if (step < cfg.warmup_steps) return lr * double(step + 1) / cfg.warmup_steps;
  const double span = std::max<int64_t>(1, total_steps - cfg.warmup_steps);
  const double progress = std::min(1.0, double(step - cfg.warmup_steps) / span);
  if (cfg.lr_schedule == LrSchedule::Cosine) return lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (cfg.lr_schedule == LrSchedule::Linear) return lr * (1.0 - progress);
  return lr;
}

GrpoState::GrpoState(TrainConfig c, Qwen2ForCausalLM p, int64_t total, Qwen2ForCausalLM reference)
    : cfg(std::move(c)), policy(std::move(p)), total_steps(total), rewards(std::make_shared<RewardSet>(make_reward_set(cfg))) {
  torch::NoGradGuard ng;
  policy->gradient_checkpointing = cfg.gradient_checkpointing;
  check_attention(cfg.attention);
  policy->set_attention(cfg.attention);
  if (cfg.lora_rank > 0 && !has_lora(policy)) add_lora(policy, lora_config(cfg), static_cast<uint64_t>(cfg.seed));
  for (auto& item : policy->named_parameters())
    if (cfg.lora_rank == 0 || is_lora_name(item.key())) params.push_back(item.value()), param_names.push_back(item.key());
  if (!params.empty() && params[0].scalar_type() != torch::kFloat32)
    for (auto& q : params) master.push_back(q.detach().to(torch::kFloat32).clone());
  if (cfg.beta > 0 && cfg.lora_rank == 0) {  // frozen: the given reference, else a copy of the initial policy
    if (reference) {
      ref = reference;
    } else {
      auto opts = torch::TensorOptions().dtype(params[0].scalar_type()).device(params[0].device());
      ref = Qwen2ForCausalLM(policy->cfg, opts);
      auto src = policy->named_parameters();
      for (auto& item : ref->named_parameters()) item.value().copy_(src[item.key()]);
    }
    for (auto& q : ref->parameters()) q.set_requires_grad(false);
    ref->eval();
    ref->set_attention(policy->attention);
  }
  auto opt = torch::optim::AdamWOptions(cfg.learning_rate)
                 .betas({cfg.adam_beta1, cfg.adam_beta2})
                 .eps(cfg.adam_eps)
                 .weight_decay(cfg.weight_decay);
  optimizer = std::make_unique<torch::optim::AdamW>(trainable(), opt);
}

std::vector<torch::Tensor> GrpoState::trainable() { return master.empty() ? params : master; }

namespace {

torch::Tensor as_float(const std::vector<float>& v, int64_t B, int64_t G) {
  return torch::tensor(v, torch::kFloat32).view({B, G});
}

}  // namespace

RolloutBatch rollout_and_score(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch,
                               const std::vector<uint64_t>& keys) {
  const TrainConfig& cfg = st.cfg;
  const int64_t B = static_cast<int64_t>(batch.size()), G = cfg.group_size;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ex : batch) prompts.push_back(tokenize_prompt(tok, cfg.system_prompt, ex.question, cfg.max_prompt_tokens).ids);
  SamplingParams sp;
  sp.temperature = cfg.temperature;
  sp.top_p = cfg.top_p;
  sp.top_k = cfg.top_k;
  sp.min_p = cfg.min_p;
  sp.repetition_penalty = cfg.repetition_penalty;
  sp.max_new_tokens = cfg.max_new_tokens;
  sp.decode = cfg.decode_mode;
  sp.decoder = st.decoder;
  apply_model_limits(sp, tok, special, st.policy->cfg.n_vocab);
  sp.seed = static_cast<uint64_t>(cfg.seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(st.step);
  RolloutBatch rb;
  rb.rollout = generate(st.policy, prompts, G, sp, keys);

  const auto completion_ids = completion_token_ids(rb.rollout);
  std::vector<ScoreItem> items;
  for (int64_t n = 0; n < B * G; ++n) {
    rb.completions.push_back(tok.decode(completion_ids[n], /*skip_special=*/true));
    items.push_back({batch[n / G].question, rb.completions.back(), batch[n / G].gold, static_cast<int64_t>(completion_ids[n].size())});
  }
  std::vector<float> total, correct;
  std::map<std::string, std::vector<float>> by_fn;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<RewardResult> scored = st.rewards->score_batch(items, st.step + 1);
  rb.reward_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rb.temperature = cfg.temperature;
  rb.examples.assign(keys.begin(), keys.end());
  for (const RewardResult& r : scored) {
    if (!r.error.empty() && rb.reward_errors++ == 0) rb.reward_error = r.error;
    total.push_back(r.total);
    correct.push_back(r.correct ? 1.0f : 0.0f);
    for (const auto& [fn, v] : r.by_fn) by_fn[fn].push_back(v);
  }
  rb.rewards = as_float(total, B, G);
  rb.correct = as_float(correct, B, G);
  for (const auto& [fn, v] : by_fn) rb.reward_by_fn[fn] = as_float(v, B, G);
  return rb;
}

RolloutBatch gather_groups(const std::vector<RolloutBatch>& parts, const std::vector<std::pair<size_t, int64_t>>& picks) {
  TORCH_CHECK(!parts.empty() && !picks.empty(), "gather_groups: nothing to gather");
  const int64_t G = parts[0].rewards.size(1);
  int64_t Tp = 0, Tc = 0;
  for (const auto& p : parts) Tp = std::max(Tp, p.rollout.prompt_ids.size(1)), Tc = std::max(Tc, p.rollout.completion_ids.size(1));
  auto pad = [](const torch::Tensor& x, int64_t width, bool left) {  // zeros: masked out either way
    const int64_t extra = width - x.size(1);
    if (extra == 0) return x;
    auto z = torch::zeros({x.size(0), extra}, x.options());
    return left ? torch::cat({z, x}, 1) : torch::cat({x, z}, 1);
  };
  std::vector<torch::Tensor> pid, pm, cid, cm, lp, rew, cor;
  std::map<std::string, std::vector<torch::Tensor>> by_fn;
  RolloutBatch out;
  out.temperature = parts[0].temperature;
  for (const auto& [pi, g] : picks) {
    const RolloutBatch& p = parts.at(pi);
    const Rollout& r = p.rollout;
    auto rows = [&](const torch::Tensor& x) { return x.narrow(0, g * G, G); };
    pid.push_back(pad(rows(r.prompt_ids), Tp, true)), pm.push_back(pad(rows(r.prompt_mask), Tp, true));
    cid.push_back(pad(rows(r.completion_ids), Tc, false)), cm.push_back(pad(rows(r.completion_mask), Tc, false));
    if (r.logprobs.defined()) lp.push_back(pad(rows(r.logprobs), Tc, false));
    rew.push_back(p.rewards.narrow(0, g, 1)), cor.push_back(p.correct.narrow(0, g, 1));
    for (const auto& [fn, v] : p.reward_by_fn) by_fn[fn].push_back(v.narrow(0, g, 1));
    for (int64_t i = 0; i < G; ++i) out.rollout.finish.push_back(r.finish[g * G + i]), out.completions.push_back(p.completions[g * G + i]);
    if (!p.examples.empty()) out.examples.push_back(p.examples[g]);
  }
  out.rollout.prompt_ids = torch::cat(pid), out.rollout.prompt_mask = torch::cat(pm);          // (N, Tp)
  out.rollout.completion_ids = torch::cat(cid), out.rollout.completion_mask = torch::cat(cm);  // (N, Tc)
  if (lp.size() == picks.size()) out.rollout.logprobs = torch::cat(lp);
  out.rewards = torch::cat(rew), out.correct = torch::cat(cor);                                // (B, G)
  for (auto& [fn, v] : by_fn) out.reward_by_fn[fn] = torch::cat(v);
  for (const auto& p : parts) {  // the work of every rollout, kept or not
    out.reward_seconds += p.reward_seconds;
    out.rollout.prefill_tokens += p.rollout.prefill_tokens, out.rollout.decode_tokens += p.rollout.decode_tokens;
    out.rollout.prefill_seconds += p.rollout.prefill_seconds, out.rollout.decode_seconds += p.rollout.decode_seconds;
    out.rollout.decode_shapes += p.rollout.decode_shapes;
  }
  return out;
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
  torch::Tensor rewards;              // (B, G): every rank's groups, gathered once
  Advantages adv;                     // (b, G): this rank's groups
  torch::Tensor A;                    // (N,)
  torch::Tensor truncated;            // (N,) 1 where cut at max_new_tokens
  torch::Tensor cmask;                // (N, Tc) float: the tokens the loss sees
  torch::Tensor sampler_logp;         // (N, Tc) when the sampler correction is on
  PolicyLossConfig plc;
  double micro_scale = 1;             // grpo / bnpo average the K W micro-batch losses; dapo / dr_grpo sum them
  int64_t n_tokens_global = 0;        // completion tokens the loss sees, over every rank
  double temperature = 1;
};

UpdateBatch prepare_update(const GrpoState& st, const RolloutBatch& rb) {
  const TrainConfig& cfg = st.cfg;
  const Rollout& r = rb.rollout;
  const auto device = r.completion_ids.device();
  UpdateBatch u;
  u.N = r.completion_ids.size(0), u.K = cfg.grad_accum, u.mb = u.N / u.K, u.G = rb.rewards.size(1);
  TORCH_CHECK(u.N % u.K == 0, "grad_accum must divide N = ", u.N);
  u.temperature = rb.temperature;
  // The sampler's width is max_new_tokens; the update spans only what was generated.
  u.Tc = std::max<int64_t>(1, r.completion_mask.sum(1).max().item<int64_t>());
  u.comp_ids = r.completion_ids.narrow(1, 0, u.Tc);                              // (N, Tc)
  u.comp_mask = r.completion_mask.narrow(1, 0, u.Tc);                            // (N, Tc)
  // Gradient checkpointing recomputes whole rows, so it keeps the full-row forward.
  auto row_group = torch::arange(u.N, torch::TensorOptions().dtype(torch::kInt64).device(device)).div(u.G, "floor");  // (N,)
  u.share = !cfg.gradient_checkpointing && torch::equal(r.prompt_ids, r.prompt_ids.index_select(0, row_group * u.G));
  if (!u.share) u.ids = torch::cat({r.prompt_ids, u.comp_ids}, 1), u.attn = torch::cat({r.prompt_mask, u.comp_mask}, 1);

  // Advantages over the whole step's B groups (batch scaling needs every rank's rewards); this
  // rank keeps its own rows.
  Dist& dist = *st.dist;
  const int64_t b = rb.rewards.size(0);
  u.rewards = dist.all_gather(rb.rewards);                                          // (B, G)
  u.adv = compute_advantages_grpo(u.rewards, cfg.scale_rewards);                    // (B, G)
  u.adv.advantages = u.adv.advantages.narrow(0, dist.rank() * b, b);                // (b, G)
  u.A = u.adv.advantages.flatten().to(device);                                   // (N,)
  std::vector<float> trunc_v;
  for (auto f : r.finish) trunc_v.push_back(f == FinishReason::Length ? 1.0f : 0.0f);
  u.truncated = torch::tensor(trunc_v, torch::kFloat32).to(device);              // (N,)
  u.cmask = u.comp_mask.to(torch::kFloat32);                                     // (N, Tc)
  if (cfg.mask_truncated_completions) u.cmask = u.cmask * (1.0 - u.truncated).unsqueeze(1);
  if (cfg.vllm_importance_sampling_correction && r.logprobs.defined()) u.sampler_logp = r.logprobs.narrow(1, 0, u.Tc);
  // dapo and dr_grpo divide by the step's global counts, so the ranks' losses add up to the
  // one-process loss; grpo and bnpo average K micro-batches on each of W ranks.
  u.n_tokens_global = static_cast<int64_t>(dist.all_reduce(u.cmask.sum().item<double>()));
  u.plc = policy_loss_config(cfg, u.N * dist.world_size(), u.n_tokens_global);
  const bool averaged = u.plc.aggregation == LossAggregation::Grpo || u.plc.aggregation == LossAggregation::Bnpo;
  u.micro_scale = averaged ? 1.0 / double(u.K * dist.world_size()) : 1.0;
  return u;
}

torch::Tensor rows_of(const UpdateBatch& u, const torch::Tensor& x, int64_t k) { return x.narrow(0, k * u.mb, u.mb); }

// Log-probs of micro-batch k's completions (mb, Tc) under model m.
TokenLogprobs micro_logprobs(const UpdateBatch& u, const Rollout& r, Qwen2ForCausalLM& m, int64_t k, bool with_entropy) {
  if (u.share)
    return compute_logprobs_grouped(m, r.prompt_ids, r.prompt_mask, u.comp_ids, u.comp_mask, u.G, k * u.mb, u.mb, u.temperature, with_entropy);
  return compute_logprobs_from_model(m, rows_of(u, u.ids, k), rows_of(u, u.attn, k), u.Tc, u.temperature, with_entropy);
}

// All N rows' log-probs under m, without gradients: old (mu > 1) and reference (beta > 0) log-probs.
torch::Tensor logprobs_nograd(const UpdateBatch& u, const Rollout& r, Qwen2ForCausalLM& m) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  for (int64_t k = 0; k < u.K; ++k) parts.push_back(micro_logprobs(u, r, m, k, false).logprobs);
  return torch::cat(parts, 0);  // (N, Tc)
}

// Token-weighted means of the loss metrics over the micro-batches and passes; the sampler
// correction's over the first pass.
struct UpdateMetrics {
  double loss = 0, kl = 0, clip_lo = 0, clip_hi = 0, clip_reg = 0, ent = 0, grad_norm = 0, lr = 0;
  int64_t skipped = 0;
  double is_diff_sum = 0, is_diff_max = 0, is_ratio_sum = 0, is_ratio_min = INFINITY, is_ratio_max = 0;
  int64_t is_tokens = 0, is_ratios = 0, entropy_kept = 0;
};

}  // namespace

void backward_micro(GrpoState& st, const torch::Tensor& loss) {
  loss.backward();
  if (st.master.empty()) return;
  torch::NoGradGuard ng;
  auto& params = st.params;
  for (size_t i = 0; i < params.size(); ++i) {
    auto& g = params[i].mutable_grad();
    if (!g.defined()) continue;
    auto& mg = st.master[i].mutable_grad();
    if (mg.defined()) mg.add_(g.to(torch::kFloat32));
    else mg = g.to(torch::kFloat32);
    g = torch::Tensor();
  }
}

StepStats update_policy(GrpoState& st, const RolloutBatch& rb) {
  const TrainConfig& cfg = st.cfg;
  const Rollout& r = rb.rollout;
  const UpdateBatch u = prepare_update(st, rb);

  // ---- old (mu > 1) and reference (beta > 0) log-probs
  torch::Tensor old_logp, ref_logp;
  if (cfg.num_iterations > 1) old_logp = logprobs_nograd(u, r, st.policy);
  if (cfg.beta > 0 && st.ref) {
    ref_logp = logprobs_nograd(u, r, st.ref);
  } else if (cfg.beta > 0) {  // LoRA: the reference is the base, i.e. the policy with its adapters off
    LoraDisabled base(st.policy);
    ref_logp = logprobs_nograd(u, r, st.policy);
  }

  // ---- mu passes over the batch, each one optimizer update of K accumulated micro-batches
  st.policy->train();
  UpdateMetrics um;
  Dist& dist = *st.dist;
  const double n_tok_all = std::max<double>(1.0, double(u.n_tokens_global)) * cfg.num_iterations;
  for (int64_t it = 0; it < cfg.num_iterations; ++it) {
    st.policy->zero_grad();
    st.optimizer->zero_grad();
    double loss_it = 0;
    for (int64_t k = 0; k < u.K; ++k) {
      auto rows = [&](const torch::Tensor& x) { return rows_of(u, x, k); };
      TokenLogprobs lp = micro_logprobs(u, r, st.policy, k, /*with_entropy=*/true);
      auto old = old_logp.defined() ? rows(old_logp) : lp.logprobs.detach();  // the trainer's log-probs at rollout time
      torch::Tensor pg_weight;
      if (u.sampler_logp.defined()) {
        SamplerCorrection sc = compute_sampler_correction(old, rows(u.sampler_logp), rows(u.cmask), cfg.vllm_importance_sampling_mode,
                                                          cfg.vllm_importance_sampling_clip_min, cfg.vllm_importance_sampling_clip_max);
        pg_weight = sc.weight;
        if (it == 0) {
          um.is_diff_sum += sc.logp_diff_sum, um.is_diff_max = std::max(um.is_diff_max, sc.logp_diff_max), um.is_tokens += sc.n_tokens;
          um.is_ratio_sum += sc.ratio_sum, um.is_ratios += sc.n_ratios;
          if (sc.n_ratios > 0) um.is_ratio_min = std::min(um.is_ratio_min, sc.ratio_min), um.is_ratio_max = std::max(um.is_ratio_max, sc.ratio_max);
        }
      }
      if (cfg.top_entropy_quantile < 1.0) {
        auto keep = top_entropy_mask(lp.entropy, rows(u.cmask), cfg.top_entropy_quantile);  // (mb, Tc)
        if (it == 0) um.entropy_kept += static_cast<int64_t>(keep.sum().item<double>());
        pg_weight = pg_weight.defined() ? pg_weight * keep : keep;
      }
      PolicyLoss pl = compute_policy_loss(lp.logprobs, old, rows(u.A), rows(u.cmask), u.plc,
                                          ref_logp.defined() ? rows(ref_logp) : torch::Tensor(), lp.entropy, pg_weight);
      auto loss = pl.loss * u.micro_scale;
      loss_it += loss.item<double>();
      if (std::isfinite(loss_it)) backward_micro(st, loss);
      const double w = double(pl.n_tokens) / n_tok_all;
      um.kl += pl.kl_mean * w, um.clip_lo += pl.clip_ratio_low * w, um.clip_hi += pl.clip_ratio_high * w;
      um.clip_reg += pl.clip_ratio_region * w, um.ent += pl.entropy_mean * w;
    }
    loss_it = dist.all_reduce(loss_it);  // the ranks' shares: a non-finite one skips the update on every rank
    UpdateResult res = apply_update(st, loss_it, st.step * cfg.num_iterations + it, st.total_steps * cfg.num_iterations);
    um.skipped += !res.applied;
    um.loss += loss_it / cfg.num_iterations;
    um.grad_norm = res.grad_norm;
    um.lr = res.lr;
  }
  ++st.step;
  if (cfg.sync_ref_model && st.step % cfg.ref_model_sync_steps == 0) sync_reference(st, cfg.ref_model_mixup_alpha);

  // ---- metrics (names as in TRL where they exist), over every rank's rows: sums and extrema
  // reduced, per-sequence values gathered
  {
    auto sums = dist.all_reduce({um.kl, um.clip_lo, um.clip_hi, um.clip_reg, um.ent, um.is_diff_sum, um.is_ratio_sum,
                                 double(um.is_tokens), double(um.is_ratios), double(um.entropy_kept)});
    um.kl = sums[0], um.clip_lo = sums[1], um.clip_hi = sums[2], um.clip_reg = sums[3], um.ent = sums[4];
    um.is_diff_sum = sums[5], um.is_ratio_sum = sums[6];
    um.is_tokens = int64_t(sums[7]), um.is_ratios = int64_t(sums[8]), um.entropy_kept = int64_t(sums[9]);
    auto maxes = dist.all_reduce({um.is_diff_max, um.is_ratio_max, -um.is_ratio_min}, Dist::Op::Max);
    um.is_diff_max = maxes[0], um.is_ratio_max = maxes[1], um.is_ratio_min = -maxes[2];
  }
  StepStats stats;
  auto& M = stats.metrics;
  auto lens = dist.all_gather(r.completion_mask.sum(1).to(torch::kFloat32));  // (N_global,)
  M["loss"] = um.loss;
  M["lr"] = um.lr;
  M["reward_mean"] = u.rewards.mean().item<double>();
  M["reward_std"] = u.rewards.std().item<double>();
  M["accuracy"] = dist.all_gather(rb.correct).mean().item<double>();
  for (const auto& [fn, v] : rb.reward_by_fn) M["reward/" + fn] = dist.all_gather(v).mean().item<double>();
  M["frac_reward_zero_std"] = u.adv.frac_reward_zero_std;
  M["kl"] = um.kl;
  M["clip_ratio_low"] = um.clip_lo;
  M["clip_ratio_high"] = um.clip_hi;
  M["clip_ratio_region"] = um.clip_reg;
  M["entropy"] = um.ent;
  M["completion_len_mean"] = lens.mean().item<double>();
  M["completion_len_max"] = lens.max().item<double>();
  M["truncated_frac"] = dist.all_gather(u.truncated).mean().item<double>();
  M["grad_norm"] = um.grad_norm;
  M["skipped"] = double(um.skipped);
  if (u.sampler_logp.defined()) {
    M["sampling/sampling_logp_difference/mean"] = um.is_diff_sum / std::max<int64_t>(1, um.is_tokens);
    M["sampling/sampling_logp_difference/max"] = um.is_diff_max;
    M["sampling/importance_sampling_ratio/mean"] = um.is_ratio_sum / std::max<int64_t>(1, um.is_ratios);
    M["sampling/importance_sampling_ratio/min"] = um.is_ratios > 0 ? um.is_ratio_min : 0.0;
    M["sampling/importance_sampling_ratio/max"] = um.is_ratio_max;
  }
  if (cfg.top_entropy_quantile < 1.0) M["entropy_mask_frac"] = double(um.entropy_kept) / std::max<double>(1.0, double(u.n_tokens_global));
  stats.advantages = u.adv.advantages;
  stats.skipped = um.skipped > 0;
  return stats;
}

UpdateResult apply_update(GrpoState& st, double loss_value, int64_t update, int64_t total_updates) {
  UpdateResult u;
  auto& params = st.params;
  auto trainable = st.trainable();  // the gradients live here (fp32 masters: accumulated by backward_micro)
  const double max_norm = st.cfg.max_grad_norm > 0 ? st.cfg.max_grad_norm : std::numeric_limits<double>::infinity();
  // loss_value is the same on every rank, so they all take the same branch; after the sum every
  // rank holds the same gradient, norm and skip decision.
  if (std::isfinite(loss_value)) st.dist->all_reduce_grads(trainable);
  u.grad_norm = std::isfinite(loss_value) ? torch::nn::utils::clip_grad_norm_(trainable, max_norm) : NAN;
  u.lr = lr_at(update, total_updates, st.cfg);
  auto clear = [&] {
    st.policy->zero_grad();
    st.optimizer->zero_grad();
  };
  if (!std::isfinite(loss_value) || !std::isfinite(u.grad_norm)) {  // never applied; logged and counted
    ++st.skipped_updates;
    clear();
    return u;
  }
  for (auto& g : st.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(u.lr);
  st.optimizer->step();
  if (!st.master.empty()) {  // fp32 master weights: the update happens in fp32, the model gets the rounded result
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(st.master[i]);
  }
  clear();
  u.applied = true;
  return u;
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

StepStats train_grpo_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch,
                          const std::vector<uint64_t>& keys) {
  return update_policy(st, rollout_and_score(st, tok, special, batch, keys));
}

}  // namespace grpo
