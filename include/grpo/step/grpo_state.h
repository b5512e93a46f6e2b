// grpo_state.h: what a GRPO run trains and carries from step to step: the policy (+ the frozen
// reference), AdamW over fp32 master weights, the counters, the rewards, the rollout's decode
// buffers and the ranks. Every step function (rollout.h, update.h, grpo_step.h) takes it.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/engine/distributed.h"
#include "grpo/engine/sampler.h"
#include "grpo/engine/tool_server.h"
#include "grpo/engine/zero.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/lora.h"
#include "grpo/rewards/reward.h"

namespace grpo {

// The LoRA settings of a config (lora_rank 0: none).
LoraConfig lora_config(const TrainConfig& cfg);

// The trainable state: policy (+ frozen reference), AdamW over fp32 master weights (the policy's
// own parameters when it is fp32), counters. With lora_rank > 0 only the adapters' A and B train
// (lora.h; fp32, so no masters) and the reference is the policy with its adapters off.
struct GrpoState {
  TrainConfig cfg;
  CausalLM policy{nullptr};
  CausalLM ref{nullptr};                           // only when beta > 0 without LoRA
  std::vector<torch::Tensor> params;               // the policy parameters that train: all, or the adapters'
  std::vector<std::string> param_names;            // their names in the model
  std::vector<torch::Tensor> master;               // fp32 copies of `params` (empty when they are fp32, or with zero_stage > 0)
  std::unique_ptr<torch::optim::AdamW> optimizer;  // zero_stage 0: every rank the whole state
  std::unique_ptr<ShardedAdamW> zero;              // zero_stage 1 / 2: this rank's share (masters included)
  int64_t step = 0;                                // optimizer updates done
  int64_t total_steps = 1;                         // for the lr schedule
  int64_t skipped_updates = 0;                     // non-finite loss or gradient
  // Rollout decode buffers and CUDA graphs, kept from step to step (decode_mode static / cuda_graph).
  std::shared_ptr<StaticDecodeState> decoder = std::make_shared<StaticDecodeState>();
  // The rewards of cfg: built-ins, rules, and the external program (started once, here).
  std::shared_ptr<RewardSet> rewards;
  // The tools of cfg (tool_command started once, here); null without tools.
  std::shared_ptr<ToolServer> tools;
  int64_t data_position = 0;  // training prompts consumed (dynamic sampling draws more than B per step)
  // The data-parallel ranks (one process: world size 1, every collective the identity). Each rank
  // holds B / W of the step's groups; update_policy makes every normaliser global.
  std::shared_ptr<Dist> dist = std::make_shared<Dist>();
  // beta > 0: `reference` becomes the frozen reference (e.g. the initial model when resuming);
  // without one, the reference is a copy of `policy` (with LoRA: none, the adapters are switched off).
  // lora_rank > 0 adds the adapters to `policy` unless it has them (a resumed adapter).
  // `ranks` (default: one process) are needed here when zero_stage > 0: the shard is the rank's.
  GrpoState(TrainConfig cfg, CausalLM policy, int64_t total_steps, CausalLM reference = nullptr, std::shared_ptr<Dist> ranks = nullptr);
  std::vector<torch::Tensor> trainable();  // what the optimizer updates
};

}  // namespace grpo
