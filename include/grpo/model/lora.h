// lora.h: LoRA adapters (Hu et al. 2021, arXiv:2106.09685) on the Qwen2 projections, saved and
// loaded in PEFT's format, so that `peft.PeftModel.from_pretrained(base, checkpoint)` loads ours
// unchanged and we read what PEFT wrote.
//
//   y = W x + b + (alpha / r) B A dropout(x)      A (r, in), B (out, r); W, b frozen
//
// As PEFT (LoraLayer, default init): A ~ kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)),
// B = 0, so a fresh adapter leaves the model's output exactly unchanged; A and B are fp32 whatever
// the base dtype (PEFT's autocast_adapter_dtype), the term is computed in fp32 and added before one
// rounding to the base dtype. With the adapters off the model is the base model: that is the
// reference of the KL term, so a LoRA run needs no second copy of the weights.
//
// Files (PEFT's): adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
// target_modules, ...) and adapter_model.safetensors with keys
// base_model.model.<module>.lora_A.weight / .lora_B.weight.
//
// Departures: only the projections of the decoder layers can be targets (not lm_head or the
// embedding), no bias training, no rank/alpha patterns, DoRA or rsLoRA (a file asking for them is
// refused, naming the field).
#pragma once

#include <string>
#include <vector>

#include "grpo/model/causal_lm.h"

namespace grpo {

struct LoraConfig {
  int64_t rank = 0;    // r (0: no adapter)
  double alpha = 16;   // lora_alpha: scaling = alpha / r
  double dropout = 0;  // on the adapter's input, in training only
  std::vector<std::string> targets = lora_target_names();
};

// The modules `targets` name on this model: on a model with fused projections (Phi-3) q_proj,
// k_proj, v_proj stand for qkv_proj and gate_proj, up_proj for gate_up_proj (all of a group or
// none, else an Error); a fused name on a model without them is an Error; on a mixture-of-experts
// model only the attention projections remain. In the targets' order.
std::vector<std::string> resolve_lora_targets(const ModelConfig& mc, const std::vector<std::string>& targets);
// Adds an adapter to every targeted projection (A drawn from a generator seeded by `seed`, so every
// rank and every run draws the same) and freezes all other parameters. Throws if one exists.
void add_lora(CausalLM& model, const LoraConfig& cfg, uint64_t seed);
bool has_lora(CausalLM& model);
void set_lora_enabled(CausalLM& model, bool on);  // off: the base model
// The adapters off for the guard's lifetime (the KL term's reference forward), on again after.
class LoraDisabled {
 public:
  explicit LoraDisabled(CausalLM& model) : model_(model) { set_lora_enabled(model_, false); }
  ~LoraDisabled() { set_lora_enabled(model_, true); }
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;

 private:
  CausalLM& model_;
};
// The adapter's parameters in model order, named as the model names them (..q_proj.lora_A).
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(CausalLM& model);
// W <- W + scaling B A (in fp32, rounded once to W's dtype), then the adapters are removed.
void merge_lora(CausalLM& model);
// Parameters of an adapter of rank r on a model (for the memory estimate).
int64_t lora_param_count(const ModelConfig& mc, const LoraConfig& cfg);

// ---- PEFT files
// adapter_config.json + adapter_model.safetensors into dir (written to temporary names, renamed).
void save_lora_adapter(CausalLM& model, const std::string& dir, const LoraConfig& cfg, const std::string& base_model);
// adapter_config.json of dir, checked (errors name the file and field).
LoraConfig read_lora_config(const std::string& dir);
// Adds the adapter of dir to a model without one (or, with the same shape, copies its weights
// into the existing one); every tensor must be there with its shape; returns its config.
LoraConfig load_lora_adapter(CausalLM& model, const std::string& dir);
bool is_lora_adapter_dir(const std::string& dir);  // holds adapter_config.json

}  // namespace grpo
