// settings.h: the string-valued settings, parsed once (when a key or flag is set) into enums, and the
// device and precision settings: the vocabulary the layers share (the model names its attention
// kernel and precision with it) without any of them reading the trainer's config (config.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grpo {

// The string-valued settings, parsed once (when the key is set) into these enums. Each enum's
// names, in enum order, are choice_names<E>(); --help, YAML output and error messages read them.

enum class LossAggregation : uint8_t { Grpo, Bnpo, DrGrpo, Dapo };
enum class RewardScale : uint8_t { Group, Batch, None };
enum class LrSchedule : uint8_t { Constant, Cosine, Linear };
enum class ImportanceSamplingLevel : uint8_t { Token, Sequence };
enum class IsCorrectionMode : uint8_t { TokenTruncate, TokenMask, SequenceTruncate, SequenceMask };
enum class AnswerMode : uint8_t { Strict, Flexible, Math };
enum class DecodeMode : uint8_t { Eager = 0, Static = 1, CudaGraph = 2 };
// `enable_thinking`: Qwen3's switch (auto = the template's default, true).
enum class ThinkingSwitch : uint8_t { Auto, On, Off };
enum class AttentionKernel : uint8_t { Eager = 0, Sdpa = 1 };
enum class DistBackend : uint8_t { Auto, Nccl, Gloo };
// `dtype`: the model's weights and activations (auto: bf16 on CUDA, fp32 on CPU; device.h resolves it).
enum class Precision : uint8_t { Auto, Float32, BFloat16, Float16 };

// `device`: auto | cpu | cuda | cuda:N (auto: cuda:0 when CUDA is available; device.h resolves it).
struct DeviceSetting {
  enum class Kind : uint8_t { Auto, Cpu, Cuda };
  Kind kind = Kind::Auto;
  int index = -1;  // cuda:N; -1: "cuda" (the current device, or the rank's local one under torchrun)
};
// `what` names the setting in errors, as parse_choice's.
DeviceSetting parse_device_setting(const std::string& text, const std::string& what);
std::string device_setting_name(const DeviceSetting& d);
// A Precision from its name, or the short fp32 / bf16 / fp16.
Precision parse_precision(const std::string& text, const std::string& what);

template <class E>
const std::vector<std::string>& choice_names();
template <class E>
const std::string& choice_name(E e) {
  return choice_names<E>()[static_cast<size_t>(e)];
}
// `what` names the setting in the error: "config key 'x' (file.yaml:3)", "--decode-mode", ...
template <class E>
E parse_choice(const std::string& text, const std::string& what);

// The projections LoRA can adapt (lora_target_modules' allowed names, and its default: all of them).
const std::vector<std::string>& lora_target_names();
// The fused projections of some families (Phi-3: q, k, v in qkv_proj; gate, up in gate_up_proj),
// also allowed; on such a model the separate names stand for their fused module (lora.h).
const std::vector<std::string>& lora_fused_target_names();
// lora_target_modules' names: comma-separated, blanks trimmed, empty entries skipped (unchecked).
std::vector<std::string> lora_target_list(const std::string& text);

}  // namespace grpo
