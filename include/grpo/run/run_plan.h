// run_plan.h: what grpo_train prints before it writes anything (all a --dry-run prints): the data
// and steps, prompt lengths, the model, a memory estimate, warnings about the settings; and the
// output directory's check.
#pragma once

#include <torch/torch.h>

#include <string>

#include "grpo/config/config.h"
#include "grpo/engine/dataset.h"
#include "grpo/model/causal_lm.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// A completion's columns: the model's max_new_tokens, with tools also their answers and the steps
// spent waiting for them (the rollout's sync_every: the sampler's default).
int64_t completion_columns(const TrainConfig& cfg);

// Memory the run will need, by part (weights, gradients, AdamW, masters, reference, KV cache,
// activations, lm_head chunks), as one line; with world_size > 1, on each rank (its B / W prompts,
// and with zero_stage > 0 its share of the optimizer state).
std::string memory_estimate(const ModelConfig& mc, const TrainConfig& cfg, torch::Dtype dtype, int world_size = 1);

// The plan's model line: type, parameters, dtype, device, threads and memory_estimate.
std::string model_line(const ModelConfig& mc, const TrainConfig& cfg, torch::Dtype dtype, const torch::Device& device, int world_size);

// `grpo_train --dry-run --shapes config.json`: the model line for a model of those shapes, on the
// config's device, without a model directory (plan before downloading; the docs' memory figures).
int plan_memory_only(const TrainConfig& cfg, const std::string& shapes_file, int world_size);

void print_run_plan(const TrainConfig& cfg, const ModelConfig& mc, const Tokenizer& tok, const SpecialIds& special,
                    const PromptDataset& train, const PromptDataset& eval, int64_t total_steps, torch::ScalarType dtype,
                    const torch::Device& device, int world_size = 1);

// output_dir, or its nearest existing ancestor, must be a writable directory; nothing is created
// yet, so that a run failing before training leaves the file system as it found it.
void check_output_dir(const std::string& out);

}  // namespace grpo
