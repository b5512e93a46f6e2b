// config_validate.cpp: the range and consistency checks of a resolved TrainConfig (validate_config),
// made before any model is loaded, each error naming the key, where it was set, expected and found;
// and the chat-template settings as load_chat_template takes them.
#include <algorithm>
#include <cmath>

#include "grpo/base/common.h"
#include "grpo/config/config.h"

namespace grpo {

namespace {

struct Validator {
  const TrainConfig& cfg;
  void fail(const std::string& key, const std::string& expected) const {
    auto it = cfg.origin.find(key);
    std::string where = it == cfg.origin.end() ? "default" : it->second;
    throw Error("config key '" + key + "' (" + where + "): expected " + expected + ", found " + get_config_value(cfg, key));
  }
  void at_least(const char* key, double lo) const {
    if (std::stod(get_config_value(cfg, key)) < lo) fail(key, std::string(">= ") + format_double(lo));
  }
};

// The tool keys: limits, and tool_command exactly when some tool is a schema it serves.
void validate_tools(const TrainConfig& c, const Validator& v) {
  v.at_least("max_tool_calls", 1);
  v.at_least("max_tool_tokens", 16);
  if (!(c.tool_timeout > 0)) v.fail("tool_timeout", "> 0");
  v.at_least("tool_restarts", 0);
  std::string served;  // the schema tools: tool_command answers them
  for (const auto& t : c.tools)
    if (!t.builtin) served += (served.empty() ? "" : ", ") + t.name;
  if (!served.empty() && c.tool_command.empty())
    throw Error("config key 'tools': " + served + " " + (served.find(',') == std::string::npos ? "is" : "are") +
                " not built in, so tool_command must name the program that serves " +
                (served.find(',') == std::string::npos ? "it" : "them"));
  if (served.empty() && !c.tool_command.empty())
    v.fail("tool_command", "[] while no tool is a function schema for it to serve (tools: " + get_config_value(c, "tools") + ")");
}

}  // namespace

void validate_chat_settings(const TrainConfig& c) {
  if (c.chat_template != "auto" && c.chat_template != "chatml") {
    require_config_file(c, "chat_template", "auto, chatml or the path of an existing .jinja file");
    jinja::Template(read_file(c.chat_template), c.chat_template);  // one that does not parse fails here, before anything loads
  }
  chat_settings(c);  // enable_thinking against chat_template_kwargs
}

void validate_config(const TrainConfig& c) {
  Validator v{c};
  validate_chat_settings(c);
  v.at_least("group_size", 2);
  v.at_least("prompts_per_step", 1);
  v.at_least("max_prompt_tokens", 1);
  v.at_least("max_new_tokens", 1);
  v.at_least("train_limit", 0);
  v.at_least("top_k", 0);
  v.at_least("warmup_steps", 0);
  v.at_least("weight_decay", 0);
  v.at_least("max_grad_norm", 0);
  v.at_least("grad_accum", 1);
  v.at_least("num_iterations", 1);
  v.at_least("beta", 0);
  v.at_least("entropy_coef", 0);
  v.at_least("length_target", 1);
  v.at_least("max_steps", 0);
  v.at_least("num_epochs", 1);
  v.at_least("eval_every", 0);
  v.at_least("eval_limit", 0);
  v.at_least("eval_samples", 0);
  v.at_least("save_steps", 0);
  v.at_least("save_total_limit", 0);
  v.at_least("log_samples_every", 0);
  if (!(c.temperature > 0)) v.fail("temperature", "> 0");
  if (!(c.eval_temperature > 0)) v.fail("eval_temperature", "> 0");
  if (!(c.top_p > 0 && c.top_p <= 1)) v.fail("top_p", "a value in (0, 1]");
  if (!(c.min_p >= 0 && c.min_p < 1)) v.fail("min_p", "a value in [0, 1)");
  if (!(c.repetition_penalty > 0)) v.fail("repetition_penalty", "> 0");
  if (!(c.learning_rate > 0)) v.fail("learning_rate", "> 0");
  if (!(c.adam_beta1 >= 0 && c.adam_beta1 < 1)) v.fail("adam_beta1", "a value in [0, 1)");
  if (!(c.adam_beta2 >= 0 && c.adam_beta2 < 1)) v.fail("adam_beta2", "a value in [0, 1)");
  if (!(c.adam_eps > 0)) v.fail("adam_eps", "> 0");
  if (!(c.clip_eps_low >= 0 && c.clip_eps_low < 1)) v.fail("clip_eps_low", "a value in [0, 1)");
  if (!(c.clip_eps_high >= 0)) v.fail("clip_eps_high", ">= 0");
  if (!(c.delta == 0 || c.delta > 1 + c.clip_eps_high)) v.fail("delta", "0 (off) or > 1 + clip_eps_high");
  if (!(c.top_entropy_quantile > 0 && c.top_entropy_quantile <= 1)) v.fail("top_entropy_quantile", "a value in (0, 1]");
  if (!(c.vllm_importance_sampling_clip_min >= 0)) v.fail("vllm_importance_sampling_clip_min", ">= 0 (0 = no lower bound)");
  if (!(c.vllm_importance_sampling_clip_max > c.vllm_importance_sampling_clip_min))
    v.fail("vllm_importance_sampling_clip_max",
           "> vllm_importance_sampling_clip_min = " + format_double(c.vllm_importance_sampling_clip_min));
  if (!(c.ref_model_mixup_alpha >= 0 && c.ref_model_mixup_alpha <= 1)) v.fail("ref_model_mixup_alpha", "a value in [0, 1]");
  v.at_least("ref_model_sync_steps", 1);
  if (c.sync_ref_model && c.beta == 0) v.fail("sync_ref_model", "false while beta = 0 (without the KL term there is no reference to sync)");
  v.at_least("dynamic_sampling_max_rollouts", 1);
  v.at_least("overlong_max_len", 0);
  v.at_least("overlong_buffer_len", 0);
  if (c.overlong_buffer_len > (c.overlong_max_len > 0 ? c.overlong_max_len : c.max_new_tokens))
    v.fail("overlong_buffer_len", "<= overlong_max_len (or max_new_tokens when that is 0)");
  if ((c.prompts_per_step * c.group_size) % c.grad_accum != 0)
    v.fail("grad_accum", "a divisor of prompts_per_step * group_size = " + std::to_string(c.prompts_per_step * c.group_size));
  if (c.model_path.empty()) throw Error("no model path given: pass it as grpo_train's first argument");
  v.at_least("reward_restarts", 0);
  if (!(c.reward_timeout > 0)) v.fail("reward_timeout", "> 0");
  if (c.dist_timeout_s < 1) v.fail("dist_timeout_s", ">= 1");
  if (c.zero_stage < 0 || c.zero_stage > 2) v.fail("zero_stage", "0, 1 or 2");
  v.at_least("lora_rank", 0);
  if (!(c.lora_alpha > 0)) v.fail("lora_alpha", "> 0");
  if (!(c.lora_dropout >= 0 && c.lora_dropout < 1)) v.fail("lora_dropout", "a value in [0, 1)");
  {
    auto known = lora_target_names();
    known.insert(known.end(), lora_fused_target_names().begin(), lora_fused_target_names().end());
    const auto targets = lora_target_list(c.lora_target_modules);
    for (const auto& name : targets)
      if (std::find(known.begin(), known.end(), name) == known.end())
        v.fail("lora_target_modules",
               "a comma-separated list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (fused: qkv_proj, gate_up_proj)");
    if (targets.empty()) v.fail("lora_target_modules", "at least one projection");
  }
  if (c.lora_rank > 0 && c.sync_ref_model) v.fail("sync_ref_model", "false with lora_rank > 0 (the reference is the frozen base)");
  if (!std::isfinite(c.reward_command_weight)) v.fail("reward_command_weight", "a finite number");
  validate_tools(c, v);
  double total = 0;
  for (const auto& [fn, w] : c.reward_weights) total += std::abs(w);
  for (const auto& r : c.reward_rules) total += std::abs(r.weight);
  if (!c.reward_command.empty()) total += std::abs(c.reward_command_weight);
  if (total == 0)
    throw Error("config key 'reward_weights': at least one reward weight (of a function, a rule or reward_command) must be non-zero");
}

ChatSettings chat_settings(const TrainConfig& cfg) {
  ChatSettings c;
  c.chat_template = cfg.chat_template;
  c.kwargs = cfg.chat_template_kwargs;
  if (cfg.enable_thinking == ThinkingSwitch::Auto) return c;
  const bool on = cfg.enable_thinking == ThinkingSwitch::On;
  if (c.kwargs.contains("enable_thinking") && c.kwargs["enable_thinking"] != ordered_json(on))
    throw Error("config keys enable_thinking (" + choice_name(cfg.enable_thinking) + ") and chat_template_kwargs.enable_thinking (" +
                json_text(c.kwargs["enable_thinking"]) + ") disagree; give one");
  c.kwargs["enable_thinking"] = on;
  return c;
}

}  // namespace grpo
