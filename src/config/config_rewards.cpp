// config_rewards.cpp: the reward set a config asks for; see config.h.
#include <algorithm>
#include <memory>

#include "grpo/config/config.h"
#include "grpo/rewards/reward.h"
#include "grpo/rewards/reward_program.h"

namespace grpo {

RewardSet make_reward_set(const TrainConfig& cfg) {
  std::shared_ptr<RewardProgram> program;
  if (!cfg.reward_command.empty()) program = std::make_shared<RewardProgram>(cfg.reward_command, cfg.reward_timeout, cfg.reward_restarts);
  RewardContext ctx{cfg.answer_mode, cfg.length_target};
  ctx.overlong_max_len = cfg.overlong_max_len > 0 ? cfg.overlong_max_len : cfg.max_new_tokens;
  ctx.overlong_buffer_len = cfg.overlong_buffer_len > 0 ? cfg.overlong_buffer_len : std::max(1, ctx.overlong_max_len / 4);
  return RewardSet(cfg.reward_weights, ctx, cfg.reward_rules, program, cfg.reward_command_weight);
}

}  // namespace grpo
