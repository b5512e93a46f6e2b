// model_io.h: model directories read and written (config.json, sharded safetensors, the side files
// a model carries), the policy a tool runs, fresh models; the graph itself is causal_lm.h.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "grpo/base/device.h"
#include "grpo/base/safetensors.h"
#include "grpo/base/settings.h"
#include "grpo/model/causal_lm.h"

namespace grpo {

// --dry-run's check of a model directory's weights without loading them: every tensor config.json
// implies is in the safetensors files (headers read, data not) with that shape; an Error names the
// first missing or mismatched one. Returns what was checked, and what was not.
std::string check_weights(const std::string& dir, const ModelConfig& mc);

// ---------------------------------------------------------------------------------------------
// Loading and saving

// The model a tool runs, loaded the one way grpo_train, grpo_eval, grpo_generate, grpo_sft and the benchmarks
// load it: model_dir (+ a PEFT LoRA adapter directory), on the device and in the dtype their
// settings name (resolve_device / resolve_dtype), with the attention kernel set.
struct Policy {
  CausalLM model{nullptr};
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  double load_seconds = 0;
};
Policy load_policy(const std::string& model_dir, const DeviceSetting& device, Precision dtype,
                   AttentionKernel attention = AttentionKernel::Eager, const std::string& adapter = "");

struct LoadStats {
  double seconds = 0;
  size_t checkpoint_bytes = 0;
};
// Load a HF model directory: every expected tensor present with the right shape, nothing unexpected.
CausalLM load_causal_lm(const std::string& dir, torch::Dtype dtype, torch::Device device, LoadStats* stats = nullptr);
// A freshly initialised model (normal(0, std) weights, unit norms, zero biases), for grpo_sft --init.
CausalLM init_causal_lm(const ModelConfig& cfg, uint64_t seed, double std = 0.02);
// A random model made directly in opts' dtype and device (no fp32 CPU copy), normal(0, std) from
// the device's default generator seeded with `seed`: for benchmarks, not bit-reproducible across devices.
CausalLM random_causal_lm(const ModelConfig& cfg, uint64_t seed, torch::TensorOptions opts, double std = 0.02);
// Write config.json + model.safetensors (in `dtype`) into `dir` (created if needed), HF layout.
void save_causal_lm(CausalLM& model, const std::string& dir, torch::Dtype dtype);
// The files a model directory carries beside its weights (tokenizer, chat template, generation
// config) copied from `from_dir` into `to_dir` where they exist, so a checkpoint or a merged export
// renders and stops as its base did.
void copy_model_side_files(const std::string& from_dir, const std::string& to_dir);
// A LoRA adapter's parameter ("...q_proj.lora_A"): not part of the Hugging Face model (lora.h).
bool is_lora_name(const std::string& name);

// ---- tensors in safetensors files (safetensors.h handles the bytes, torch-free)
// Named tensors written as one .safetensors file, each converted to `dtype` (atomically, as
// write_safetensors does): the model, the fp32 masters of a checkpoint, a LoRA adapter.
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors, torch::Dtype dtype);
// Tensor t of an open file as a tensor of its own dtype and `sizes`, without a copy (valid while
// the file is open): copy_() it into a parameter.
torch::Tensor tensor_in_file(const SafetensorsFile& f, const TensorInfo& t, c10::IntArrayRef sizes);

}  // namespace grpo
