// checkpoint.h: a run's checkpoints on disk: written atomically, verified, found, and resumed from.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/model/causal_lm.h"
#include "grpo/run/trainer_state.h"
#include "grpo/step/grpo_state.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Checkpoints: <output_dir>/checkpoint-<step>/ = config.json, model.safetensors (model dtype),
// generation_config.json, the tokenizer files, trainer_state.json, optimizer.pt and, when the
// model is not fp32, master.safetensors; with zero_stage > 0 optimizer/ (zero.h: a shard per rank
// holding its masters and moments, and index.json) instead of optimizer.pt and master.safetensors. With LoRA the weights are the adapter
// alone, as PEFT writes it (adapter_config.json, adapter_model.safetensors; lora.h) over the base at model_path. Written as
// checkpoint-<step>.tmp-<pid> and renamed. Failpoint for tests: GRPO_FAILPOINT=checkpoint_write aborts the process halfway through a save.

// `record` carries the facts of the run the trainer keeps (wall_s, eval_before, ...); the counters,
// checksums and config are filled in here.
// zero_stage > 0: every rank first calls save_optimizer_shards (a collective), and rank 0 passes the
// checksums it returns; the shards become <checkpoint>/optimizer/ with its index.json.
std::string save_checkpoint(GrpoState& st, const std::string& output_dir, const std::string& model_dir, const TrainerState& record,
                            const std::vector<std::string>& shard_sums = {});
std::vector<std::string> save_optimizer_shards(GrpoState& st, const std::string& output_dir);
// Newest complete checkpoint-<step> in output_dir, or "" if none.
std::string find_latest_checkpoint(const std::string& output_dir);
// Restore optimizer, master weights and counters into st (the policy must already hold the
// checkpoint's weights); returns trainer_state.json.
TrainerState load_checkpoint_state(GrpoState& st, const std::string& checkpoint_dir);
// Compare each file's checksum with the one trainer_state.json recorded at save time; throws
// naming the corrupted or missing file. A resume calls it before loading anything.
void verify_checkpoint(const std::string& checkpoint_dir);

// ---------------------------------------------------------------------------------------------
// Resuming

// The settings a resumed run may change (how long, how often to evaluate and save, where, which
// kernels, the micro-batches and the ranks); every other key defines the run and must equal the
// checkpoint's.
bool resumable_change(const std::string& key);
// "key: checkpoint -> now" lines for the run-defining keys whose values differ ("" when none).
std::string config_differences(const std::map<std::string, std::string>& saved, const TrainConfig& now);

// The checkpoint a run continues from ("" for a fresh run), checked before anything is loaded or
// written: it exists (`resume`: "" | "auto" | a directory), has the model's shape (mc), its files
// match their checksums, and its run-defining settings are cfg's (or allow_config_change). A fresh
// run refuses an output_dir that already holds a checkpoint.
std::string resume_point(const TrainConfig& cfg, const std::string& resume, bool allow_config_change, const ModelConfig& mc);

}  // namespace grpo
