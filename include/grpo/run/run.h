// run.h: the whole run of grpo_train: check and load every input, connect the ranks, evaluate
// before, then the loop (train_grpo_step -> log -> evaluate -> save), evaluate after, and write
// summary.json and report.md. SIGINT/SIGTERM stop after the current step with a checkpoint.
//
// With several ranks (distributed.h), every rank runs the same loop on its B / W groups and rank 0
// alone writes the files; a checkpoint holds no per-rank state, so it resumes at any world size.
//
// Every source of randomness is a pure function of (seed, step, prompt): the data order
// (PromptDataset::indices_at) and the sampler's counter-based draws. So a checkpoint needs no RNG
// state, and k steps + resume + k steps equals 2k steps bit for bit on CPU.
#pragma once

#include <string>

#include "grpo/config/config.h"

namespace grpo {

struct RunOptions {
  bool dry_run = false;
  int plan_world_size = 0;           // --world-size: the ranks --dry-run plans for (0 = the launcher's WORLD_SIZE)
  std::string resume;                // "" | "auto" | a checkpoint directory
  int64_t stop_after = 0;            // stop (checkpoint, exit 0) after this many steps of this invocation; 0 = run to the end
  bool allow_config_change = false;  // resume although run-defining settings differ from the checkpoint's
  std::string dump_rollouts;         // "" | a JSONL file: each step's trained prompts and completions as token ids (rank 0's share)
};

// Returns the process exit code (0, or 130/143 after SIGINT/SIGTERM with a checkpoint written).
int run_grpo(const TrainConfig& cfg, const RunOptions& opts);

}  // namespace grpo
