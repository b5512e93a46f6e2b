// grpo_step.cpp: homework step 5, one GRPO step; see grpo_step.h. The step reads top to bottom:
// rollout -> advantages -> update, then the step's metrics.
#include "grpo/step/grpo_step.h"

#include <chrono>

#include "grpo/base/device.h"

namespace grpo {

namespace {

using Clock = std::chrono::steady_clock;

// Runs one phase of the step; running out of memory in it (CUDA's OutOfMemoryError, or the CPU
// allocator's failure) becomes OutOfMemory with the settings that would make it fit.
// GRPO_FAILPOINT=oom_rollout|oom_update fakes it for the tests.
template <class Phase>
auto in_phase(const std::string& phase, int64_t step, const TrainConfig& c, Phase&& run) -> decltype(run()) {
  try {
    TORCH_CHECK_WITH(OutOfMemoryError, !failpoint("oom_" + phase), "CUDA out of memory. Tried to allocate 2.00 GiB (failpoint)");
    return run();
  } catch (const c10::Error& e) {
    const std::string what = error_text(e), first_line = what.substr(0, what.find('\n'));
    if (!dynamic_cast<const c10::OutOfMemoryError*>(&e) && what.find("can't allocate memory") == std::string::npos) throw;
    const int64_t N = int64_t(c.prompts_per_step) * c.group_size;
    const std::string lower = phase == "rollout"
                                  ? "lower prompts_per_step (now " + std::to_string(c.prompts_per_step) + "), group_size (now " +
                                        std::to_string(c.group_size) + ") or max_new_tokens (now " + std::to_string(c.max_new_tokens) + ")"
                                  : "raise grad_accum (now " + std::to_string(c.grad_accum) + ": micro-batches of " +
                                        std::to_string(N / c.grad_accum) + " sequences), lower max_new_tokens (now " +
                                        std::to_string(c.max_new_tokens) + ")" +
                                        (c.gradient_checkpointing ? "" : ", or set gradient_checkpointing: true");
    throw OutOfMemory("out of memory in the " + phase + " of step " + std::to_string(step) + " (" + first_line + "); " + lower);
  }
}

// Tokens summed over the ranks, times and memory of the slowest / fullest rank; throughputs are
// tokens generated per rollout second and prompt + completion tokens per update second, times
// num_iterations.
StepTiming step_timing(const GrpoState& st, const RolloutBatch& rb, double t_roll, double t_upd, const torch::Device& device) {
  const Rollout& r = rb.rollout;
  const auto tokens = st.dist->all_reduce(
      {double(r.decode_tokens), double((torch::cat({r.prompt_mask, r.completion_mask}, 1)).sum().item<int64_t>()) * st.cfg.num_iterations});
  const auto slowest = st.dist->all_reduce({t_roll, t_upd, rb.reward_seconds, peak_memory_mb(device)}, Dist::Op::Max);
  StepTiming t;
  t.rollout_s = slowest[0];
  t.update_s = slowest[1];
  t.rewards_s = slowest[2];
  t.peak_mem_mb = slowest[3];
  t.rollout_tokens_per_s = tokens[0] / std::max(t.rollout_s, 1e-9);
  t.update_tokens_per_s = tokens[1] / std::max(t.update_s, 1e-9);
  if (st.cfg.decode_mode != DecodeMode::Eager) t.decode_new_shapes = r.decode_shapes;
  return t;
}

// Tool calls of every rank's completions.
ToolMetrics tool_metrics(const GrpoState& st, const RolloutBatch& rb) {
  double calls = 0, errors = 0, useful = 0;
  for (size_t n = 0; n < rb.tool_calls.size(); ++n) {
    calls += double(rb.tool_calls[n]);
    errors += double(rb.tool_errors[n]);
    useful += rb.tool_useful[n];
  }
  const auto sums = st.dist->all_reduce({calls, errors, useful, double(rb.tool_calls.size())});
  ToolMetrics t;
  t.calls_mean = sums[0] / std::max(1.0, sums[3]);
  t.errors = sums[1];
  t.useful_frac = sums[2] / std::max(1.0, sums[3]);
  t.time_s = st.dist->all_reduce(rb.rollout.tool_seconds, Dist::Op::Max);
  return t;
}

}  // namespace

void add_reward_metrics(const GrpoState& st, const RolloutBatch& rb, const torch::Tensor& rewards, const Advantages& adv, StepMetrics& m) {
  Dist& dist = *st.dist;
  m.reward_mean = rewards.mean().item<double>();
  m.reward_std = rewards.std().item<double>();
  m.accuracy = dist.all_gather(rb.correct).mean().item<double>();
  for (const auto& [fn, v] : rb.reward_by_fn) m.reward_by_function[fn] = dist.all_gather(v).mean().item<double>();
  m.frac_reward_zero_std = adv.frac_reward_zero_std;
}

StepResult train_grpo_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const PromptDataset& train) {
  const TrainConfig& cfg = st.cfg;
  Dist& dist = *st.dist;
  const torch::Device device = st.policy->output_weight().device();
  const int64_t step = st.step + 1;  // the step this call makes, 1-based as everything logs it
  reset_peak_memory(device);         // CUDA: peak_mem_mb is this step's high-water mark
  StepResult out;

  // ---- rollout: this rank's B / W prompts x G completions, scored; flat groups refilled (dynamic sampling)
  auto t0 = Clock::now();
  StepRollouts rollouts = in_phase("rollout", step, cfg, [&] { return collect_rollouts(st, tok, special, train, st.data_position, step); });
  out.batch = std::move(rollouts.batch);
  st.data_position += rollouts.prompts_used;  // every rank's prompts, refills included
  const double t_roll = seconds_since(t0, device);

  // ---- advantages over every rank's B groups (batch scaling needs them all); this rank keeps its rows
  t0 = Clock::now();
  const torch::Tensor rewards = dist.all_gather(out.batch.rewards);            // (B, G)
  const Advantages adv = compute_advantages_grpo(rewards, cfg.scale_rewards);  // (B, G)
  const int64_t b = out.batch.rewards.size(0);
  out.advantages = adv.advantages.narrow(0, dist.rank() * b, b);  // (b, G)

  // ---- update: old/ref log-probs, mu x K micro-batches of the clipped loss, AdamW
  StepMetrics& m = out.metrics;
  m = in_phase("update", step, cfg, [&] { return update_policy(st, out.batch, out.advantages); });
  const double t_upd = seconds_since(t0, device);

  // ---- the step is done: count it; the reference follows the policy on its schedule (TR-DPO)
  st.step = step;
  if (reference_sync_due(cfg, step)) sync_reference(st, cfg.ref_model_mixup_alpha);

  // ---- the step's metrics
  m.step = step;
  m.epoch = double(st.data_position) / double(train.size());
  m.reward_errors = rollouts.reward_errors;
  m.dynamic_sampling = rollouts.dynamic_sampling;
  add_reward_metrics(st, out.batch, rewards, adv, m);
  if (st.tools) m.tools = tool_metrics(st, out.batch);
  m.timing = step_timing(st, out.batch, t_roll, t_upd, device);
  return out;
}

}  // namespace grpo
