// config.h: TrainConfig, the one plain struct holding every knob of a run, and how it is resolved:
// defaults, then a YAML/JSON file, then `--set key=value` overrides, then validation (before any
// model is loaded). Keys are one flat namespace; the map `reward_weights` is addressed as
// `reward_weights.<fn>`, and the lists `reward_rules`, `reward_command`, `tools` and `tool_command`
// take a YAML/JSON list in a file or JSON text with --set. Unknown keys are errors that suggest the closest key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "grpo/base/settings.h"
#include "grpo/chat/chat_template.h"
#include "grpo/chat/tool_calls.h"
#include "grpo/rewards/reward_rules.h"

namespace grpo {

// The default system prompt (DeepSeek-R1 style): reason in <think>, final number in <answer>.
extern const char* const kDefaultSystemPrompt;

// ---------------------------------------------------------------------------------------------
// Every knob of a run, one line each: K(type, name, default, help). The struct below, the key
// table (parsing, printing), --help and the resolved config.yaml are all generated from this list,
// so a knob's help is written here once.

#define GRPO_CONFIG_KEYS(K)                                                                                                            \
  /* ---- model and data */                                                                                                            \
  K(std::string, model_path, "", "HF model dir (grpo_train's positional argument)")                                                    \
  K(std::string, train_data, "data/gsm8k/train.jsonl", "GSM8K-style JSONL for training")                                               \
  K(std::string, eval_data, "data/gsm8k/test.jsonl", "held-out JSONL for evaluation")                                                  \
  K(int, train_limit, 0, "use only the first N training examples (0 = all)")                                                           \
  K(int, seed, 42, "seeds data order, sampling and init")                                                                              \
  K(std::string, output_dir, "runs/grpo", "metrics, checkpoints, report")                                                              \
  K(std::string, system_prompt, kDefaultSystemPrompt, "system message of every prompt (\"\": none, the template's default)")           \
  K(std::string, chat_template, "auto", "prompt template: auto (the model's own chat_template), chatml (built-in) or a .jinja file")   \
  K(ThinkingSwitch, enable_thinking, ThinkingSwitch::Auto, "shortcut for chat_template_kwargs.enable_thinking (auto: not passed)")     \
  K(int, max_prompt_tokens, 512, "longer prompts keep their last tokens")                                                              \
  K(int, max_new_tokens, 512, "completion length cap")                                                                                 \
  /* ---- rollout (sampling) */                                                                                                        \
  K(int, group_size, 8, "G: completions sampled per prompt")                                                                           \
  K(int, prompts_per_step, 8, "B: prompts per step (N = B*G sequences)")                                                               \
  K(double, temperature, 1.0, "sampling temperature (> 0); the loss uses the same one")                                                \
  K(double, top_p, 1.0, "nucleus sampling mass in (0, 1]")                                                                             \
  K(int, top_k, 0, "keep the k most likely ids (0 = off)")                                                                             \
  K(double, min_p, 0.0, "drop ids with p < min_p * p_max (0 = off)")                                                                   \
  K(double, repetition_penalty, 1.0, "CTRL-style penalty on seen ids (1 = off)")                                                       \
  K(bool, dynamic_sampling, false, "DAPO: drop groups whose rewards are all equal, refill from the next prompts")                      \
  K(int, dynamic_sampling_max_rollouts, 4, "rollouts per step at most with dynamic_sampling (then the step goes on)")                  \
  /* ---- optimisation */                                                                                                              \
  K(double, learning_rate, 1e-6, "AdamW peak learning rate")                                                                           \
  K(int, warmup_steps, 0, "linear warmup from 0 to learning_rate")                                                                     \
  K(LrSchedule, lr_schedule, LrSchedule::Constant, "after warmup")                                                                     \
  K(double, weight_decay, 0.0, "AdamW decoupled weight decay")                                                                         \
  K(double, adam_beta1, 0.9, "AdamW beta1")                                                                                            \
  K(double, adam_beta2, 0.99, "AdamW beta2")                                                                                           \
  K(double, adam_eps, 1e-8, "AdamW epsilon")                                                                                           \
  K(double, max_grad_norm, 1.0, "clip the global gradient norm (0 = off)")                                                             \
  K(int, grad_accum, 1, "micro-batches per optimizer step (N must divide evenly)")                                                     \
  K(int, num_iterations, 1, "mu: policy updates per rollout batch")                                                                    \
  /* ---- the loss (names as in TRL's GRPOConfig where it has one) */                                                                  \
  K(double, clip_eps_low, 0.2, "PPO clip: ratio >= 1 - clip_eps_low")                                                                  \
  K(double, clip_eps_high, 0.2, "PPO clip: ratio <= 1 + clip_eps_high (DAPO: 0.28)")                                                   \
  K(double, delta, 0.0, "two-sided clip: cap the unclipped ratio at delta too (0 = off; > 1 + clip_eps_high)")                         \
  K(ImportanceSamplingLevel, importance_sampling_level, ImportanceSamplingLevel::Token,                                                \
    "ratio per token, or one per completion: exp(masked mean log-ratio) (GSPO)")                                                       \
  K(double, beta, 0.0, "KL(k3) coefficient to a frozen reference (0 = no reference)")                                                  \
  K(bool, use_bias_correction_kl, true,                                                                                                \
    "multiply the KL term by the ratio: the unbiased reverse-KL gradient (DeepSeek-V3.2, TRL's default)")                              \
  K(bool, sync_ref_model, false, "mix the policy into the reference every ref_model_sync_steps (TR-DPO)")                              \
  K(double, ref_model_mixup_alpha, 0.6, "sync_ref_model: ref = alpha * policy + (1 - alpha) * ref")                                    \
  K(int, ref_model_sync_steps, 512, "sync_ref_model: steps between two mixes")                                                         \
  /* dapo (TRL's default loss_type): one token one vote over the step, no per-sequence length bias */                                  \
  K(LossAggregation, loss_aggregation, LossAggregation::Dapo, "token loss aggregation (TRL's loss_type)")                              \
  K(RewardScale, scale_rewards, RewardScale::Group, "advantage scale")                                                                 \
  K(bool, mask_truncated_completions, false, "exclude completions cut at max_new_tokens from the loss")                                \
  K(double, top_entropy_quantile, 1.0, "train only on the tokens in this top fraction of entropy (1 = all)")                           \
  K(double, entropy_coef, 0.0, "entropy bonus coefficient")                                                                            \
  K(bool, vllm_importance_sampling_correction, true,                                                                                   \
    "weight the loss by the truncated ratio trainer/sampler probability (TRL's name; our sampler plays vLLM)")                         \
  K(IsCorrectionMode, vllm_importance_sampling_mode, IsCorrectionMode::SequenceMask,                                                   \
    "per token or per completion; clip the ratio to [min, max] (truncate) or drop it outside (mask)")                                  \
  K(double, vllm_importance_sampling_clip_max, 3.0, "upper bound C_max of the sampler correction ratio")                               \
  K(double, vllm_importance_sampling_clip_min, 0.0, "lower bound C_min of the sampler correction ratio (0 = none)")                    \
  /* ---- LoRA (PEFT's names): only A and B train; the base, frozen, is also the KL's reference */                                     \
  K(int, lora_rank, 0, "LoRA rank r (0 = full fine-tuning)")                                                                           \
  K(double, lora_alpha, 16.0, "LoRA scaling = lora_alpha / lora_rank")                                                                 \
  K(double, lora_dropout, 0.0, "dropout on the adapters' input, in training")                                                          \
  K(std::string, lora_target_modules, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",                                       \
    "projections that get an adapter (comma-separated)")                                                                               \
  K(bool, gradient_checkpointing, false, "recompute each decoder layer in backward (less memory, ~1/3 more compute)")                  \
  /* ---- rewards (and reward_weights, reward_rules, reward_command below) */                                                          \
  K(AnswerMode, answer_mode, AnswerMode::Strict, "answer extraction and comparison (strict, flexible: numbers; math: as math-verify)") \
  K(int, length_target, 1024, "`length` reward: penalty past this many characters")                                                    \
  K(int, overlong_max_len, 0, "`overlong` reward (DAPO): -1 past this many tokens (0 = max_new_tokens)")                               \
  K(int, overlong_buffer_len, 0, "`overlong` reward: linear from 0 to -1 over this many tokens before it (0 = 1/4)")                   \
  K(double, reward_command_weight, 1.0, "weight of each component reward_command returns")                                             \
  K(double, reward_timeout, 60, "seconds reward_command may take per batch before a restart")                                          \
  K(int, reward_restarts, 2, "restarts of a crashed or hung reward_command per run, then an error")                                    \
  /* ---- tools (and the lists tools, tool_command below): multi-turn rollouts, tool results never trained */                          \
  K(int, max_tool_calls, 4, "tool turns per completion (a call past them ends it unanswered)")                                         \
  K(int, max_tool_tokens, 256, "tokens of one tool turn's rendered results at most (longer results are cut)")                          \
  K(double, tool_timeout, 30, "seconds tool_command may take per batch of calls before a restart")                                     \
  K(int, tool_restarts, 2, "restarts of a crashed or hung tool_command per run, then an error")                                        \
  /* ---- schedule, evaluation, checkpoints, logging */                                                                                \
  K(int, max_steps, 0, "optimizer steps (0 = num_epochs over train_data)")                                                             \
  K(int, num_epochs, 1, "passes over train_data when max_steps = 0")                                                                   \
  K(int, eval_every, 50, "evaluate every N steps (0 = only before/after)")                                                             \
  K(int, eval_limit, 200, "evaluate on the first N eval_data questions (0 = all)")                                                     \
  K(int, eval_samples, 0, "sampled draws per eval question (0 = greedy only)")                                                         \
  K(double, eval_temperature, 1.0, "temperature of the sampled evaluation")                                                            \
  K(int, save_steps, 50, "checkpoint every N steps (0 = only at the end)")                                                             \
  K(int, save_total_limit, 2, "keep the newest N checkpoints (0 = keep all)")                                                          \
  K(int, log_samples_every, 10, "write prompts+completions to samples.jsonl every N steps (0 = off)")                                  \
  /* ---- system */                                                                                                                    \
  K(Precision, dtype, Precision::Auto, "weights and activations (auto: bf16 on CUDA, fp32 on CPU)")                                    \
  K(DeviceSetting, device, DeviceSetting{}, "auto | cpu | cuda | cuda:N (auto: cuda:0 when CUDA is available)")                        \
  K(DecodeMode, decode_mode, DecodeMode::Eager, "decode step: eager, static shapes, or static captured as CUDA graphs")                \
  K(AttentionKernel, attention, AttentionKernel::Eager,                                                                                \
    "attention kernel: eager formula, or scaled_dot_product_attention (LibTorch >= 2.0)")                                              \
  /* ---- several processes (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) */                                  \
  K(DistBackend, dist_backend, DistBackend::Auto, "collectives between ranks: auto (nccl on CUDA, gloo on CPU), nccl, gloo")           \
  K(int, dist_timeout_s, 600, "a collective waiting longer (a rank died or hangs) ends the run with an error")                         \
  K(int, zero_stage, 0, "optimizer state over the ranks: 0 replicas, 1 sharded AdamW (ZeRO-1), 2 sharded gradients too (ZeRO-2)")

struct TrainConfig {
#define GRPO_CONFIG_FIELD(type, name, init, help) type name = init;
  GRPO_CONFIG_KEYS(GRPO_CONFIG_FIELD)
#undef GRPO_CONFIG_FIELD
  // The keys that are not scalars:
  std::map<std::string, double> reward_weights = {{"correctness", 1.0}, {"format", 0.1}, {"tags", 0.0},
                                                  {"digit", 0.0},       {"length", 0.0}, {"overlong", 0.0}};  // per reward function
  std::vector<RewardRule> reward_rules;     // rule rewards in the config: regex | keywords | length (reward_rules.h)
  std::vector<std::string> reward_command;  // external reward program's argv, no shell (reward_program.h); [] = none
  std::vector<ToolSpec> tools;              // what the model may call: built-in names or function schemas (tool_calls.h); [] = none
  std::vector<std::string> tool_command;    // the program serving the schema tools' calls, argv, no shell (tool_server.h)
  ordered_json chat_template_kwargs = ordered_json::object();  // variables for the chat template (chat_template.h), as TRL/vLLM's

  // TRL's per_device_train_batch_size as given, resolved into prompts_per_step once every source is
  // read (resolve_trl_batch); 0: not given. Not a knob.
  int trl_per_device_train_batch_size = 0;
  // Where each non-default value came from ("file.yaml:12", "--set"); not a knob.
  std::map<std::string, std::string> origin;
  // Every place a relative path a config file gave was looked for, when none had it (for the error
  // that needs the file); not a knob.
  std::map<std::string, std::vector<std::string>> looked_in;
};

// One row of the key table: name, type name, one-line help and the allowed values (enums).
struct ConfigKey {
  std::string name;
  std::string type;  // int | float | bool | string
  std::string help;
  std::vector<std::string> choices;
};
const std::vector<ConfigKey>& config_keys();
std::vector<std::string> config_key_names();  // includes reward_weights.<fn>

// Set one key from its text form; `origin` names where it came from for error messages.
void set_config_value(TrainConfig& cfg, const std::string& key, const std::string& value, const std::string& origin);
// The keys whose value is JSON (a list, or chat_template_kwargs' map): reward_rules, reward_command,
// tools, tool_command, chat_template_kwargs.
bool is_list_key(const std::string& key);
// Set one of the list keys from its JSON form.
void set_config_list(TrainConfig& cfg, const std::string& key, const ordered_json& value, const std::string& origin);
// A float key's value as the config prints it (the shortest text that reads back the same).
std::string format_double(double v);
// TRL's GRPOConfig names (config_aliases.cpp): set_trl_key sets the key a TRL name means here (one
// line on stderr says so) and returns false for a name TRL does not have; a TRL name whose meaning
// differs is an Error saying what to use. trl_alias_of("num_generations") is "group_size".
bool set_trl_key(TrainConfig& cfg, const std::string& key, const std::string& value, const std::string& origin);
bool is_trl_key(const std::string& key);
std::string trl_alias_of(const std::string& key);
std::vector<std::string> trl_key_names();
// per_device_train_batch_size x gradient_accumulation_steps x WORLD_SIZE / group_size -> prompts_per_step.
void resolve_trl_batch(TrainConfig& cfg);
// The value of one key as text (the form set_config_value accepts).
std::string get_config_value(const TrainConfig& cfg, const std::string& key);
// The value as a YAML file writes it: string keys quoted (JSON strings are YAML), the rest as get_config_value.
std::string config_yaml_value(const TrainConfig& cfg, const std::string& key);

// Merge a .yaml/.yml/.json file into cfg; load_config_text takes the file's text (the format is
// still chosen by path's extension, which errors name).
void load_config_file(TrainConfig& cfg, const std::string& path);
void load_config_text(TrainConfig& cfg, const std::string& path, const std::string& text);
// Apply one `key=value` override.
void apply_override(TrainConfig& cfg, const std::string& assignment);
// The resolution order in one place: each config file in order (a later one overrides an earlier
// one's keys), then each `key=value` override in order. Every executable resolves its config through this.
void apply_config_sources(TrainConfig& cfg, const std::vector<std::string>& paths, const std::vector<std::string>& overrides);
// The file a path key (train_data, eval_data, chat_template) names must exist; the error names the key,
// its origin and every place looked in.
void require_config_file(const TrainConfig& cfg, const std::string& key, const std::string& expected = "");

// Range and consistency checks; throws Error naming the key, its origin, expected and found.
void validate_config(const TrainConfig& cfg);
// The part of it about the chat template: a chat_template file exists and parses, enable_thinking
// agrees with chat_template_kwargs (the tools that render prompts without a full config).
void validate_chat_settings(const TrainConfig& cfg);
// The keys chat_template, chat_template_kwargs and enable_thinking (its shortcut), as load_chat_template
// takes them; enable_thinking and a different chat_template_kwargs.enable_thinking are an error.
ChatSettings chat_settings(const TrainConfig& cfg);
// The resolved config as YAML with one comment per key; loads back to the same config.
std::string config_to_yaml(const TrainConfig& cfg);
// "key  default  help" lines for --help.
std::string config_help();
// docs/configuration.md: every key, its type, default and help, as Markdown (grpo_train --help-config).
std::string config_markdown();

// The rewards the config weighs: built-ins, rules and the reward program (reward.h).
class RewardSet;
RewardSet make_reward_set(const TrainConfig& cfg);

}  // namespace grpo
