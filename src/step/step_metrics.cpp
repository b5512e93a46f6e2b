// step_metrics.cpp: the metrics.jsonl writer; see step_metrics.h.
#include "grpo/step/step_metrics.h"

#include <cmath>

namespace grpo {

using json = nlohmann::json;

namespace {

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

void put(json& j, const char* key, const std::optional<double>& v) {
  if (v) j[key] = number(*v);
}

}  // namespace

json to_json(const StepMetrics& m) {
  json j = {{"step", m.step},     {"epoch", number(m.epoch)},         {"loss", number(m.loss)},
            {"lr", number(m.lr)}, {"grad_norm", number(m.grad_norm)}, {"skipped", number(m.skipped)}};
  put(j, "kl", m.kl);
  put(j, "clip_ratio_low", m.clip_ratio_low);
  put(j, "clip_ratio_high", m.clip_ratio_high);
  put(j, "clip_ratio_region", m.clip_ratio_region);
  put(j, "entropy", m.entropy);
  put(j, "entropy_mask_frac", m.entropy_mask_frac);
  if (const auto& s = m.sampling) {
    j["sampling/sampling_logp_difference/mean"] = number(s->logp_difference_mean);
    j["sampling/sampling_logp_difference/max"] = number(s->logp_difference_max);
    j["sampling/importance_sampling_ratio/mean"] = number(s->ratio_mean);
    j["sampling/importance_sampling_ratio/min"] = number(s->ratio_min);
    j["sampling/importance_sampling_ratio/max"] = number(s->ratio_max);
  }
  put(j, "reward_mean", m.reward_mean);
  put(j, "reward_std", m.reward_std);
  put(j, "accuracy", m.accuracy);
  put(j, "frac_reward_zero_std", m.frac_reward_zero_std);
  for (const auto& [name, v] : m.reward_by_function) j["reward/" + name] = number(v);
  put(j, "reward/errors", m.reward_errors);
  put(j, "completion_len_mean", m.completion_len_mean);
  put(j, "completion_len_max", m.completion_len_max);
  put(j, "truncated_frac", m.truncated_frac);
  if (const auto& d = m.dynamic_sampling) {
    j["dynamic_sampling/rollouts"] = number(d->rollouts);
    j["dynamic_sampling/groups_dropped"] = number(d->groups_dropped);
    j["dynamic_sampling/groups_filled_flat"] = number(d->groups_filled_flat);
    j["dynamic_sampling/accuracy_all"] = number(d->accuracy_all);
    j["dynamic_sampling/reward_mean_all"] = number(d->reward_mean_all);
  }
  if (const auto& t = m.tools) {
    j["tool_calls_mean"] = number(t->calls_mean);
    j["tool_errors"] = number(t->errors);
    j["tool_time_s"] = number(t->time_s);
    j["tool_useful_frac"] = number(t->useful_frac);
  }
  put(j, "tokens", m.tokens);
  if (const auto& t = m.timing) {
    j["time_rollout_s"] = number(t->rollout_s);
    j["time_update_s"] = number(t->update_s);
    j["time_rewards_s"] = number(t->rewards_s);
    j["time_step_s"] = number(t->rollout_s + t->update_s);
    j["rollout_tokens_per_s"] = number(t->rollout_tokens_per_s);
    j["update_tokens_per_s"] = number(t->update_tokens_per_s);
    j["peak_mem_mb"] = number(t->peak_mem_mb);
    if (t->decode_new_shapes) j["decode_new_shapes"] = *t->decode_new_shapes;
  }
  return j;
}

}  // namespace grpo
