// Tests for grpo.h: every function with hand-computed numbers (written out beside each check),
// chunked log-probs vs the naive path (value and gradient), and the training step: determinism,
// direction of the update, non-finite skipping, fp32 master weights.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "grpo/model/model_io.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_step.h"
#include "grpo/step/offline.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;

namespace {

torch::Tensor t2(std::vector<float> v, int64_t r, int64_t c) {
  return torch::tensor(v).view({r, c});
}

const TestPreset& tiny_preset() {
  return test_presets()[0];
}

std::string tiny_dir() {
  static std::string dir;
  if (dir.empty()) {
    dir = temp_dir() + "/tiny";
    write_test_model(dir, tiny_preset());
  }
  return dir;
}

CausalLM tiny_model(torch::Dtype dt = torch::kFloat32, torch::Device device = torch::kCPU) {
  return load_causal_lm(tiny_dir(), dt, device);
}

class GrpoDevice : public OnDevice {};

std::unique_ptr<HfTokenizer> byte_tokenizer() {
  return HfTokenizer::from_json(byte_tokenizer_json(), "byte-tokenizer");
}

TrainConfig step_config() {
  TrainConfig c;
  c.model_path = tiny_dir();
  c.group_size = 4;
  c.prompts_per_step = 2;
  c.max_new_tokens = 6;
  c.max_prompt_tokens = 256;
  c.learning_rate = 1e-3;
  c.grad_accum = 2;
  c.system_prompt = "S";
  return c;
}

std::vector<torch::Tensor> snapshot(CausalLM& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m->parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same_bits(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

// Sum of completion-token log-probs per sequence, (N,).
torch::Tensor seq_logp(CausalLM& m, const Rollout& r) {
  torch::NoGradGuard ng;
  auto ids = torch::cat({r.prompt_ids, r.completion_ids}, 1), attn = torch::cat({r.prompt_mask, r.completion_mask}, 1);
  auto lp = compute_logprobs_from_model(m, ids, attn, r.completion_ids.size(1)).logprobs;
  return (lp * r.completion_mask).sum(1);
}

RolloutBatch make_rollout(CausalLM& m, std::vector<float> rewards, int64_t B, int64_t G) {
  SamplingParams sp;
  sp.max_new_tokens = 6;
  sp.seed = 5;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < B; ++b) prompts.push_back({int32_t(10 + b), 20, 30, int32_t(40 + b)});
  RolloutBatch rb;
  rb.rollout = generate(m, prompts, G, sp);
  rb.rewards = t2(rewards, B, G);
  rb.correct = (rb.rewards > 0.5).to(torch::kFloat32);
  return rb;
}

// update_policy on a one-process rollout, with the advantages train_grpo_step would give it; the
// step counted as train_grpo_step counts it.
StepMetrics update(GrpoState& st, const RolloutBatch& rb) {
  StepMetrics m = update_policy(st, rb, compute_advantages_grpo(rb.rewards, st.cfg.scale_rewards).advantages);
  st.step += 1;
  if (reference_sync_due(st.cfg, st.step)) sync_reference(st, st.cfg.ref_model_mixup_alpha);
  return m;
}

}  // namespace

GRPO_INSTANTIATE_ON_DEVICES(GrpoDevice);

// ---------------------------------------------------------------------------------------------
// Homework step 2: advantages

TEST(Grpo, AdvantagesGroupScale) {
  auto r = t2({1, 0, 0, 1, /**/ 0, 0, 0, 0, /**/ 1, 1, 1, 0}, 3, 4);
  Advantages a = compute_advantages_grpo(r, RewardScale::Group);
  // group 0: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3); A = +-0.5 / (sqrt(1/3) + 1e-4)
  const double a0 = 0.5 / (std::sqrt(1.0 / 3) + 1e-4);
  // group 2: mean 0.75, unbiased std sqrt((3 * 0.0625 + 0.5625) / 3) = 0.5
  const double a2 = 0.25 / (0.5 + 1e-4), a2n = -0.75 / (0.5 + 1e-4);
  auto want = t2({float(a0), float(-a0), float(-a0), float(a0), 0, 0, 0, 0, float(a2), float(a2), float(a2), float(a2n)}, 3, 4);
  EXPECT_TRUE(torch::allclose(a.advantages, want, 1e-6, 1e-6)) << a.advantages;
  EXPECT_NEAR(a.frac_reward_zero_std, 1.0 / 3, 1e-9);  // group 1 carries no signal
}

TEST(Grpo, AdvantagesBatchAndNoneScale) {
  auto r = t2({1, 0, 0, 1, /**/ 0, 0, 0, 0, /**/ 1, 1, 1, 0}, 3, 4);
  // batch: five 1s and seven 0s -> unbiased var 12/11 * (5/12) * (7/12) = 35/132
  const double s = std::sqrt(35.0 / 132) + 1e-4;
  auto b = compute_advantages_grpo(r, RewardScale::Batch).advantages;
  EXPECT_NEAR(b[0][0].item<double>(), 0.5 / s, 1e-6);
  EXPECT_NEAR(b[2][3].item<double>(), -0.75 / s, 1e-6);
  EXPECT_EQ(b[1].abs().sum().item<float>(), 0.0f);
  auto n = compute_advantages_grpo(r, RewardScale::None).advantages;
  EXPECT_TRUE(torch::allclose(n, t2({0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 0.25, 0.25, 0.25, -0.75}, 3, 4)));
  // Equal non-zero rewards: exactly 0, never NaN, whatever the scale.
  auto same = compute_advantages_grpo(t2({0.3f, 0.3f, 0.3f}, 1, 3), RewardScale::Group);
  EXPECT_EQ(same.advantages.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(same.frac_reward_zero_std, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Homework step 3: policy loss

namespace {
// ratios [[1.5, 0.7], [1.1, 9.9 (masked)]], advantages [+1, -1], old_logp = 0
struct LossCase {
  explicit LossCase(torch::Device d)
      : logp(torch::log(t2({1.5, 0.7, 1.1, 9.9}, 2, 2)).to(d)),
        old(torch::zeros({2, 2}, d)),
        adv(torch::tensor({1.0f, -1.0f}).to(d)),
        mask(t2({1, 1, 1, 0}, 2, 2).to(d)) {}
  torch::Tensor logp, old, adv, mask;
};
}  // namespace

TEST_P(GrpoDevice, PolicyLossAggregations) {
  LossCase c(device());
  PolicyLossConfig cfg;  // eps 0.2 / 0.2
  // per token: row 0 (A=+1): -min(1.5, 1.2) = -1.2 ; -min(0.7, 0.8) = -0.7
  //            row 1 (A=-1): -min(-1.1, -1.1) = 1.1 ; masked
  cfg.aggregation = LossAggregation::Grpo;  // mean(-0.95, 1.1) = 0.075
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), 0.075, 1e-6);
  cfg.aggregation = LossAggregation::Bnpo;  // (-1.2 - 0.7 + 1.1) / 3
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), -0.8 / 3, 1e-6);
  cfg.aggregation = LossAggregation::DrGrpo;  // -0.8 / (2 sequences * 4 max_new_tokens)
  cfg.max_new_tokens = 4;
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), -0.1, 1e-6);
  cfg.aggregation = LossAggregation::Dapo;  // -0.8 / 8 tokens in the whole optimizer step
  cfg.n_tokens_global = 8;
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), -0.1, 1e-6);
  PolicyLoss pl = compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg);
  EXPECT_NEAR(pl.clip_ratio_high, 1.0 / 3, 1e-6);  // only 1.5 > 1.2 with A > 0
  EXPECT_EQ(pl.clip_ratio_low, 0.0);               // 0.7 < 0.8 but A > 0: not a clip event
  EXPECT_NEAR(pl.clip_ratio_region, 1.0 / 3, 1e-6);
  EXPECT_NEAR(pl.ratio_mean, (1.5 + 0.7 + 1.1) / 3, 1e-6);
  EXPECT_NEAR(pl.ratio_min, 0.7, 1e-6);
  EXPECT_NEAR(pl.ratio_max, 1.5, 1e-6);  // 9.9 is masked
  EXPECT_EQ(pl.n_tokens, 3);
  // The two "constant" denominators apart: dapo divides by the step's real tokens (3 here),
  // dr_grpo by sequences x max_new_tokens (4 x 4 with two more sequences in other micro-batches).
  cfg.n_tokens_global = 3;
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), -0.8 / 3, 1e-6);
  cfg.aggregation = LossAggregation::DrGrpo;
  cfg.n_sequences_global = 4;
  EXPECT_NEAR(compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg).loss.item<double>(), -0.8 / 16, 1e-6);
}

TEST(Grpo, SamplerCorrectionModes) {
  // trainer p [[0.5, 0.4], [0.2, 0.9 (masked)]], sampler p [[0.25, 0.4], [0.1, 0.3]]:
  // token ratios [[2, 1], [2, -]], sequence ratios [2 x 1, 2] = [2, 2]
  auto logp = torch::log(t2({0.5, 0.4, 0.2, 0.9}, 2, 2)), slogp = torch::log(t2({0.25, 0.4, 0.1, 0.3}, 2, 2));
  auto mask = t2({1, 1, 1, 0}, 2, 2);
  auto w = [&](IsCorrectionMode m, double lo, double hi) { return compute_sampler_correction(logp, slogp, mask, m, lo, hi); };
  SamplerCorrection tt = w(IsCorrectionMode::TokenTruncate, 0, 1.5);
  EXPECT_TRUE(torch::allclose(tt.weight, t2({1.5, 1, 1.5, 1}, 2, 2)));
  EXPECT_NEAR(tt.logp_diff_sum / tt.n_tokens, 2 * std::log(2.0) / 3, 1e-6);
  EXPECT_NEAR(tt.logp_diff_max, std::log(2.0), 1e-6);
  EXPECT_NEAR(tt.ratio_sum / tt.n_ratios, 4.0 / 3, 1e-6);  // over the 3 real tokens
  EXPECT_NEAR(tt.ratio_min, 1.0, 1e-6);
  EXPECT_NEAR(tt.ratio_max, 1.5, 1e-6);
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::TokenTruncate, 1.2, 3).weight, t2({2, 1.2, 2, 1.2}, 2, 2)));
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::TokenMask, 0, 1.5).weight, t2({0, 1, 0, 1}, 2, 2)));
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::SequenceTruncate, 0, 1.5).weight, t2({1.5, 1.5}, 2, 1)));
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::SequenceTruncate, 0, 3).weight, t2({2, 2}, 2, 1)));
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::SequenceMask, 0, 1.5).weight, t2({0, 0}, 2, 1)));
  EXPECT_TRUE(torch::allclose(w(IsCorrectionMode::SequenceMask, 0, 3).weight, t2({2, 2}, 2, 1)));
  // The weight multiplies the policy term only: LossCase's tokens -1.2, -0.7, 1.1 (bnpo)
  // x [0.5, 2, 3] = (-0.6 - 1.4 + 3.3) / 3.
  LossCase c(torch::kCPU);
  PolicyLossConfig cfg;
  cfg.aggregation = LossAggregation::Bnpo;
  auto loss = compute_policy_loss(c.logp, c.old, c.adv, c.mask, cfg, {}, {}, t2({0.5, 2, 3, 7}, 2, 2)).loss;
  EXPECT_NEAR(loss.item<double>(), 1.3 / 3, 1e-6);
}

TEST(Grpo, TopEntropyMask) {
  // masked entropies 0.1 0.3 0.5 0.7 0.9 (5.0 is padding); q = 0.4 keeps >= the 0.6 quantile,
  // 0.5 + 0.4 (0.7 - 0.5) = 0.58: the 0.9 and 0.7 tokens.
  auto e = t2({0.1, 0.5, 0.9, 0.3, 0.7, 5.0}, 2, 3), m = t2({1, 1, 1, 1, 1, 0}, 2, 3);
  EXPECT_TRUE(torch::equal(top_entropy_mask(e, m, 0.4), t2({0, 0, 1, 0, 1, 0}, 2, 3)));
  EXPECT_TRUE(torch::equal(top_entropy_mask(e, m, 0.2), t2({0, 0, 1, 0, 0, 0}, 2, 3)));  // 0.7 + 0.2 x 0.2 = 0.74
  EXPECT_TRUE(torch::equal(top_entropy_mask(e, m, 1.0), m));
  EXPECT_TRUE(torch::equal(top_entropy_mask(e, torch::zeros_like(m), 0.5), torch::zeros_like(m)));
}

TEST_P(GrpoDevice, AsymmetricClippingBothSigns) {
  // One token per sequence, eps_low 0.1, eps_high 0.3, bnpo = plain mean over the 4 tokens.
  auto ratio = t2({1.5, 0.7, 0.5, 1.5}, 4, 1).to(device());
  auto adv = torch::tensor({1.0f, 1.0f, -1.0f, -1.0f}).to(device());
  auto logp = torch::log(ratio).requires_grad_(true);
  PolicyLossConfig cfg;
  cfg.clip_eps_low = 0.1;
  cfg.clip_eps_high = 0.3;
  cfg.aggregation = LossAggregation::Bnpo;
  PolicyLoss pl = compute_policy_loss(logp, torch::zeros({4, 1}, device()), adv, torch::ones({4, 1}, device()), cfg);
  // A=+1, r=1.5: -min(1.5, 1.3) = -1.3 (clipped high)  |  A=+1, r=0.7: -min(0.7, 0.9) = -0.7 (unclipped)
  // A=-1, r=0.5: -min(-0.5, -0.9) = 0.9 (clipped low)  |  A=-1, r=1.5: -min(-1.5, -1.3) = 1.5 (unclipped)
  EXPECT_NEAR(pl.loss.item<double>(), (-1.3 - 0.7 + 0.9 + 1.5) / 4, 1e-6);
  EXPECT_NEAR(pl.clip_ratio_high, 0.25, 1e-9);
  EXPECT_NEAR(pl.clip_ratio_low, 0.25, 1e-9);
  pl.loss.backward();
  // d/dlogp of -r*A/4 is -r*A/4 where unclipped, 0 where clipped.
  auto g = logp.grad().flatten().to(torch::kCPU);
  EXPECT_EQ(g[0].item<float>(), 0.0f);
  EXPECT_NEAR(g[1].item<float>(), -0.7 / 4, 1e-6);
  EXPECT_EQ(g[2].item<float>(), 0.0f);
  EXPECT_NEAR(g[3].item<float>(), 1.5 / 4, 1e-6);
}

TEST(Grpo, PolicyLossSequenceLevelAndDelta) {
  PolicyLossConfig c;  // eps 0.2 / 0.2, grpo aggregation
  auto old = torch::zeros({1, 2});
  auto mask = torch::ones({1, 2});
  auto A = torch::ones({1});
  // token level: ratios e^0.2 = 1.2214 (clipped to 1.2) and e^-0.1 = 0.904837 -> -(1.2 + 0.904837) / 2
  auto logp = torch::tensor({0.2f, -0.1f}).view({1, 2}).requires_grad_(true);
  EXPECT_NEAR(compute_policy_loss(logp, old, A, mask, c).loss.item<double>(), -1.0524187, 1e-6);
  // sequence level (GSPO): one ratio exp((0.2 - 0.1) / 2) = e^0.05 = 1.0512711, inside the band
  c.sequence_level = true;
  PolicyLoss seq = compute_policy_loss(logp, old, A, mask, c);
  EXPECT_NEAR(seq.loss.item<double>(), -1.0512711, 1e-6);
  EXPECT_NEAR(seq.ratio_mean, 1.0512711, 1e-6);
  seq.loss.backward();  // d/dlogp_t = -A r / |mask| = -0.5256355 for both tokens
  EXPECT_NEAR(logp.grad()[0][0].item<double>(), -0.5256355, 1e-6);
  EXPECT_NEAR(logp.grad()[0][1].item<double>(), -0.5256355, 1e-6);
  // the mask decides the mean: token 1 (log-ratio 5) is padding -> ratio e^0.2, clipped to 1.2
  auto logp2 = torch::tensor({0.2f, 5.0f}).view({1, 2});
  EXPECT_NEAR(compute_policy_loss(logp2, old, A, torch::tensor({1.0f, 0.0f}).view({1, 2}), c).loss.item<double>(), -1.2, 1e-6);
  // delta: a negative advantage with ratio e = 2.71828: unbounded without delta, 1.5 with delta 1.5
  c.sequence_level = false;
  auto far = torch::ones({1, 1});
  auto neg = -torch::ones({1});
  auto one = torch::ones({1, 1}), zero = torch::zeros({1, 1});
  EXPECT_NEAR(compute_policy_loss(far, zero, neg, one, c).loss.item<double>(), 2.7182818, 1e-6);
  c.delta = 1.5;
  EXPECT_NEAR(compute_policy_loss(far, zero, neg, one, c).loss.item<double>(), 1.5, 1e-6);
  EXPECT_NEAR(compute_policy_loss(far, zero, A, one, c).loss.item<double>(), -1.2, 1e-6);  // A > 0: the clip rules
  // bias-corrected KL: k3 x ratio. logp 0, old -0.1 (ratio e^0.1 = 1.1051709), ref -0.5:
  // k3 = e^-0.5 + 0.5 - 1 = 0.1065307; x ratio = 0.1177347. d/dlogp: plain 1 - e^-0.5 = 0.3934693;
  // corrected ratio (1 - e^-0.5 + k3) = 1.1051709 x 0.5 = 0.5525855.
  PolicyLossConfig kc;
  kc.beta = 1.0;
  for (bool corrected : {false, true}) {
    kc.bias_correction_kl = corrected;
    auto lp = torch::zeros({1, 1}).requires_grad_(true);
    PolicyLoss k = compute_policy_loss(lp, torch::full({1, 1}, -0.1f), torch::zeros({1}), one, kc, torch::full({1, 1}, -0.5f));
    k.loss.backward();
    EXPECT_NEAR(k.loss.item<double>(), corrected ? 0.1177347 : 0.1065307, 1e-6);
    EXPECT_NEAR(lp.grad().item<double>(), corrected ? 0.5525855 : 0.3934693, 1e-6);
  }
  TrainConfig tc;
  tc.importance_sampling_level = ImportanceSamplingLevel::Sequence;
  tc.delta = 2.0;
  PolicyLossConfig from = policy_loss_config(tc, 8, 40);
  EXPECT_TRUE(from.sequence_level);
  EXPECT_EQ(from.delta, 2.0);
  EXPECT_EQ(from.n_tokens_global, 40);
}

TEST(Grpo, K3KlAndEntropyBonus) {
  // logp = old = 0 (ratio 1, A = 0: no policy term); ref - logp = 0.5 -> k3 = e^0.5 - 0.5 - 1 = 0.1487212707
  auto z = torch::zeros({1, 1});
  PolicyLossConfig cfg;
  cfg.beta = 0.1;
  cfg.aggregation = LossAggregation::Bnpo;
  PolicyLoss pl = compute_policy_loss(z, z, torch::zeros({1}), torch::ones({1, 1}), cfg, torch::full({1, 1}, 0.5));
  EXPECT_NEAR(pl.kl_mean, std::exp(0.5) - 1.5, 1e-6);
  EXPECT_NEAR(pl.loss.item<double>(), 0.1 * (std::exp(0.5) - 1.5), 1e-7);
  cfg.beta = 0;  // loss -= 0.01 * H with H = 2.0
  cfg.entropy_coef = 0.01;
  pl = compute_policy_loss(z, z, torch::zeros({1}), torch::ones({1, 1}), cfg, {}, torch::full({1, 1}, 2.0));
  EXPECT_NEAR(pl.loss.item<double>(), -0.02, 1e-7);
  EXPECT_NEAR(pl.entropy_mean, 2.0, 1e-7);
}

TEST(Grpo, SoftmaxWeightedObjective) {
  // w_0 = softmax([1, 0]) = [e/(e+1), 1/(e+1)], w_1 = [0.5, 0.5]
  // L = -mean(w_0 . [-1, -2], w_1 . [-3, -0.5]) = mean(1 + 1/(e+1), 1.75)
  auto L = compute_softmax_weighted_loss(t2({-1, -2, -3, -0.5}, 2, 2), t2({1, 0, 0, 0}, 2, 2), 1.0);
  EXPECT_NEAR(L.item<double>(), 0.5 * (1 + 1 / (std::exp(1.0) + 1) + 1.75), 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Homework step 4: chunked log-probs

TEST_P(GrpoDevice, ChunkedLogprobsMatchNaiveValueAndGradient) {
  torch::manual_seed(0);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device());
  auto h = torch::randn({3, 7, 16}, f64).requires_grad_(true);
  auto w = torch::randn({50, 16}, f64).requires_grad_(true);
  auto targets = torch::randint(0, 50, {3, 7}, f64.dtype(torch::kInt64));
  auto gl = torch::randn({3, 7}, f64), ge = torch::randn({3, 7}, f64);
  // Temperatures, and soft-capped logits (Gemma: 2.5 tanh(z / 2.5), saturated for most of these z ~ N(0, 16)).
  for (auto [T, cap] : {std::pair{1.0, 0.0}, {0.7, 0.0}, {0.7, 2.5}}) {
    auto a = chunked_logprobs(h, w, targets, T, true, /*chunk=*/4, cap);  // 21 rows in chunks of 4 (last one short)
    auto b = naive_logprobs(h, w, targets, T, true, cap);
    EXPECT_LT((a.logprobs - b.logprobs).abs().max().item<double>(), 1e-5);
    EXPECT_LT((a.entropy - b.entropy).abs().max().item<double>(), 1e-5);
    // the loss from both outputs, from the log-probs only (the entropy's gradient never arrives),
    // and from the entropy only
    for (int uses : {3, 1, 2}) {
      auto loss = [&](const TokenLogprobs& x) {
        return (uses & 1 ? (x.logprobs * gl).sum() : torch::zeros({}, f64)) + (uses & 2 ? (x.entropy * ge).sum() : torch::zeros({}, f64));
      };
      a = chunked_logprobs(h, w, targets, T, true, /*chunk=*/4, cap);
      auto ga = torch::autograd::grad({loss(a)}, {h, w});
      auto gb = torch::autograd::grad({loss(b)}, {h, w}, {}, /*retain_graph=*/true);
      EXPECT_LT((ga[0] - gb[0]).abs().max().item<double>(), 1e-5) << "dh, T=" << T << " cap " << cap << " uses " << uses;
      EXPECT_LT((ga[1] - gb[1]).abs().max().item<double>(), 1e-5) << "dW, T=" << T << " cap " << cap << " uses " << uses;
    }
  }
  EXPECT_EQ(logprob_chunk_rows(151936), 441);  // 256 MiB of fp32 logits
  EXPECT_EQ(logprob_chunk_rows(259), 16384);
}

TEST_P(GrpoDevice, LogprobsFromModelMatchNaiveOnTinyModel) {
  auto model = tiny_model(torch::kFloat32, device());
  auto ids = torch::tensor({0, 0, 5, 6, 7, 8, 9, 3, 4, 5, 6, 7, 8, 9}, torch::kInt64).view({2, 7}).to(device());
  auto attn = torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 7}).to(device());
  auto out = compute_logprobs_from_model(model, ids, attn, 3, 0.8, false, /*chunk=*/2);
  (out.logprobs.sum()).backward();
  std::vector<torch::Tensor> g_chunked;
  for (auto& p : model->parameters()) {
    g_chunked.push_back(p.grad().clone());
    p.mutable_grad().zero_();
  }
  // naive: full logits (N, T, V) in fp32, log_softmax / temperature, gather.
  auto logits = model->forward(ids, attn).narrow(1, 3, 3) / 0.8;
  auto naive = torch::log_softmax(logits, -1).gather(-1, ids.narrow(1, 4, 3).unsqueeze(-1)).squeeze(-1);
  // log-probs near -5.5 (ulp 4.8e-7); chunked and full GEMMs take different BLAS kernels, whose
  // summation orders differ by up to ~20 ulp on AVX-512 machines; a wrong row or shift is >= 1e-3.
  EXPECT_LT((naive - out.logprobs).abs().max().item<float>(), 2e-5);
  naive.sum().backward();
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT((params[i].grad() - g_chunked[i]).abs().max().item<float>(),
              1e-5 * std::max(1.0f, params[i].grad().abs().max().item<float>()))
        << i;  // fp32: relative
}

TEST_P(GrpoDevice, SharedPromptLogprobsEqualFullRows) {
  // 3 prompts of 5, 3 and 1 tokens (left-padded to 5), 2 completions each of 4, 2, 1, 4, 3 and 2
  // real tokens (pad after): the shared-prompt forward gives the full rows' log-probs, entropies
  // and parameter gradients, to float64 rounding (in fp32 the GEMMs' other row counts alone move
  // log-probs by ~2e-5).
  auto model = tiny_model(torch::kFloat64, device());
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device());
  auto pid = torch::tensor({5, 6, 7, 8, 9, 0, 0, 11, 12, 13, 0, 0, 0, 0, 21}, i64).view({3, 5});
  auto pmask = torch::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1}, i64).view({3, 5});
  auto cid = torch::tensor({31, 32, 33, 34, 35, 36, 0, 0, 37, 0, 0, 0, 38, 39, 40, 41, 42, 43, 44, 0, 45, 46, 0, 0}, i64).view({6, 4});
  auto cmask = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0}, i64).view({6, 4});
  auto group = torch::tensor({0, 0, 1, 1, 2, 2}, i64);
  auto w = torch::linspace(-1, 1, 24, torch::TensorOptions().dtype(torch::kFloat64).device(device())).view({6, 4}) * cmask;
  auto run = [&](bool shared) {
    model->zero_grad();
    TokenLogprobs lp = shared ? compute_logprobs_shared_prompt(model, pid, pmask, group, cid, cmask, 0.7, true)
                              : compute_logprobs_from_model(model, torch::cat({pid.index_select(0, group), cid}, 1),
                                                            torch::cat({pmask.index_select(0, group), cmask}, 1), 4, 0.7, true);
    ((lp.logprobs * w).sum() + (lp.entropy * w).sum()).backward();
    std::vector<torch::Tensor> g;
    for (auto& p : model->parameters()) g.push_back(p.grad().clone());
    return std::make_pair(lp, g);
  };
  auto [full, g_full] = run(false);
  auto [shared, g_shared] = run(true);
  auto m = cmask.to(torch::kBool);
  EXPECT_LT((full.logprobs - shared.logprobs).masked_select(m).abs().max().item<double>(), 1e-10);
  EXPECT_LT((full.entropy - shared.entropy).masked_select(m).abs().max().item<double>(), 1e-10);
  for (size_t i = 0; i < g_full.size(); ++i)
    EXPECT_LT((g_full[i] - g_shared[i]).abs().max().item<double>(), 1e-10 * std::max(1.0, g_full[i].abs().max().item<double>())) << i;
}

TEST_P(GrpoDevice, SharedPromptUpdateEqualsFullRowUpdate) {
  // update_policy shares each prompt's forward across its group unless gradient checkpointing
  // is on (which recomputes whole rows): both give the same step, also when a micro-batch holds
  // part of a group (grad_accum 4: 2 rows of a 4-sample group). The loss, KL and gradient norm
  // agree to fp32 rounding; the weights to 5% of the largest AdamW move (2 x lr: Adam divides
  // near-zero gradients by their own size, so rounding there moves a weight by up to ~lr/20).
  for (int64_t K : {1, 4}) {
    std::vector<StepMetrics> stats;
    std::vector<std::vector<torch::Tensor>> after;
    for (bool ckpt : {false, true}) {
      TrainConfig c = step_config();
      c.grad_accum = K;
      c.beta = 0.04;
      c.num_iterations = 2;
      c.gradient_checkpointing = ckpt;
      // The sampler correction weighs each sequence by exp(sum of its ~1e-6 sampler/trainer
      // differences), which differ between the two forwards by about as much as they compare.
      c.vllm_importance_sampling_correction = false;
      c.learning_rate = 1e-4;  // 1e-3 throws this random model far off in one update (KL ~1e6): chaos
      GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
      RolloutBatch rb = make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4);
      stats.push_back(update(st, rb));
      after.push_back(snapshot(st.policy));
    }
    // (the loss sums signed advantages' terms of ~1e-1 to about -2e-3: it gets an absolute bound)
    EXPECT_NEAR(stats[0].loss, stats[1].loss, 2e-6) << "K=" << K;
    EXPECT_NEAR(*stats[0].kl, *stats[1].kl, 1e-5 * std::abs(*stats[1].kl)) << "K=" << K;
    EXPECT_NEAR(stats[0].grad_norm, stats[1].grad_norm, 1e-5 * std::abs(stats[1].grad_norm)) << "K=" << K;
    EXPECT_NEAR(*stats[0].entropy, *stats[1].entropy, 1e-5 * std::abs(*stats[1].entropy)) << "K=" << K;
    for (size_t i = 0; i < after[0].size(); ++i)
      // (AdamW's g / sqrt(v) turns rounding in near-zero gradients into up to ~6% of a step: 10%
      // of the two steps' 2e-4 bounds it; a wrong shared-prompt gradient moves whole steps)
      EXPECT_LT((after[0][i] - after[1][i]).abs().max().item<float>(), 0.1 * 2e-4) << "K=" << K << " param " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Homework step 5: schedule and step

TEST(Grpo, LearningRateSchedule) {
  TrainConfig c;
  c.learning_rate = 1.0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(lr_at(0, 10, c), 0.25);  // (0 + 1) / 4
  EXPECT_DOUBLE_EQ(lr_at(3, 10, c), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(9, 10, c), 1.0);  // constant
  c.lr_schedule = LrSchedule::Cosine;      // progress (7 - 4) / 6 = 0.5 -> 0.5
  EXPECT_NEAR(lr_at(7, 10, c), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(10, 10, c), 0.0, 1e-12);
  c.lr_schedule = LrSchedule::Linear;
  EXPECT_NEAR(lr_at(7, 10, c), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(5, 10, c), 1.0 - 1.0 / 6, 1e-12);
}

TEST_P(GrpoDevice, UpdateRaisesPositiveAndLowersNegativeLogprobs) {
  auto model = tiny_model(torch::kFloat32, device());
  TrainConfig c = step_config();
  GrpoState st(c, model, 10);
  // prompt 0: sample 0 rewarded; prompt 1: sample 2 rewarded
  RolloutBatch rb = make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4);
  auto before = seq_logp(st.policy, rb.rollout);
  StepMetrics s = update(st, rb);
  EXPECT_FALSE(s.skipped);
  auto after = seq_logp(st.policy, rb.rollout);
  before = before.to(torch::kCPU);
  after = after.to(torch::kCPU);
  EXPECT_GT(after[0].item<float>(), before[0].item<float>());
  EXPECT_GT(after[6].item<float>(), before[6].item<float>());
  EXPECT_LT((after - before).index({torch::tensor({1, 2, 3, 4, 5, 7})}).mean().item<float>(), 0.0f);
  EXPECT_EQ(s.lr, 1e-3);
  EXPECT_GT(s.grad_norm, 0.0);
  EXPECT_EQ(st.step, 1);
  EXPECT_TRUE(st.policy->projections_packed());  // AdamW updates in place: rollouts keep the packed GEMMs
}

TEST_P(GrpoDevice, NonFiniteLossSkipsTheUpdate) {
  auto model = tiny_model(torch::kFloat32, device());
  GrpoState st(step_config(), model, 10);
  auto before = snapshot(st.policy);
  RolloutBatch rb = make_rollout(st.policy, {1, 0, NAN, 0, 0, 0, 1, 0}, 2, 4);
  StepMetrics s = update(st, rb);
  EXPECT_TRUE(s.skipped);
  EXPECT_EQ(s.skipped, 1.0);
  EXPECT_EQ(st.skipped_updates, 1);
  EXPECT_TRUE(same_bits(before, snapshot(st.policy)));  // never applied
  // A finite batch afterwards trains normally.
  StepMetrics ok = update(st, make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4));
  EXPECT_FALSE(ok.skipped);
  EXPECT_FALSE(same_bits(before, snapshot(st.policy)));
}

TEST_P(GrpoDevice, WholeStepIsDeterministic) {
  auto tok = byte_tokenizer();
  SpecialIds special;
  special.eos = {258};
  special.pad = 256;
  PromptDataset data({{"What is 1+1?", "#### 2", 2, 1, {}, ""}, {"What is 2+3?", "#### 5", 5, 2, {}, ""}}, "two questions");
  std::vector<std::vector<torch::Tensor>> finals;
  std::vector<double> losses;
  for (int run = 0; run < 2; ++run) {
    TrainConfig c = step_config();
    c.num_iterations = 2;  // exercises old log-probs
    c.beta = 0.05;         // and the reference model
    GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
    StepMetrics s;
    for (int step = 0; step < 2; ++step) s = train_grpo_step(st, *tok, special, data).metrics;
    finals.push_back(snapshot(st.policy));
    losses.push_back(s.loss);
    EXPECT_EQ(s.reward_by_function.count("format"), 1u);
    EXPECT_GE(s.kl.value(), 0.0);
    EXPECT_EQ(s.step, 2);
    EXPECT_EQ(st.data_position, 4);
  }
  EXPECT_TRUE(same_bits(finals[0], finals[1]));
  EXPECT_EQ(losses[0], losses[1]);
}

TEST(GrpoStep, DynamicSamplingRefillsTheBatchWithMixedGroups) {
  // The step grpo_train runs, on the demo's model and task (correctness alone), where a rollout has
  // all-right and all-wrong groups beside mixed ones. Without dynamic sampling the step trains the
  // first B prompts as drawn. With it, the same first rollout's mixed groups come first in the
  // batch (same prompts, same rewards), the flat ones are dropped, and the refills from the next
  // prompts of the stream complete the batch with mixed groups only: every trained group has a
  // reward spread, hence non-zero advantages.
  auto tok = load_tokenizer(source_path("data/tiny-model"));
  SpecialIds special = load_special_ids(source_path("data/tiny-model"), *tok);
  PromptDataset train(source_path("data/tiny-math/train.jsonl"));
  TrainConfig c;
  c.model_path = source_path("data/tiny-model");
  c.system_prompt = "Solve.";
  c.max_new_tokens = 16;
  c.prompts_per_step = 8;
  c.group_size = 8;
  for (auto& [fn, w] : c.reward_weights) w = fn == "correctness" ? 1.0 : 0.0;
  c.dynamic_sampling_max_rollouts = 8;
  auto step = [&](bool dynamic, int64_t& data_position) {
    TrainConfig cd = c;
    cd.dynamic_sampling = dynamic;
    GrpoState st(cd, load_causal_lm(c.model_path, torch::kFloat32, torch::kCPU), 10);
    StepResult r = train_grpo_step(st, *tok, special, train);
    data_position = st.data_position;
    return r;
  };
  int64_t pos_plain = 0, pos_dyn = 0;
  const StepResult plain = step(false, pos_plain), dyn = step(true, pos_dyn);
  const int64_t B = c.prompts_per_step;
  EXPECT_EQ(pos_plain, B);
  EXPECT_FALSE(plain.metrics.dynamic_sampling.has_value());
  auto spread = [](const StepResult& r) {  // (B,) max - min reward of each group
    return (std::get<0>(r.batch.rewards.max(1)) - std::get<0>(r.batch.rewards.min(1))).gt(0);
  };
  const auto mixed_plain = spread(plain);
  const int64_t n_mixed = mixed_plain.sum().item<int64_t>();
  ASSERT_GT(n_mixed, 0);
  ASSERT_LT(n_mixed, B) << "the first rollout must hold flat groups for this test to check a refill";
  // The first rollout's mixed groups, in order, open the dynamic batch.
  int64_t k = 0;
  for (int64_t g = 0; g < B; ++g) {
    if (!mixed_plain[g].item<bool>()) continue;
    EXPECT_EQ(dyn.batch.examples[k], plain.batch.examples[g]) << g;
    EXPECT_TRUE(torch::equal(dyn.batch.rewards[k], plain.batch.rewards[g])) << g;
    ++k;
  }
  // The refills: later prompts of the stream, and the batch is all mixed groups.
  const auto& ds = *dyn.metrics.dynamic_sampling;
  EXPECT_GT(ds.rollouts, 1.0);
  EXPECT_EQ(ds.groups_filled_flat, 0.0);
  EXPECT_EQ(ds.groups_dropped, double(pos_dyn - B));  // every prompt drawn was kept or dropped
  EXPECT_EQ(dyn.batch.rewards.size(0), B);
  EXPECT_EQ(spread(dyn).sum().item<int64_t>(), B);
  EXPECT_EQ((dyn.advantages.abs().sum(1) > 0).sum().item<int64_t>(), B);
  const auto stream = train.indices_at(static_cast<uint64_t>(c.seed), 0, static_cast<size_t>(pos_dyn));
  for (int64_t i = k; i < B; ++i) EXPECT_NE(std::find(stream.begin() + B, stream.end(), dyn.batch.examples[i]), stream.end()) << i;
  EXPECT_EQ(dyn.metrics.frac_reward_zero_std.value(), 0.0);
  EXPECT_EQ(plain.metrics.frac_reward_zero_std.value(), double(B - n_mixed) / B);
}

TEST_P(GrpoDevice, Bf16PolicyUsesFp32MasterWeights) {
  auto model = tiny_model(torch::kBFloat16, device());
  GrpoState st(step_config(), model, 10);
  ASSERT_EQ(st.master.size(), st.policy->parameters().size());
  EXPECT_EQ(st.master[0].scalar_type(), torch::kFloat32);
  auto before = snapshot(st.policy);
  StepMetrics s = update(st, make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4));
  EXPECT_FALSE(s.skipped);
  EXPECT_FALSE(same_bits(before, snapshot(st.policy)));
  // The model holds the master weights rounded to bf16.
  EXPECT_TRUE(torch::equal(st.policy->parameters()[0], st.master[0].to(torch::kBFloat16)));
  EXPECT_TRUE(st.policy->projections_packed());  // the rounded masters are copied in place
}

TEST_P(GrpoDevice, MicroBatchesGiveTheSameGradient) {
  // grad_accum 1 vs 2 on the same batch: the K micro-batch losses are averaged (grpo) or summed
  // over step-global denominators (dapo, dr_grpo), so loss and gradient norm are the same.
  for (auto agg : {LossAggregation::Grpo, LossAggregation::Dapo, LossAggregation::DrGrpo}) {
    std::vector<StepMetrics> s;
    for (int K : {1, 2}) {
      TrainConfig c = step_config();
      c.grad_accum = K;
      c.loss_aggregation = agg;
      c.max_grad_norm = 0;  // the norm as computed, unclipped
      GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
      s.push_back(update(st, make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4)));
    }
    const std::string name = choice_name(agg);
    EXPECT_NEAR(s[0].loss, s[1].loss, 1e-5) << name;  // ~0: +-A terms cancel
    EXPECT_NEAR(s[0].grad_norm, s[1].grad_norm, 1e-5 * s[0].grad_norm) << name;
    EXPECT_GT(s[0].grad_norm, 0.0) << name;
  }
}

TEST_P(GrpoDevice, SecondPassIsClippedAgainstTheOldLogprobs) {
  // With mu = 2 the second pass's ratio is against the rollout-time log-probs, so a large first
  // update pushes tokens out of a narrow clip band; with mu = 1 the ratio is exactly 1.
  for (int mu : {1, 2}) {
    TrainConfig c = step_config();
    c.num_iterations = mu;
    c.clip_eps_low = c.clip_eps_high = 0.01;
    c.learning_rate = 1e-2;
    GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
    StepMetrics s = update(st, make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4));
    if (mu == 1)
      EXPECT_EQ(s.clip_ratio_region.value(), 0.0);
    else
      EXPECT_GT(s.clip_ratio_region.value(), 0.05);
  }
}

TEST_P(GrpoDevice, MaskTruncatedCompletionsRemovesThemFromTheLoss) {
  for (bool masked : {false, true}) {
    TrainConfig c = step_config();
    c.mask_truncated_completions = masked;
    GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
    RolloutBatch rb = make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4);
    for (auto& f : rb.rollout.finish) f = FinishReason::Length;  // every completion cut
    StepMetrics s = update(st, rb);
    if (masked) {
      EXPECT_EQ(s.grad_norm, 0.0);
      EXPECT_EQ(s.loss, 0.0);
    } else {
      EXPECT_GT(s.grad_norm, 0.0);
    }
    EXPECT_EQ(s.truncated_frac.value(), 1.0);
  }
}

// Tool results inside a completion (loss_mask 0) are attended but never trained: the update's loss,
// gradient norm and entropy equal the same batch computed by hand with those tokens masked out of
// the loss (and not of the attention).
TEST_P(GrpoDevice, ToolResultTokensAreContextNeverTrained) {
  TrainConfig c = step_config();
  c.vllm_importance_sampling_correction = false;
  c.grad_accum = 1;
  auto model = tiny_model(torch::kFloat32, device());
  RolloutBatch rb = make_rollout(model, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4);
  Rollout& r = rb.rollout;
  auto tool = torch::zeros_like(r.completion_mask);
  tool.narrow(1, 1, 2).fill_(1);  // positions 1-2 of every completion: a tool's result
  r.loss_mask = r.completion_mask * (1 - tool);
  const auto A = compute_advantages_grpo(rb.rewards, c.scale_rewards).advantages.flatten();
  // By hand: full attention, the loss over the model's own tokens only.
  auto ids = torch::cat({r.prompt_ids, r.completion_ids}, 1), attn = torch::cat({r.prompt_mask, r.completion_mask}, 1);
  const int64_t Tc = r.completion_mask.sum(1).max().item<int64_t>();
  auto mask = r.loss_mask.narrow(1, 0, Tc).to(torch::kFloat32);
  auto lp = compute_logprobs_from_model(model, ids.narrow(1, 0, r.prompt_ids.size(1) + Tc), attn.narrow(1, 0, r.prompt_ids.size(1) + Tc),
                                        Tc, 1.0, /*with_entropy=*/true);
  PolicyLoss want = compute_policy_loss(lp.logprobs, lp.logprobs.detach(), A, mask,
                                        policy_loss_config(c, A.size(0), static_cast<int64_t>(mask.sum().item<double>())),
                                        lp.logprobs.detach(), lp.entropy);
  model->zero_grad();
  want.loss.backward();
  double sq = 0;
  for (auto& p : model->parameters())
    if (p.grad().defined()) sq += p.grad().to(torch::kFloat64).square().sum().item<double>();
  GrpoState st(c, model, 10);
  StepMetrics s = update(st, rb);
  EXPECT_NEAR(s.loss, want.loss.item<double>(), 1e-6 * std::max(1.0, std::abs(s.loss)));
  EXPECT_NEAR(s.grad_norm, std::sqrt(sq), 1e-5 * std::sqrt(sq));
  EXPECT_NEAR(s.entropy.value(), want.entropy_mean, 1e-5);
  EXPECT_GT(mask.sum().item<double>(), 0.0);
  EXPECT_LT(mask.sum().item<double>(), r.completion_mask.narrow(1, 0, Tc).sum().item<double>());  // the tool tokens counted in neither
}

TEST_P(GrpoDevice, UpdateUsesTheRolloutTemperature) {
  // The entropy update_policy reports is that of softmax(z / T) for the batch's temperature.
  auto model = tiny_model(torch::kFloat32, device());
  RolloutBatch rb = make_rollout(model, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4);
  const auto& r = rb.rollout;
  auto ids = torch::cat({r.prompt_ids, r.completion_ids}, 1), attn = torch::cat({r.prompt_mask, r.completion_mask}, 1);
  auto m = r.completion_mask.to(torch::kFloat32);
  auto entropy_at = [&](double T) {
    torch::NoGradGuard ng;
    auto e = compute_logprobs_from_model(model, ids, attn, r.completion_ids.size(1), T, true).entropy;
    return ((e * m).sum() / m.sum()).item<double>();
  };
  for (double T : {0.5, 1.0}) {
    TrainConfig c = step_config();
    c.vllm_importance_sampling_correction = false;
    GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
    rb.temperature = T;
    StepMetrics s = update(st, rb);
    EXPECT_NEAR(s.entropy.value(), entropy_at(T), 1e-5 * entropy_at(T)) << "T=" << T;
  }
  EXPECT_GT(std::abs(entropy_at(0.5) - entropy_at(1.0)), 1e-2);
}

TEST_P(GrpoDevice, SyncReferenceMixesThePolicyIn) {
  TrainConfig c = step_config();
  c.beta = 0.04;
  GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
  torch::NoGradGuard ng;
  auto p = st.policy->parameters()[0], q = st.ref->parameters()[0];
  p.fill_(2.0);
  q.fill_(0.0);
  sync_reference(st, 0.6);  // 0.6 x 2 + 0.4 x 0
  EXPECT_TRUE(torch::allclose(q, torch::full_like(q, 1.2)));
  EXPECT_TRUE(torch::allclose(st.ref->parameters()[1], st.policy->parameters()[1]));  // equal stays equal
}

TEST_P(GrpoDevice, SyncRefModelRunsEveryNSteps) {
  for (bool sync : {false, true}) {
    TrainConfig c = step_config();
    c.beta = 0.04;
    c.sync_ref_model = sync;
    c.ref_model_sync_steps = 1;
    GrpoState st(c, tiny_model(torch::kFloat32, device()), 10);
    auto before = snapshot(st.ref);
    update(st, make_rollout(st.policy, {1, 0, 0, 0, 0, 0, 1, 0}, 2, 4));
    EXPECT_EQ(same_bits(before, snapshot(st.ref)), !sync);
  }
}

TEST(Grpo, MasterGradientsAccumulateInFp32) {
  // bf16 policy: each micro-batch's bf16 gradient is added into the fp32 master .grad, so two
  // micro-batches sum without a bf16 rounding of the running total.
  TrainConfig c = step_config();
  GrpoState st(c, tiny_model(torch::kBFloat16), 10);
  auto w = st.policy->parameters()[0];
  auto x = torch::randn(w.sizes(), torch::TensorOptions().dtype(torch::kFloat32)).mul_(1e3);
  std::vector<torch::Tensor> g;
  for (double s : {1.0, 1.0 / 3}) {
    backward_micro(st, (w.to(torch::kFloat32) * x * s).sum());
    g.push_back((x * s).to(torch::kBFloat16).to(torch::kFloat32));  // what that micro-batch's bf16 .grad held
    EXPECT_FALSE(w.grad().defined());                               // moved to the master
  }
  EXPECT_TRUE(torch::equal(st.master[0].grad(), g[0] + g[1]));
  EXPECT_FALSE(torch::equal((g[0].to(torch::kBFloat16) + g[1].to(torch::kBFloat16)).to(torch::kFloat32), g[0] + g[1]));
}

TEST(Grpo, Bf16LogprobsUseAnFp32LmHead) {
  // A bf16 policy's log-probs against the fp32 model's, on real weights (TinyStories-656K: trained,
  // so its logits are large where bf16's 8 bits are coarse) and a fixed text (its greedy story):
  // the fp32 GEMM + log-softmax on the bf16 hidden states is closer than the bf16 GEMM was.
  const std::string dir = source_path("tests/data/tinystories-656k");
  auto m32 = load_causal_lm(dir, torch::kFloat32, torch::kCPU), m16 = load_causal_lm(dir, torch::kBFloat16, torch::kCPU);
  auto ids = torch::tensor({1,   80,  147, 201, 282, 215, 286, 64,  207,  161,  152, 64,   101, 829,  463,  444, 698,
                            100, 258, 461, 715, 299, 93,  64,  101, 829,  1361, 598, 1475, 303, 1864, 617,  242, 1407,
                            251, 64,  101, 829, 195, 114, 122, 216, 1738, 585,  965, 380,  160, 1690, 2012, 467},
                           torch::kInt64)
                 .view({1, -1});
  auto attn = torch::ones_like(ids);
  const int64_t T = ids.size(1), Tc = 40;
  torch::NoGradGuard ng;
  auto ref = compute_logprobs_from_model(m32, ids, attn, Tc).logprobs;
  auto now = compute_logprobs_from_model(m16, ids, attn, Tc).logprobs;
  auto h = m16->forward_hidden(ids, attn, positions_from_mask(attn)).narrow(1, T - Tc - 1, Tc);
  auto z16 = torch::nn::functional::linear(h, m16->output_weight()).to(torch::kFloat32);  // the bf16 GEMM
  auto old = torch::log_softmax(z16, -1).gather(-1, ids.narrow(1, T - Tc, Tc).unsqueeze(-1)).squeeze(-1);
  const double now_mean = (now - ref).abs().mean().item<double>(), old_mean = (old - ref).abs().mean().item<double>();
  const double now_max = (now - ref).abs().max().item<double>(), old_max = (old - ref).abs().max().item<double>();
  std::printf("bf16 log-prob error vs the fp32 model: fp32 lm_head mean %.4g max %.4g; bf16 lm_head mean %.4g max %.4g\n", now_mean,
              now_max, old_mean, old_max);
  EXPECT_LT(now_mean, old_mean);
  EXPECT_LT(now_max, old_max);
}

TEST(Grpo, GatherGroupsPadsAndOrders) {
  // Two rollouts of G = 2: part 0 has 1 prompt (Tp 2, Tc 3), part 1 has 2 prompts (Tp 3, Tc 2).
  auto part = [](int64_t B, int64_t Tp, int64_t Tc, int64_t base) {
    RolloutBatch rb;
    const int64_t N = B * 2;
    rb.rollout.prompt_ids = torch::arange(base, base + N * Tp, torch::kInt64).view({N, Tp});
    rb.rollout.prompt_mask = torch::ones({N, Tp}, torch::kInt64);
    rb.rollout.completion_ids = torch::arange(base + 100, base + 100 + N * Tc, torch::kInt64).view({N, Tc});
    rb.rollout.completion_mask = torch::ones({N, Tc}, torch::kInt64);
    rb.rollout.logprobs = -torch::ones({N, Tc});
    rb.rollout.finish.assign(N, FinishReason::Stop);
    rb.rewards = torch::arange(base, base + N, torch::kFloat32).view({B, 2});
    rb.correct = torch::zeros({B, 2});
    rb.reward_by_fn["correctness"] = rb.rewards.clone();
    for (int64_t n = 0; n < N; ++n) rb.completions.push_back(std::to_string(base + n));
    for (int64_t b = 0; b < B; ++b) rb.examples.push_back(static_cast<size_t>(base + b));
    return rb;
  };
  std::vector<RolloutBatch> parts{part(1, 2, 3, 0), part(2, 3, 2, 10)};
  RolloutBatch g = gather_groups(parts, {{1, 1}, {0, 0}});
  // part 1's group 1 = its rows 2, 3; part 0's group 0 = its rows 0, 1, left-padded by one column
  EXPECT_TRUE(torch::equal(g.rollout.prompt_ids, torch::tensor({16, 17, 18, 19, 20, 21, 0, 0, 1, 0, 2, 3}, torch::kInt64).view({4, 3})));
  EXPECT_TRUE(torch::equal(g.rollout.prompt_mask, torch::tensor({1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1}, torch::kInt64).view({4, 3})));
  EXPECT_TRUE(torch::equal(g.rollout.completion_ids,
                           torch::tensor({114, 115, 0, 116, 117, 0, 100, 101, 102, 103, 104, 105}, torch::kInt64).view({4, 3})));
  EXPECT_TRUE(torch::equal(g.rollout.completion_mask, torch::tensor({1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({4, 3})));
  EXPECT_TRUE(torch::equal(g.rewards, torch::tensor({12.0f, 13.0f, 0.0f, 1.0f}).view({2, 2})));
  EXPECT_TRUE(torch::equal(g.reward_by_fn.at("correctness"), g.rewards));
  EXPECT_EQ(g.completions, (std::vector<std::string>{"12", "13", "0", "1"}));
  EXPECT_EQ(g.examples, (std::vector<size_t>{11, 0}));
  EXPECT_EQ(g.rollout.finish.size(), 4u);
  EXPECT_EQ(g.rollout.logprobs.sizes(), g.rollout.completion_ids.sizes());
}

// ---------------------------------------------------------------------------------------------
// Offline groups

TEST(Grpo, OfflineGroupsFileErrors) {
  auto err = [](const std::string& content) {
    std::string path = write_temp("groups.jsonl", content);
    try {
      load_offline_groups(path);
    } catch (const Error& e) {
      return std::string(e.what()).substr(path.size());
    }
    return std::string();
  };
  const std::string ok = R"({"prompt": "p", "responses": ["a", "b"], "rewards": [1, 0]})";
  EXPECT_EQ(err(ok + "\n"), "");
  EXPECT_EQ(err(ok + "\n" + R"({"prompt": "p", "responses": ["a", "b", "c"], "rewards": [1, 0, 1]})"),
            ":2: 3 responses, but line 1 has 2 (every group must have the same size)");
  EXPECT_EQ(err(R"({"prompt": "p", "responses": ["a", "b"], "rewards": [1]})"), ":1: 2 responses but 1 rewards");
  EXPECT_EQ(err(R"({"prompt": "p", "responses": ["a", "b"], "rewards": [1, "x"]})"), ":1: \"rewards\" must hold numbers, found \"x\"");
  EXPECT_EQ(err("\n{oops\n").substr(0, 17), ":2: invalid JSON ");
  EXPECT_EQ(err(""), ": no groups (the file is empty)");
}

TEST(Grpo, OfflineObjectivesFavourTheRewardedResponse) {
  auto tok = byte_tokenizer();
  SpecialIds special;
  special.eos = {258};
  special.pad = 256;
  std::vector<OfflineGroup> groups = {{"2+2?", {"<answer>4</answer>", "<answer>5</answer>", "no idea"}, {1.0f, 0.0f, 0.0f}, 1},
                                      {"3+3?", {"six", "<answer>6</answer>", "7"}, {0.0f, 1.0f, 0.0f}, 2}};
  for (auto objective : {OfflineObjective::SoftmaxWeighted, OfflineObjective::Ppo}) {
    TrainConfig c = step_config();
    c.group_size = 3;
    c.grad_accum = 1;
    c.max_new_tokens = 32;
    c.learning_rate = 3e-3;
    GrpoState st(c, tiny_model(), 10);
    RolloutBatch rb = offline_batch(st, *tok, special, groups);
    EXPECT_EQ(rb.rollout.completion_ids.size(0), 6);
    EXPECT_EQ(rb.rollout.completion_ids[0][18].item<int64_t>(), 258);  // 18 bytes, then the EOS id
    auto before = seq_logp(st.policy, rb.rollout);
    StepMetrics s = train_offline_step(st, *tok, special, groups, objective, 0.5);
    EXPECT_FALSE(s.skipped);
    EXPECT_NEAR(s.reward_mean.value_or(-1), 1.0 / 3.0, 1e-6);
    // PPO reports the rollout path's reward figures: std of {1,0,0,0,1,0} = sqrt((2*4/9 + 4/9) / 5)
    if (objective == OfflineObjective::Ppo) {
      EXPECT_NEAR(s.reward_std.value_or(-1), 0.5163978, 1e-6);
    }
    auto gain = seq_logp(st.policy, rb.rollout) - before;  // (6,)
    // The rewarded response of each group gains more log-probability than its group mates.
    EXPECT_GT(gain[0].item<float>(), std::max(gain[1].item<float>(), gain[2].item<float>()));
    EXPECT_GT(gain[4].item<float>(), std::max(gain[3].item<float>(), gain[5].item<float>()));
  }
}
