// config_aliases.cpp: TRL's GRPOConfig names read as this project's keys where they mean the same
// thing (num_generations is group_size, max_completion_length is max_new_tokens, ...), each
// resolution said in one line on stderr; a TRL name whose meaning differs here is an error that
// says what to use. per_device_train_batch_size is resolved after every source, with its arithmetic.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "grpo/base/common.h"
#include "grpo/config/config.h"

namespace grpo {

namespace {

struct TrlAlias {
  const char* trl;
  const char* ours;
};
// Same meaning, another name.
constexpr TrlAlias kAliases[] = {
    {"num_generations", "group_size"},
    {"max_completion_length", "max_new_tokens"},
    {"max_prompt_length", "max_prompt_tokens"},
    {"gradient_accumulation_steps", "grad_accum"},
    {"epsilon", "clip_eps_low"},
    {"epsilon_high", "clip_eps_high"},
    {"loss_type", "loss_aggregation"},
    {"adam_epsilon", "adam_eps"},
    {"num_train_epochs", "num_epochs"},
    {"lr_scheduler_type", "lr_schedule"},
    {"lora_r", "lora_rank"},
    {"eval_steps", "eval_every"},
};

struct TrlRefused {
  const char* trl;
  const char* instead;
};
// A TRL name whose meaning differs here: what to use instead.
constexpr TrlRefused kRefused[] = {
    {"use_vllm", "generation runs in this process on the trained weights; there is nothing to set (decode_mode picks the decoder)"},
    {"vllm_mode", "generation runs in this process; there is nothing to set"},
    {"generation_batch_size", "a step rolls out prompts_per_step x group_size completions: set prompts_per_step"},
    {"steps_per_generation", "every step generates its own rollouts: num_iterations sets the updates per rollout"},
    {"per_device_eval_batch_size", "evaluation runs 16 prompts at a time; there is nothing to set (eval_limit sets how many)"},
    {"num_completions_to_print", "samples.jsonl holds every log_samples_every-th step's completions: set log_samples_every"},
    {"log_completions", "samples.jsonl holds every log_samples_every-th step's completions: set log_samples_every"},
    {"logging_steps", "every step is logged (metrics.jsonl, TensorBoard); there is nothing to set"},
};

void say(const std::string& trl, const std::string& origin, const std::string& what) {
  std::fprintf(stderr, "config: TRL's %s (%s) %s\n", trl.c_str(), origin.c_str(), what.c_str());
}

bool truthy_text(const std::string& key, const std::string& value, const std::string& origin) {
  const std::string v = to_lower(trim(value));
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw Error("config key '" + key + "' (" + origin + "): expected true or false, found " + quote(value));
}

}  // namespace

std::string trl_alias_of(const std::string& key) {
  for (const TrlAlias& a : kAliases)
    if (key == a.trl) return a.ours;
  return "";
}

bool is_trl_key(const std::string& key) {
  if (!trl_alias_of(key).empty()) return true;
  for (const TrlRefused& r : kRefused)
    if (key == r.trl) return true;
  return key == "bf16" || key == "fp16" || key == "report_to" || key == "per_device_train_batch_size";
}

std::vector<std::string> trl_key_names() {
  std::vector<std::string> out;
  for (const TrlAlias& a : kAliases) out.push_back(a.trl);
  for (const char* k : {"bf16", "fp16", "report_to", "per_device_train_batch_size"}) out.push_back(k);
  return out;
}

bool set_trl_key(TrainConfig& cfg, const std::string& key, const std::string& value, const std::string& origin) {
  if (!is_trl_key(key)) return false;
  for (const TrlRefused& r : kRefused)
    if (key == r.trl) throw Error("config key '" + key + "' (" + origin + "): TRL's setting means something else here: " + r.instead);
  if (const std::string ours = trl_alias_of(key); !ours.empty()) {
    say(key, origin, "is " + ours + " here");
    set_config_value(cfg, ours, value, origin + ", as TRL's " + key);
  } else if (key == "bf16" || key == "fp16") {
    const bool on = truthy_text(key, value, origin);
    const std::string dtype = on ? (key == "bf16" ? "bfloat16" : "float16") : "float32";
    say(key, origin, "= " + std::string(on ? "true" : "false") + " is dtype: " + dtype + " here");
    set_config_value(cfg, "dtype", dtype, origin + ", as TRL's " + key);
  } else if (key == "report_to") {
    const std::string v = to_lower(std::string(trim(value)));
    if (v != "tensorboard" && v != "[\"tensorboard\"]" && v != "none" && v != "all")
      throw Error("config key 'report_to' (" + origin + "): only TensorBoard is written here (output_dir/tb), found " + quote(value));
    say(key, origin, "needs nothing here: every run writes TensorBoard events to output_dir/tb");
  } else {
    cfg.trl_per_device_train_batch_size = static_cast<int>(std::strtol(value.c_str(), nullptr, 10));
    if (cfg.trl_per_device_train_batch_size < 1)
      throw Error("config key 'per_device_train_batch_size' (" + origin + "): expected an integer >= 1, found " + quote(value));
    cfg.origin["per_device_train_batch_size"] = origin;
  }
  return true;
}

void resolve_trl_batch(TrainConfig& cfg) {
  if (cfg.trl_per_device_train_batch_size <= 0) return;
  const char* ws = std::getenv("WORLD_SIZE");
  const int world = ws ? std::max(1, std::atoi(ws)) : 1;
  const long total = long(cfg.trl_per_device_train_batch_size) * cfg.grad_accum * world;
  const std::string arithmetic = "per_device_train_batch_size " + std::to_string(cfg.trl_per_device_train_batch_size) +
                                 " x gradient_accumulation_steps " + std::to_string(cfg.grad_accum) + " x WORLD_SIZE " +
                                 std::to_string(world) + " = " + std::to_string(total) + " completions a step";
  if (total % cfg.group_size != 0)
    throw Error("config key 'per_device_train_batch_size' (" + cfg.origin["per_device_train_batch_size"] + "): " + arithmetic +
                ", not a multiple of num_generations (group_size) " + std::to_string(cfg.group_size) + "; TRL refuses it too");
  set_config_value(cfg, "prompts_per_step", std::to_string(total / cfg.group_size), cfg.origin["per_device_train_batch_size"]);
  say("per_device_train_batch_size", cfg.origin["per_device_train_batch_size"],
      "is prompts_per_step " + std::to_string(total / cfg.group_size) + " here: " + arithmetic + ", / group_size " +
          std::to_string(cfg.group_size));
  cfg.trl_per_device_train_batch_size = 0;
}

}  // namespace grpo
