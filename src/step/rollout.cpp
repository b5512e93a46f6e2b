// rollout.cpp: homework step 5a, the rollout; see rollout.h.
#include "grpo/step/rollout.h"

#include <chrono>
#include <cstdio>

#include "grpo/base/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// One batch of prompts, rolled out and scored

namespace {

torch::Tensor as_float(const std::vector<float>& v, int64_t B, int64_t G) {
  return torch::tensor(v, torch::kFloat32).view({B, G});
}

// A completion with tool turns: what the rewards read (the final turn, the messages), the
// transcript, and the tool counts.
void record_tool_turns(Transcript t, const std::vector<ToolTurn>& turns, const Gold& gold, RolloutBatch& rb) {
  const ToolUse use = tool_use(turns, gold);
  rb.completions.push_back(std::move(t.final_text));
  rb.transcripts.push_back(std::move(t.text));
  rb.messages.push_back(python_json(t.messages));
  rb.tool_calls.push_back(use.calls);
  rb.tool_errors.push_back(use.errors);
  rb.tool_useful.push_back(use.useful);
}

}  // namespace

RolloutBatch rollout_and_score(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const std::vector<Example>& batch,
                               const std::vector<uint64_t>& keys, int64_t step) {
  const TrainConfig& cfg = st.cfg;
  const int64_t B = static_cast<int64_t>(batch.size()), G = cfg.group_size;
  static const std::vector<ToolSpec> no_tools;
  const std::vector<ToolSpec>& tools = st.tools ? st.tools->tools() : no_tools;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ex : batch)
    prompts.push_back(tokenize_example(tok, special.chat, cfg.system_prompt, ex, cfg.max_prompt_tokens, tools).ids);
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
  // The draws' seed counts the steps done before this one (step - 1), as it always has: runs repeat.
  sp.seed = static_cast<uint64_t>(cfg.seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step - 1);
  if (st.tools) st.tools->attach(sp, tok, special.chat, B * G, step);
  RolloutBatch rb;
  rb.rollout = generate(st.policy, prompts, G, sp, keys);

  std::vector<Transcript> answers = read_answers(rb.rollout, tok, st.tools.get());
  const auto n_own = rb.rollout.own_mask().sum(1).to(torch::kCPU, torch::kInt64);  // (N,) the model's own tokens
  std::vector<ScoreItem> items;
  for (int64_t n = 0; n < B * G; ++n) {
    const Example& ex = batch[n / G];
    if (st.tools)
      record_tool_turns(std::move(answers[n]), st.tools->turns()[n], ex.gold, rb);
    else
      rb.completions.push_back(std::move(answers[n].final_text));
    items.push_back(
        {ex.question, rb.completions.back(), ex.gold, n_own[n].item<int64_t>(), ex.columns, st.tools ? rb.messages.back() : ""});
  }
  std::vector<float> total, correct;
  std::map<std::string, std::vector<float>> by_fn;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<RewardResult> scored = st.rewards->score_batch(items, step);
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
  for (const auto& p : parts) {
    Tp = std::max(Tp, p.rollout.prompt_ids.size(1));
    Tc = std::max(Tc, p.rollout.completion_ids.size(1));
  }
  auto pad = [](const torch::Tensor& x, int64_t width, bool left) {  // zeros: masked out either way
    const int64_t extra = width - x.size(1);
    if (extra == 0) return x;
    auto z = torch::zeros({x.size(0), extra}, x.options());
    return left ? torch::cat({z, x}, 1) : torch::cat({x, z}, 1);
  };
  std::vector<torch::Tensor> pid, pm, cid, cm, lm, lp, rew, cor;
  std::map<std::string, std::vector<torch::Tensor>> by_fn;
  RolloutBatch out;
  out.temperature = parts[0].temperature;
  for (const auto& [pi, g] : picks) {
    const RolloutBatch& p = parts.at(pi);
    const Rollout& r = p.rollout;
    auto rows = [&](const torch::Tensor& x) { return x.narrow(0, g * G, G); };
    pid.push_back(pad(rows(r.prompt_ids), Tp, true));
    pm.push_back(pad(rows(r.prompt_mask), Tp, true));
    cid.push_back(pad(rows(r.completion_ids), Tc, false));
    cm.push_back(pad(rows(r.completion_mask), Tc, false));
    if (r.logprobs.defined()) lp.push_back(pad(rows(r.logprobs), Tc, false));
    if (r.loss_mask.defined()) lm.push_back(pad(rows(r.loss_mask), Tc, false));
    for (int64_t i = 0; i < G && !r.tool_turns.empty(); ++i) out.rollout.tool_turns.push_back(r.tool_turns[g * G + i]);
    rew.push_back(p.rewards.narrow(0, g, 1));
    cor.push_back(p.correct.narrow(0, g, 1));
    for (const auto& [fn, v] : p.reward_by_fn) by_fn[fn].push_back(v.narrow(0, g, 1));
    for (int64_t i = 0; i < G; ++i) {
      const size_t n = static_cast<size_t>(g * G + i);
      out.rollout.finish.push_back(r.finish[n]);
      out.completions.push_back(p.completions[n]);
      if (p.transcripts.empty()) continue;
      out.transcripts.push_back(p.transcripts[n]);
      out.messages.push_back(p.messages[n]);
      out.tool_calls.push_back(p.tool_calls[n]);
      out.tool_errors.push_back(p.tool_errors[n]);
      out.tool_useful.push_back(p.tool_useful[n]);
    }
    if (!p.examples.empty()) out.examples.push_back(p.examples[g]);
  }
  out.rollout.prompt_ids = torch::cat(pid);  // (N, Tp)
  out.rollout.prompt_mask = torch::cat(pm);
  out.rollout.completion_ids = torch::cat(cid);  // (N, Tc)
  out.rollout.completion_mask = torch::cat(cm);
  if (lp.size() == picks.size()) out.rollout.logprobs = torch::cat(lp);
  if (lm.size() == picks.size()) out.rollout.loss_mask = torch::cat(lm);
  out.rewards = torch::cat(rew);  // (B, G)
  out.correct = torch::cat(cor);
  for (auto& [fn, v] : by_fn) out.reward_by_fn[fn] = torch::cat(v);
  for (const auto& p : parts) {  // the work of every rollout, kept or not
    out.reward_seconds += p.reward_seconds;
    out.rollout.prefill_tokens += p.rollout.prefill_tokens;
    out.rollout.decode_tokens += p.rollout.decode_tokens;
    out.rollout.prefill_seconds += p.rollout.prefill_seconds;
    out.rollout.decode_seconds += p.rollout.decode_seconds;
    out.rollout.decode_shapes += p.rollout.decode_shapes;
    out.rollout.tool_seconds += p.rollout.tool_seconds;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The step's rollout, with dynamic sampling

namespace {

// One step's rollouts as they are drawn: where the step's prompts start in the data stream, and
// what the rollouts have used and counted so far.
struct RolloutRound {
  GrpoState& st;
  const Tokenizer& tok;
  const SpecialIds& special;
  const PromptDataset& train;
  const int64_t position, step;
  StepRollouts out;
};

// A reward that failed on some completions (each scored 0) is counted in `reward/errors` and said
// once per rollout, so that a user's bad data shows without stopping the run.
void report_reward_errors(const RolloutBatch& p, RolloutRound& r) {
  r.out.reward_errors += double(p.reward_errors);
  if (p.reward_errors > 0)
    std::fprintf(stderr, "warning: step %lld: %lld completion(s) scored 0 because a reward failed on them; first: %s\n",
                 static_cast<long long>(r.step), static_cast<long long>(p.reward_errors), p.reward_error.c_str());
}

// Roll out `mine` prompts from `offset` past the prompts used so far, while the ranks together use
// `total`: rank r's prompts are positions [offset_r, offset_r + mine_r) of this round's sequence.
RolloutBatch roll_prompts(RolloutRound& r, int64_t offset, int64_t mine, int64_t total) {
  const int64_t from = r.position + r.out.prompts_used + offset;
  auto idx = r.train.indices_at(static_cast<uint64_t>(r.st.cfg.seed), from, static_cast<size_t>(mine));
  r.out.prompts_used += total;
  std::vector<Example> batch;
  std::vector<uint64_t> keys;
  for (size_t i : idx) {
    batch.push_back(r.train[i]);
    keys.push_back(i);
  }
  RolloutBatch p = rollout_and_score(r.st, r.tok, r.special, batch, keys, r.step);
  report_reward_errors(p, r);
  return p;
}

// Dynamic sampling: keep this rank's b groups with a reward spread, refilling from the next prompts
// (each rank its own share; a round's refills are consecutive prompts, rank by rank).
RolloutBatch refill_flat_groups(RolloutRound& r, std::vector<RolloutBatch> parts, int64_t b) {
  Dist& dist = *r.st.dist;
  std::vector<std::pair<size_t, int64_t>> keep, flat;  // (part, group)
  auto scan = [&] {
    const RolloutBatch& p = parts.back();
    auto range = std::get<0>(p.rewards.max(1)) - std::get<0>(p.rewards.min(1));  // (b,)
    for (int64_t g = 0; g < p.rewards.size(0); ++g)
      (range[g].item<float>() > 0 && static_cast<int64_t>(keep.size()) < b ? keep : flat).emplace_back(parts.size() - 1, g);
  };
  scan();
  int rollouts = 1;
  for (;; ++rollouts) {
    const int64_t need = b - static_cast<int64_t>(keep.size());
    auto needs = dist.all_gather(torch::tensor({need}, torch::kInt64));  // (W,)
    const int64_t total = needs.sum().item<int64_t>();
    if (total == 0 || rollouts == r.st.cfg.dynamic_sampling_max_rollouts) break;
    if (need == 0) {
      r.out.prompts_used += total;
      continue;
    }
    parts.push_back(roll_prompts(r, needs.narrow(0, 0, dist.rank()).sum().item<int64_t>(), need, total));
    scan();
  }
  const int64_t filled = b - static_cast<int64_t>(keep.size());
  // The kept groups are the mixed ones, so the batch's accuracy leans to 1/2; the policy's own is
  // that of every completion drawn this step.
  double correct = 0, drawn = 0, reward = 0;
  for (const RolloutBatch& p : parts) {
    correct += p.correct.sum().item<double>();
    reward += p.rewards.sum().item<double>();
    drawn += double(p.correct.numel());
  }
  auto counts = dist.all_reduce({double(static_cast<int64_t>(flat.size()) - filled), double(filled), correct, reward, drawn});
  r.out.dynamic_sampling = DynamicSamplingMetrics{double(rollouts), counts[0], counts[1], counts[2] / counts[4], counts[3] / counts[4]};
  for (size_t i = 0; static_cast<int64_t>(keep.size()) < b; ++i) keep.push_back(flat[i]);
  return gather_groups(parts, keep);
}

}  // namespace

StepRollouts collect_rollouts(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& train, int64_t position,
                              int64_t step) {
  const TrainConfig& cfg = st.cfg;
  Dist& dist = *st.dist;
  const int64_t b = cfg.prompts_per_step / dist.world_size();  // this rank's groups
  RolloutRound r{st, tok, special, train, position, step, {}};
  RolloutBatch rb = roll_prompts(r, dist.rank() * b, b, cfg.prompts_per_step);
  if (cfg.dynamic_sampling) rb = refill_flat_groups(r, {std::move(rb)}, b);
  r.out.batch = std::move(rb);
  r.out.reward_errors = dist.all_reduce(r.out.reward_errors);
  return std::move(r.out);
}

}  // namespace grpo
