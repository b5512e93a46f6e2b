// grpo_state.cpp: the trainable state; see grpo_state.h.
#include "grpo/step/grpo_state.h"

#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"

namespace grpo {

LoraConfig lora_config(const TrainConfig& cfg) {
  LoraConfig c;
  c.rank = cfg.lora_rank;
  c.alpha = cfg.lora_alpha;
  c.dropout = cfg.lora_dropout;
  c.targets = lora_target_list(cfg.lora_target_modules);
  return c;
}

GrpoState::GrpoState(TrainConfig c, CausalLM p, int64_t total, CausalLM reference, std::shared_ptr<Dist> ranks)
    : cfg(std::move(c)), policy(std::move(p)), total_steps(total), rewards(std::make_shared<RewardSet>(make_reward_set(cfg))) {
  if (!cfg.tools.empty()) tools = std::make_shared<ToolServer>(cfg);
  if (ranks) dist = std::move(ranks);
  torch::NoGradGuard ng;
  policy->gradient_checkpointing = cfg.gradient_checkpointing;
  check_attention(cfg.attention);
  policy->set_attention(cfg.attention);
  if (cfg.lora_rank > 0 && !has_lora(policy)) add_lora(policy, lora_config(cfg), static_cast<uint64_t>(cfg.seed));
  for (auto& item : policy->named_parameters()) {
    if (cfg.lora_rank > 0 && !is_lora_name(item.key())) continue;
    params.push_back(item.value());
    param_names.push_back(item.key());
  }
  if (!params.empty() && params[0].scalar_type() != torch::kFloat32 && cfg.zero_stage == 0)
    for (auto& q : params) master.push_back(q.detach().to(torch::kFloat32).clone());
  if (cfg.beta > 0 && cfg.lora_rank == 0) {  // frozen: the given reference, else a copy of the initial policy
    if (reference) {
      ref = reference;
    } else {
      auto opts = torch::TensorOptions().dtype(params[0].scalar_type()).device(params[0].device());
      ref = CausalLM(policy->cfg, opts);
      auto src = policy->named_parameters();
      for (auto& item : ref->named_parameters()) item.value().copy_(src[item.key()]);
    }
    for (auto& q : ref->parameters()) q.set_requires_grad(false);
    ref->eval();
    ref->set_attention(policy->attention);
  }
  if (cfg.zero_stage > 0) {
    zero = std::make_unique<ShardedAdamW>(
        params, param_names, AdamWSettings{cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay}, dist, cfg.zero_stage);
    return;
  }
  auto opt = torch::optim::AdamWOptions(cfg.learning_rate)
                 .betas({cfg.adam_beta1, cfg.adam_beta2})
                 .eps(cfg.adam_eps)
                 .weight_decay(cfg.weight_decay);
  optimizer = std::make_unique<torch::optim::AdamW>(trainable(), opt);
}

std::vector<torch::Tensor> GrpoState::trainable() {
  return master.empty() ? params : master;
}

}  // namespace grpo
