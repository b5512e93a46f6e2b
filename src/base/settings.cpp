// settings.cpp: the choices' names, their parsing, and the device and precision settings; see settings.h.
#include "grpo/base/settings.h"

#include <map>

#include "grpo/base/common.h"

namespace grpo {

template <class E>
E parse_choice(const std::string& text, const std::string& what) {
  const auto& names = choice_names<E>();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<E>(i);
  std::string msg = what + ": expected " + one_of(names) + ", found " + quote(text);
  std::string best = closest_match(text, names);
  if (!best.empty()) msg += "; did you mean '" + best + "'?";
  throw Error(msg);
}

#define GRPO_CHOICES(E, ...)                                     \
  template <>                                                    \
  const std::vector<std::string>& choice_names<E>() {            \
    static const std::vector<std::string> names = {__VA_ARGS__}; \
    return names;                                                \
  }                                                              \
  template E parse_choice<E>(const std::string&, const std::string&);
GRPO_CHOICES(LossAggregation, "grpo", "bnpo", "dr_grpo", "dapo")
GRPO_CHOICES(RewardScale, "group", "batch", "none")
GRPO_CHOICES(LrSchedule, "constant", "cosine", "linear")
GRPO_CHOICES(ImportanceSamplingLevel, "token", "sequence")
GRPO_CHOICES(IsCorrectionMode, "token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
GRPO_CHOICES(AnswerMode, "strict", "flexible", "math")
GRPO_CHOICES(ThinkingSwitch, "auto", "true", "false")
GRPO_CHOICES(DecodeMode, "eager", "static", "cuda_graph")
GRPO_CHOICES(AttentionKernel, "eager", "sdpa")
GRPO_CHOICES(DistBackend, "auto", "nccl", "gloo")
GRPO_CHOICES(Precision, "auto", "float32", "bfloat16", "float16")
#undef GRPO_CHOICES

Precision parse_precision(const std::string& text, const std::string& what) {
  static const std::map<std::string, std::string> short_names = {{"fp32", "float32"}, {"bf16", "bfloat16"}, {"fp16", "float16"}};
  const auto it = short_names.find(text);
  return parse_choice<Precision>(it == short_names.end() ? text : it->second, what);
}

DeviceSetting parse_device_setting(const std::string& text, const std::string& what) {
  DeviceSetting d;
  if (text == "auto") return d;
  if (text == "cpu") return {DeviceSetting::Kind::Cpu};
  d.kind = DeviceSetting::Kind::Cuda;
  if (text == "cuda") return d;
  const bool numbered =
      starts_with(text, "cuda:") && text.size() > 5 && text.size() < 10 && text.find_first_not_of("0123456789", 5) == std::string::npos;
  if (!numbered) throw Error(what + ": expected auto, cpu, cuda or cuda:N, found " + quote(text));
  d.index = std::stoi(text.substr(5));
  return d;
}

std::string device_setting_name(const DeviceSetting& d) {
  switch (d.kind) {
    case DeviceSetting::Kind::Auto:
      return "auto";
    case DeviceSetting::Kind::Cpu:
      return "cpu";
    default:
      return d.index < 0 ? "cuda" : "cuda:" + std::to_string(d.index);
  }
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names;
}

const std::vector<std::string>& lora_fused_target_names() {
  static const std::vector<std::string> names = {"qkv_proj", "gate_up_proj"};
  return names;
}

std::vector<std::string> lora_target_list(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& t : split(text, ','))
    if (!trim(t).empty()) out.emplace_back(trim(t));
  return out;
}

}  // namespace grpo
