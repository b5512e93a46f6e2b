// trainer.h: the whole run of grpo_train (homework step 5's loop): phases, per-step metrics
// (metrics.jsonl + TensorBoard), samples.jsonl, evaluation before/after and every eval_every steps,
// atomic checkpoints in Hugging Face layout with the trainer state, exact resume, SIGINT/SIGTERM,
// summary.json and report.md.
//
// With several ranks (distributed.h), every rank runs the same loop on its B / W groups and rank 0
// alone writes the files; a checkpoint holds no per-rank state, so it resumes at any world size.
//
// Every source of randomness is a pure function of (seed, step, prompt): the data order
// (GSM8KDataset::indices_at) and the sampler's counter-based draws. So a checkpoint needs no RNG
// state, and k steps + resume + k steps equals 2k steps bit for bit on CPU.
#pragma once

#include <string>
#include <vector>

#include "grpo/config.h"
#include "grpo/dataset.h"
#include "grpo/distributed.h"
#include "grpo/grpo.h"
#include "grpo/qwen2.h"
#include "grpo/tokenizer.h"
#include "grpo/trainer_state.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Evaluation: greedy pass@1 (strict and flexible extraction) and optional sampled accuracy

struct EvalSample {
  std::string question;
  double gold = 0;
  std::string gold_text;  // as the dataset writes it ("1,080", not 1080.0)
  std::string completion;
  bool correct_strict = false, correct_flexible = false;
};

struct EvalResult {
  double greedy_strict = 0, greedy_flexible = 0;
  double sampled = -1;  // -1: not measured (eval_samples = 0)
  int64_t n = 0;
  double seconds = 0;
  std::vector<EvalSample> samples;  // the greedy answers, in dataset order
};

// With several ranks (dist), each evaluates a contiguous share of the questions and every rank
// gets the gathered result (the same draws as one process: keyed by question index).
EvalResult evaluate(Qwen2ForCausalLM& model, const Tokenizer& tok, const SpecialIds& special, const GSM8KDataset& data,
                    const TrainConfig& cfg, int64_t batch_size = 16, Dist* dist = nullptr);

// ---------------------------------------------------------------------------------------------
// Checkpoints: <output_dir>/checkpoint-<step>/ = config.json, model.safetensors (model dtype),
// generation_config.json, the tokenizer files, trainer_state.json, optimizer.pt and, when the
// model is not fp32, master.safetensors. With LoRA the weights are the adapter alone, as PEFT
// writes it (adapter_config.json, adapter_model.safetensors; lora.h) over the base at model_path.
// Written as checkpoint-<step>.tmp-<pid> and renamed.
// Failpoint for tests: GRPO_FAILPOINT=checkpoint_write aborts the process halfway through a save.

// `record` carries the facts of the run the trainer keeps (wall_s, eval_before, ...); the counters,
// checksums and config are filled in here.
std::string save_checkpoint(GrpoState& st, const std::string& output_dir, const std::string& model_dir,
                            const TrainerState& record);
// Newest complete checkpoint-<step> in output_dir, or "" if none.
std::string find_latest_checkpoint(const std::string& output_dir);
// Restore optimizer, master weights and counters into st (the policy must already hold the
// checkpoint's weights); returns trainer_state.json.
TrainerState load_checkpoint_state(GrpoState& st, const std::string& checkpoint_dir);
// Compare each file's checksum with the one trainer_state.json recorded at save time; throws
// naming the corrupted or missing file. A resume calls it before loading anything.
void verify_checkpoint(const std::string& checkpoint_dir);

// ---------------------------------------------------------------------------------------------
// The run

struct RunOptions {
  bool dry_run = false;
  std::string resume;      // "" | "auto" | a checkpoint directory
  int64_t stop_after = 0;  // stop (checkpoint, exit 0) after this many steps of this invocation; 0 = run to the end
  bool allow_config_change = false;  // resume although run-defining settings differ from the checkpoint's
  std::string dump_rollouts;  // "" | a JSONL file: each step's trained prompts and completions as token ids (rank 0's share)
};

// The settings a resumed run may change (how long, how often to evaluate and save, where, which
// kernels, the micro-batches and the ranks); every other key defines the run and must equal the
// checkpoint's.
bool resumable_change(const std::string& key);
// "key: checkpoint -> now" lines for the run-defining keys whose values differ ("" when none).
std::string config_differences(const nlohmann::json& saved, const TrainConfig& now);

// Returns the process exit code (0, or 130/143 after SIGINT/SIGTERM with a checkpoint written).
int train_grpo(const TrainConfig& cfg, const RunOptions& opts);

}  // namespace grpo
