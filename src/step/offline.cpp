// offline.cpp: training on given completions instead of rollouts: scored groups from a JSONL file
// (the PPO loss, or a softmax-weighted likelihood), and supervised fine-tuning (grpo_sft).
// Departure from the rollout path: the completions were not sampled by this model at
// cfg.temperature, so their log-probs are taken at temperature 1 (RolloutBatch::temperature), and
// there is no sampler correction (no sampler log-probs).
#include "grpo/step/offline.h"

#include <functional>

#include "grpo/base/common.h"
#include "grpo/step/grpo_step.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// The softmax-weighted objective

torch::Tensor compute_softmax_weighted_loss(const torch::Tensor& seq_logp, const torch::Tensor& rewards, double beta) {
  TORCH_CHECK(seq_logp.sizes() == rewards.sizes() && seq_logp.dim() == 2, "seq_logp and rewards must both be (B, G)");
  TORCH_CHECK(beta > 0, "softmax-weighted objective needs beta > 0");
  auto w = torch::softmax(rewards.to(torch::kFloat32) / beta, 1).detach();  // (B, G)
  return -(w * seq_logp).sum(1).mean();
}

// ---------------------------------------------------------------------------------------------
// Objectives on the log-probs of given completions (offline softmax-weighted, SFT): the K
// micro-batches' losses are backpropagated, then one apply_update. micro_loss(k, logp, mask) gets
// micro-batch k's (rows, Tc) completion log-probs and mask and returns its share of the loss.

namespace {

StepMetrics logprob_objective_step(GrpoState& st, const Rollout& r, int64_t K,
                                   const std::function<torch::Tensor(int64_t, const torch::Tensor&, const torch::Tensor&)>& micro_loss) {
  const int64_t N = r.completion_ids.size(0), Tc = r.completion_ids.size(1), mb = N / K;
  auto ids = torch::cat({r.prompt_ids, r.completion_ids}, 1), attn = torch::cat({r.prompt_mask, r.completion_mask}, 1);
  auto cmask = r.own_mask().to(torch::kFloat32);  // the model's own tokens
  st.policy->train();
  clear_grads(st);
  double loss_total = 0;
  for (int64_t k = 0; k < K; ++k) {
    auto rows = [&](const torch::Tensor& x) { return x.narrow(0, k * mb, mb); };
    auto lp = compute_logprobs_from_model(st.policy, rows(ids), rows(attn), Tc, /*temperature=*/1.0).logprobs;  // (mb, Tc)
    auto loss = micro_loss(k, lp, rows(cmask));
    loss_total += loss.item<double>();
    if (std::isfinite(loss_total)) backward_micro(st, loss);
  }
  UpdateResult u = apply_update(st, loss_total, st.step, st.total_steps);
  ++st.step;
  StepMetrics stats;
  stats.step = st.step;
  stats.loss = loss_total;
  stats.lr = u.lr;
  stats.grad_norm = u.grad_norm;
  stats.skipped = u.applied ? 0.0 : 1.0;
  return stats;
}

// A given response's ids, and 1 on those the model is trained to write. Without tools, all of it
// (text only: special-token strings stay text). With tools, a transcript as a rollout makes it: the
// model's pieces (their <|im_end|> and <tool_call> markers as ids) train, and each tool turn, from
// "\n<|im_start|>user\n<tool_response>" to the next "<|im_start|>assistant\n" (the built-in template's tool_response_text),
// is context, never trained.
void encode_response(const Tokenizer& tok, const std::string& text, bool tools, std::vector<int32_t>& ids, std::vector<int32_t>& own) {
  auto add = [&](std::string_view piece, int32_t mine) {
    for (int32_t id : tok.encode(piece, /*match_special=*/tools)) {
      ids.push_back(id);
      own.push_back(mine);
    }
  };
  if (!tools) return add(text, 1);
  const std::string open = "\n<|im_start|>user\n<tool_response>", resume = "<|im_start|>assistant\n";
  size_t at = 0;
  for (size_t p = text.find(open); p != std::string::npos; p = text.find(open, at)) {
    const size_t q = text.find(resume, p);
    if (q == std::string::npos) break;  // an unfinished tool turn stays the model's text
    add(std::string_view(text).substr(at, p - at), 1);
    add(std::string_view(text).substr(p, q + resume.size() - p), 0);
    at = q + resume.size();
  }
  add(std::string_view(text).substr(at), 1);
}

}  // namespace

RolloutBatch offline_batch(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<OfflineGroup>& groups) {
  const TrainConfig& cfg = st.cfg;
  const int64_t B = static_cast<int64_t>(groups.size()), G = static_cast<int64_t>(groups.front().responses.size());
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> responses, owns;
  std::vector<float> rewards;
  RolloutBatch rb;
  const bool tools = st.tools != nullptr;
  for (const auto& g : groups) {
    Example ex;
    ex.question = g.prompt;
    prompts.push_back(tokenize_example(tok, special.chat, cfg.system_prompt, ex, cfg.max_prompt_tokens, cfg.tools).ids);
    for (int64_t i = 0; i < G; ++i) {
      std::vector<int32_t> ids, own;
      encode_response(tok, g.responses[i], tools, ids, own);
      if (!special.eos.empty()) {
        ids.push_back(special.eos.front());
        own.push_back(1);
      }
      // max_new_tokens counts the model's tokens, as in a rollout.
      int64_t mine = 0;
      size_t keep = 0;
      while (keep < ids.size() && (mine += own[keep]) <= cfg.max_new_tokens) ++keep;
      const bool cut = keep < ids.size();
      ids.resize(keep);
      own.resize(keep);
      rb.rollout.finish.push_back(cut ? FinishReason::Length : FinishReason::Stop);
      responses.push_back(std::move(ids));
      owns.push_back(std::move(own));
      rewards.push_back(g.rewards[i]);
      rb.completions.push_back(g.responses[i]);
    }
  }
  const auto device = st.policy->output_weight().device();
  PromptBatch pb = collate_prompts(prompts, special.pad);
  auto expand = torch::arange(B, torch::kInt64).repeat_interleave(G);
  rb.rollout.prompt_ids = pb.input_ids.index_select(0, expand).to(device);
  rb.rollout.prompt_mask = pb.attention_mask.index_select(0, expand).to(device);
  int64_t Tc = 1;
  for (const auto& r : responses) Tc = std::max<int64_t>(Tc, static_cast<int64_t>(r.size()));
  auto ids = torch::full({B * G, Tc}, int64_t(special.pad), torch::kInt64), mask = torch::zeros({B * G, Tc}, torch::kInt64);
  auto own = torch::zeros({B * G, Tc}, torch::kInt64);
  auto ia = ids.accessor<int64_t, 2>(), ma = mask.accessor<int64_t, 2>(), oa = own.accessor<int64_t, 2>();  // host writes
  for (int64_t n = 0; n < B * G; ++n)
    for (size_t t = 0; t < responses[n].size(); ++t) {
      ia[n][t] = responses[n][t];
      ma[n][t] = 1;
      oa[n][t] = owns[n][t];
    }
  rb.rollout.completion_ids = ids.to(device);
  rb.rollout.completion_mask = mask.to(device);
  if (tools) rb.rollout.loss_mask = own.to(device);
  rb.rewards = torch::tensor(rewards, torch::kFloat32).view({B, G});
  rb.correct = torch::zeros({B, G});
  return rb;
}

StepMetrics train_offline_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<OfflineGroup>& groups,
                               OfflineObjective objective, double softmax_beta) {
  RolloutBatch rb = offline_batch(st, tok, special, groups);
  if (objective == OfflineObjective::Ppo) {
    const Advantages adv = compute_advantages_grpo(rb.rewards, st.cfg.scale_rewards);  // (B, G)
    StepMetrics m = update_policy(st, rb, adv.advantages);
    st.step += 1;
    if (reference_sync_due(st.cfg, st.step)) sync_reference(st, st.cfg.ref_model_mixup_alpha);
    m.step = st.step;
    add_reward_metrics(st, rb, rb.rewards, adv, m);
    return m;
  }
  // Softmax-weighted: per micro-batch of whole groups, the summed completion log-prob of each response.
  const int64_t B = rb.rewards.size(0), G = rb.rewards.size(1);
  const int64_t K = std::min<int64_t>(st.cfg.grad_accum, B);
  TORCH_CHECK(B % K == 0, "offline softmax objective: grad_accum must divide the number of groups");
  const int64_t bg = B / K;
  StepMetrics stats = logprob_objective_step(st, rb.rollout, K, [&](int64_t k, const torch::Tensor& lp, const torch::Tensor& m) {
    auto seq = (lp * m).sum(1).view({bg, G});
    return compute_softmax_weighted_loss(seq, rb.rewards.narrow(0, k * bg, bg).to(seq.device()), softmax_beta) / double(K);
  });
  stats.reward_mean = rb.rewards.mean().item<double>();
  return stats;
}

// ---------------------------------------------------------------------------------------------
// SFT

StepMetrics sft_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch) {
  std::vector<OfflineGroup> groups;
  for (const auto& ex : batch) groups.push_back({ex.question, {ex.answer}, {0.0f}, ex.line});
  RolloutBatch rb = offline_batch(st, tok, special, groups);  // one "response" per prompt: the reference answer
  const int64_t N = rb.rollout.completion_ids.size(0), K = std::min<int64_t>(st.cfg.grad_accum, N);
  TORCH_CHECK(N % K == 0, "sft: grad_accum must divide the batch size");
  const double n_tokens = std::max(1.0, rb.rollout.own_mask().sum().item<double>());
  StepMetrics stats = logprob_objective_step(
      st, rb.rollout, K, [&](int64_t, const torch::Tensor& lp, const torch::Tensor& m) { return -(lp * m).sum() / n_tokens; });
  stats.tokens = n_tokens;
  return stats;
}

}  // namespace grpo
