// trainer_state.h: trainer_state.json, a checkpoint's record of where the run stands. Written last
// into a checkpoint directory (its presence marks the directory complete), read first on resume.
//   step, total_steps, skipped_updates, data_position   counters, integers >= 0
//   wall_s        the run's wall time up to this save, summed over every invocation
//   checksums     {file: hex} of each file saved with it (verify_checkpoint compares them)
//   config        {key: value as text} of the run-defining settings a resume is compared with
//   eval_before, model_path, seed   the first invocation's facts, for the report
// Torch-free, so that its fuzz target builds alone; a malformed file is an Error naming the file
// and the field, never a JSON library exception.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace grpo {

struct TrainerState {
  int64_t step = 0;
  int64_t total_steps = 0;
  int64_t skipped_updates = 0;
  int64_t data_position = -1;                    // -1: not recorded (older checkpoints): step * prompts_per_step
  double wall_s = 0;                             // 0 when not recorded
  std::map<std::string, std::string> checksums;  // empty: not recorded (older checkpoints), nothing to verify
  std::map<std::string, std::string> config;     // empty: not recorded, nothing to compare
  nlohmann::json eval_before;                    // null: not recorded
  std::string model_path;
  int64_t seed = 0;
};

TrainerState parse_trainer_state(const std::string& text, const std::string& path);
TrainerState read_trainer_state(const std::string& checkpoint_dir);  // <dir>/trainer_state.json
std::string trainer_state_text(const TrainerState& s);               // what parse_trainer_state reads back

struct TrainConfig;
// The training config a checkpoint carries, applied to `cfg` as the defaults of the tools that use a
// checkpoint (grpo_eval, grpo_generate, grpo_sft), so that it is evaluated as it was trained: the
// run's config.yaml beside checkpoint-N (every key, evaluation data included), else trainer_state.json's
// recorded settings. model_path and output_dir are left alone; `only` (when given) limits it to those
// keys. Returns where the settings came from, "" when `model_dir` is not a grpo_train checkpoint.
std::string apply_checkpoint_config(TrainConfig& cfg, const std::string& model_dir, const std::vector<std::string>* only = nullptr);

}  // namespace grpo
