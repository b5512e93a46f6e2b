// config.h: TrainConfig, the one plain struct holding every knob of a run, and how it is resolved:
// defaults, then a YAML/JSON file, then `--set key=value` overrides, then validation (before any
// model is loaded). Keys are one flat namespace; the map `reward_weights` is addressed as
// `reward_weights.<fn>`, and the two lists `reward_rules` and `reward_command` take a YAML/JSON list
// in a file or JSON text with --set. Unknown keys are errors that suggest the closest key.
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "grpo/reward_rules.h"

namespace grpo {

// The default system prompt (DeepSeek-R1 style): reason in <think>, final number in <answer>.
extern const char* const kDefaultSystemPrompt;

struct TrainConfig {
  // ---- model and data
  std::string model_path = "";                        // HF model dir (grpo_train's positional argument)
  std::string train_data = "data/gsm8k/train.jsonl";  // GSM8K-style JSONL for training
  std::string eval_data = "data/gsm8k/test.jsonl";    // held-out JSONL for evaluation
  int train_limit = 0;                                 // use only the first N training examples (0 = all)
  int seed = 42;                                       // seeds data order, sampling and init
  std::string output_dir = "runs/grpo";               // metrics, checkpoints, report
  std::string system_prompt = kDefaultSystemPrompt;   // ChatML system message of every prompt
  int max_prompt_tokens = 512;                         // longer prompts keep their last tokens
  int max_new_tokens = 512;                            // completion length cap
  // ---- rollout (sampling)
  int group_size = 8;             // G: completions sampled per prompt
  int prompts_per_step = 8;       // B: prompts per step (N = B*G sequences)
  double temperature = 1.0;       // sampling temperature (> 0); the loss uses the same one
  double top_p = 1.0;             // nucleus sampling mass in (0, 1]
  int top_k = 0;                  // keep the k most likely ids (0 = off)
  double min_p = 0.0;             // drop ids with p < min_p * p_max (0 = off)
  double repetition_penalty = 1.0;  // CTRL-style penalty on seen ids (1 = off)
  // ---- optimisation
  double learning_rate = 1e-6;    // AdamW peak learning rate
  int warmup_steps = 0;           // linear warmup from 0 to learning_rate
  std::string lr_schedule = "constant";  // after warmup: constant | cosine | linear
  double weight_decay = 0.0;      // AdamW decoupled weight decay
  double adam_beta1 = 0.9;        // AdamW beta1
  double adam_beta2 = 0.99;       // AdamW beta2
  double adam_eps = 1e-8;         // AdamW epsilon
  double max_grad_norm = 1.0;     // clip the global gradient norm (0 = off)
  int grad_accum = 1;             // micro-batches per optimizer step (N must divide evenly)
  int num_iterations = 1;         // mu: policy updates per rollout batch
  double clip_eps_low = 0.2;      // PPO clip: ratio >= 1 - clip_eps_low
  double clip_eps_high = 0.2;     // PPO clip: ratio <= 1 + clip_eps_high (DAPO: 0.28)
  double delta = 0.0;             // two-sided clip: the unclipped ratio is capped at delta too (0 = off; > 1 + clip_eps_high)
  std::string importance_sampling_level = "token";  // token | sequence (GSPO: one ratio per completion)
  double beta = 0.0;              // KL(k3) coefficient to a frozen reference (0 = no reference)
  bool use_bias_correction_kl = true;  // KL term x the ratio: the unbiased reverse-KL gradient (DeepSeek-V3.2; TRL's default)
  std::string loss_aggregation = "grpo";  // grpo | bnpo | dr_grpo | dapo
  std::string scale_rewards = "group";    // advantage scale: group | batch | none
  bool mask_truncated_completions = false;  // exclude completions cut at max_new_tokens from the loss
  double entropy_coef = 0.0;      // entropy bonus coefficient
  bool gradient_checkpointing = false;  // recompute each decoder layer in backward (less memory, ~1/3 more compute)
  // ---- rewards
  std::map<std::string, double> reward_weights = {{"correctness", 1.0}, {"format", 0.1},
                                                  {"tags", 0.0},        {"digit", 0.0},
                                                  {"length", 0.0}};  // weight per reward function
  std::string answer_mode = "strict";  // answer extraction: strict | flexible
  int length_target = 1024;       // `length` reward: penalty past this many characters
  std::vector<RewardRule> reward_rules;     // rule rewards in the config: regex | keywords | length (reward_rules.h)
  std::vector<std::string> reward_command;  // external reward program's argv, no shell (reward_program.h); [] = none
  double reward_command_weight = 1.0;       // weight of each component the program returns
  double reward_timeout = 60;               // seconds the program may take per batch before it is restarted
  int reward_restarts = 2;                  // restarts of a crashed or hung program per run, then an error
  // ---- schedule, evaluation, checkpoints, logging
  int max_steps = 0;              // optimizer steps (0 = num_epochs over train_data)
  int num_epochs = 1;             // passes over train_data when max_steps = 0
  int eval_every = 50;            // evaluate every N steps (0 = only before/after)
  int eval_limit = 200;           // evaluate on the first N eval_data questions (0 = all)
  int eval_samples = 0;           // sampled draws per eval question (0 = greedy only)
  double eval_temperature = 1.0;  // temperature of the sampled evaluation
  int save_steps = 50;            // checkpoint every N steps (0 = only at the end)
  int save_total_limit = 2;       // keep the newest N checkpoints (0 = keep all)
  int log_samples_every = 10;     // write prompts+completions to samples.jsonl every N steps (0 = off)
  // ---- system
  std::string dtype = "auto";     // auto | float32 | bfloat16 | float16 (auto: bf16 on CUDA, fp32 on CPU)
  std::string device = "auto";    // auto | cpu | cuda | cuda:N
  std::string decode_mode = "eager";  // eager | static | cuda_graph (rollout/eval decode step; see sampler.h)
  std::string attention = "eager";    // eager | sdpa (scaled_dot_product_attention, LibTorch >= 2.0; see qwen2.h)

  // Where each non-default value came from ("file.yaml:12", "--set"); not a knob.
  std::map<std::string, std::string> origin;
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
void set_config_value(TrainConfig& cfg, const std::string& key, const std::string& value,
                      const std::string& origin);
// Set one of the list keys (reward_rules, reward_command) from its JSON form.
void set_config_list(TrainConfig& cfg, const std::string& key, const nlohmann::json& value, const std::string& origin);
// The value of one key as text (the form set_config_value accepts).
std::string get_config_value(const TrainConfig& cfg, const std::string& key);

// Merge a .yaml/.yml/.json file into cfg.
void load_config_file(TrainConfig& cfg, const std::string& path);
// Apply one `key=value` override.
void apply_override(TrainConfig& cfg, const std::string& assignment);
// The resolution order in one place: a config file (when `path` is not empty), then each
// `key=value` override in order. Every executable resolves its config through this.
void apply_config_sources(TrainConfig& cfg, const std::string& path, const std::vector<std::string>& overrides);
// Range and consistency checks; throws Error naming the key, its origin, expected and found.
void validate_config(const TrainConfig& cfg);
// The resolved config as YAML with one comment per key; loads back to the same config.
std::string config_to_yaml(const TrainConfig& cfg);
// "key  default  help" lines for --help.
std::string config_help();

}  // namespace grpo
