// run_plan.cpp: the run's plan and memory estimate; see run_plan.h.
#include "grpo/run/run_plan.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/engine/sampler.h"
#include "grpo/engine/tool_server.h"
#include "grpo/engine/zero.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_state.h"

namespace fs = std::filesystem;

namespace grpo {

int64_t completion_columns(const TrainConfig& cfg) {
  return completion_width(cfg.max_new_tokens, cfg.tools.empty() ? 0 : cfg.max_tool_calls, cfg.max_tool_tokens, SamplingParams{}.sync_every);
}

std::string memory_estimate(const ModelConfig& mc, const TrainConfig& cfg, torch::Dtype dtype, int world_size) {
  const double P = double(mc.n_params()), es = double(torch::elementSize(dtype)), W = std::max(1, world_size);
  // Each rank rolls out and trains B / W prompts' groups.
  const int64_t Tc = completion_columns(cfg);
  const int64_t N = int64_t(cfg.prompts_per_step) * cfg.group_size / int64_t(W), T = cfg.max_prompt_tokens + Tc;
  // LoRA: the base stays frozen (no gradient, master or AdamW state, and it is its own reference);
  // the adapters' Lp parameters are fp32 with fp32 gradients and AdamW moments.
  const bool lora = cfg.lora_rank > 0;
  const double Lp = double(lora_param_count(mc, lora_config(cfg))), trained = lora ? Lp : P, ges = lora ? 4 : es;
  const double weights = P * es + Lp * 4;
  // Backward's gradient in the model's dtype, plus the fp32 sum the optimizer reads: zero_stage 0 the
  // masters' .grad (a non-fp32 model), 1 the whole flat buffer, 2 the rank's share and one bucket.
  const double fp32_sum = cfg.zero_stage == 2                ? trained * 4 / W + std::min(trained, double(kZeroBucket)) * 4
                          : cfg.zero_stage == 1              ? trained * 4
                          : lora || dtype == torch::kFloat32 ? 0
                                                             : P * 4;
  const double grads = trained * ges + fp32_sum;
  // AdamW's two moments, and the fp32 masters (zero_stage 0: only for a non-fp32 model), 1/W each with ZeRO.
  const double adam = 2 * trained * 4 / (cfg.zero_stage > 0 ? W : 1.0);
  const double master = cfg.zero_stage > 0 ? trained * 4 / W : lora || dtype == torch::kFloat32 ? 0 : P * 4;
  const double ref = cfg.beta > 0 && !lora ? P * es : 0;
  const double kv = double(KVCache::bytes_needed(mc, N, T, dtype));
  // Saved for backward per token and layer (eager attention): ~16 D + 3 F values plus the (H, S)
  // scores and probabilities (model dtype) and the fp32 softmax. Checkpointing keeps only each
  // layer's input (D values) and one layer's worth during its recompute.
  // Without checkpointing a micro-batch runs each prompt once for its group (update_policy).
  const int64_t mb = std::max<int64_t>(1, N / std::max(1, cfg.grad_accum));
  const double prompt_rows = cfg.gradient_checkpointing ? double(mb) : std::ceil(double(mb) / cfg.group_size);
  const double tokens = prompt_rows * cfg.max_prompt_tokens + double(mb) * double(Tc);
  const double per_layer = (16.0 * mc.n_embd + 3.0 * mc.n_ff) * es + double(mc.n_head) * T * (2 * es + 4);
  const double act = cfg.gradient_checkpointing ? tokens * (mc.n_embd * es * mc.n_layer + per_layer) : tokens * per_layer * mc.n_layer;
  // The chunked lm_head: a few (rows, V) fp32 blocks, the fp32 (V, D) gradient, and for a bf16/fp16
  // model the fp32 copy of the (V, D) weight it multiplies with.
  const double head = double(mc.n_vocab) * mc.n_embd * 4;
  const double logits =
      double(logprob_chunk_rows(mc.n_vocab)) * mc.n_vocab * 4 * 3 + head * ((dtype == torch::kFloat32 ? 1 : 2) - (lora ? 1 : 0));
  const std::string per_rank =
      world_size > 1 ? " per rank of " + std::to_string(world_size) + " (zero_stage " + std::to_string(cfg.zero_stage) + ")" : "";
  char b[768];
  std::snprintf(
      b, sizeof b,
      "memory estimate%s%s: weights %.2f GB + grads %.2f GB + AdamW %.2f GB + master %.2f GB + reference %.2f GB + "
      "KV cache %.2f GB + activations%s ~%.2f GB + lm_head chunks %.2f GB = ~%.2f GB",
      per_rank.c_str(),
      lora ? (" (LoRA r=" + std::to_string(cfg.lora_rank) + ", " + std::to_string(int64_t(Lp)) + " trained parameters)").c_str() : "",
      weights / 1e9, grads / 1e9, adam / 1e9, master / 1e9, ref / 1e9, kv / 1e9, cfg.gradient_checkpointing ? " (checkpointed)" : "",
      act / 1e9, logits / 1e9, (weights + grads + adam + master + ref + kv + act + logits) / 1e9);
  return b;
}

std::string model_line(const ModelConfig& mc, const TrainConfig& cfg, torch::Dtype dtype, const torch::Device& device, int world_size) {
  char b[160];
  std::snprintf(b, sizeof b, "model: %s, %.1f M params, %s on %s (%s); ", mc.model_type.c_str(), mc.n_params() / 1e6, c10::toString(dtype),
                device.str().c_str(), runtime_summary().c_str());
  return b + memory_estimate(mc, cfg, dtype, world_size);
}

int plan_memory_only(const TrainConfig& cfg, const std::string& shapes_file, int world_size) {
  const ModelConfig mc = ModelConfig::from_json(read_file(shapes_file), shapes_file);
  const torch::Device device = planned_device(cfg.device);
  std::printf("Memory plan for the shapes in %s (no model directory, tokenizer, weights or data read):\n  %s\n", shapes_file.c_str(),
              model_line(mc, cfg, resolve_dtype(cfg.dtype, device), device, world_size).c_str());
  return 0;
}

void print_run_plan(const TrainConfig& cfg, const ModelConfig& mc, const Tokenizer& tok, const SpecialIds& special,
                    const PromptDataset& train, const PromptDataset& eval, int64_t total_steps, torch::ScalarType dtype,
                    const torch::Device& device, int world_size) {
  const int64_t B = cfg.prompts_per_step;
  if (!cfg.tools.empty()) check_tool_support(tok, special.chat, cfg.tools);  // before the run, not at its first call
  size_t longest_prompt = 0, truncated = 0;
  for (size_t i = 0; i < std::min<size_t>(train.size(), 2000); ++i) {
    auto p = tokenize_example(tok, special.chat, cfg.system_prompt, train[i], cfg.max_prompt_tokens, cfg.tools);
    longest_prompt = std::max(longest_prompt, p.ids.size());
    truncated += p.truncated;
  }
  std::printf("  train: %zu examples, eval: %zu examples, %lld steps of %lld prompts x %d samples\n", train.size(), eval.size(),
              (long long)total_steps, (long long)B, cfg.group_size);
  std::printf("  prompts (first %zu): longest %zu tokens, %zu truncated to max_prompt_tokens = %d; chat template %s\n",
              std::min<size_t>(train.size(), 2000), longest_prompt, truncated, cfg.max_prompt_tokens, special.chat.describe().c_str());
  std::printf("  %s\n", model_line(mc, cfg, dtype, device, world_size).c_str());
  std::fflush(stdout);
  if (cfg.vllm_importance_sampling_correction && (cfg.top_p < 1 || cfg.top_k > 0 || cfg.min_p > 0 || cfg.repetition_penalty != 1))
    std::printf(
        "  warning: top_p/top_k/min_p/repetition_penalty filter the sampling distribution; the sampler correction\n"
        "  weighs each token by p_policy / p_filtered <= 1%s (see grpo.h, compute_sampler_correction)\n",
        cfg.vllm_importance_sampling_mode == IsCorrectionMode::SequenceMask ||
                cfg.vllm_importance_sampling_mode == IsCorrectionMode::SequenceTruncate
            ? ", and a sequence mode multiplies them over the whole completion: consider vllm_importance_sampling_mode=token_truncate"
            : "");
}

void check_output_dir(const std::string& out) {
  std::error_code ec;
  fs::path p = fs::absolute(out, ec);
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec)) throw Error("output_dir '" + out + "' is not writable (" + p.string() + " is not a directory)");
  if (::access(p.c_str(), W_OK) != 0)
    throw Error("output_dir '" + out + "' is not writable (" + p.string() + ": " + std::strerror(errno) + ")");
}

}  // namespace grpo
