// grpo_eval: the trainer's evaluation, standalone: greedy pass@1 with strict and flexible answer
// extraction, plus sampled accuracy with --samples N. A grpo_train checkpoint is evaluated with the
// settings it was trained with (its run's config.yaml: data, prompt, limits, answer mode, seed), then
// -c files and flags on top; what it uses is printed first (stderr), with progress on long work.
//   grpo_eval <model_dir> [--adapter DIR] [--data FILE] [--limit N] [--samples N] [--samples-out FILE.jsonl]
//             [-c config.yaml] [--set key=value]...
// stdout: one JSON object {"greedy_strict", "greedy_flexible", "sampled", "n", "seconds"}.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/bin/cli.h"
#include "grpo/config/config.h"
#include "grpo/engine/sampler.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "grpo/run/evaluation.h"
#include "grpo/run/trainer_state.h"

using namespace grpo;

namespace {

// What the evaluation uses, before it starts (stderr: stdout carries the result).
void print_eval_setup(const TrainConfig& cfg, const std::string& from, const std::vector<std::string>& files, bool flags,
                      const SpecialIds& special, const PromptDataset& ds) {
  std::string sources = from.empty() ? "defaults" : from;
  for (const std::string& f : files) sources += ", then " + f;
  if (flags) sources += ", then --set and flags";
  std::fprintf(stderr,
               "grpo_eval: %s; settings: %s\n  data: %s, %zu questions; system prompt: %s; chat template: %s\n"
               "  limits: max_prompt_tokens %d, max_new_tokens %d; answers: %s; greedy%s\n",
               cfg.model_path.c_str(), sources.c_str(), cfg.eval_data.c_str(), ds.size(), quote(cfg.system_prompt, 60).c_str(),
               special.chat.describe().c_str(), cfg.max_prompt_tokens, cfg.max_new_tokens, choice_name(cfg.answer_mode).c_str(),
               cfg.eval_samples > 0
                   ? (" + " + std::to_string(cfg.eval_samples) + " samples at temperature " + format_double(cfg.eval_temperature)).c_str()
                   : "");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_eval: greedy / sampled GSM8K accuracy of a Hugging Face Qwen2 model directory"};
  add_version_flag(app, "grpo_eval");
  std::string model_dir, data, samples_out;
  int limit = -1, samples = -1;
  app.add_option("model_dir", model_dir, "Hugging Face model directory (or a grpo_train checkpoint)")->required();
  std::string adapter;
  app.add_option("--adapter", adapter, "a LoRA adapter directory (PEFT's files, e.g. a LoRA run's checkpoint-N) over model_dir");
  app.add_option("--data", data, "GSM8K-style JSONL (default: eval_data, data/gsm8k/test.jsonl)");
  app.add_option("--limit", limit, "first N questions (0 = all; default: eval_limit, 200)")->check(integer_in(0, INT_MAX));
  app.add_option("--samples", samples, "sampled draws per question at eval_temperature (default: eval_samples, 0)")
      ->check(integer_in(0, INT_MAX));
  app.add_option("--samples-out", samples_out, "write every greedy answer as JSONL here");
  ConfigOptions config;
  config.add_to(app, "YAML/JSON config (system_prompt, max_new_tokens, dtype, ...)");
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();
  try {
    model_dir = resolve_model_path(model_dir);
    TrainConfig cfg;
    const std::string from = apply_checkpoint_config(cfg, model_dir);
    config.apply(cfg);
    set_config_value(cfg, "model_path", model_dir, "command line");
    if (!data.empty()) set_config_value(cfg, "eval_data", data, "--data");
    if (limit >= 0) set_config_value(cfg, "eval_limit", std::to_string(limit), "--limit");
    if (samples >= 0) set_config_value(cfg, "eval_samples", std::to_string(samples), "--samples");
    validate_config(cfg);
    auto tok = load_tokenizer(model_dir);
    SpecialIds special = load_special_ids(model_dir, *tok, chat_settings(cfg));
    require_config_file(cfg, "eval_data");
    PromptDataset ds(cfg.eval_data, static_cast<size_t>(cfg.eval_limit));
    ds.require_golds(cfg.answer_mode, /*needed=*/true);
    print_eval_setup(cfg, from, config.files, !config.overrides.empty() || !data.empty() || limit >= 0 || samples >= 0, special, ds);
    check_decode_mode(cfg.decode_mode, resolve_device(cfg.device));
    auto model = load_policy(model_dir, cfg.device, cfg.dtype, cfg.attention, adapter).model;
    std::unique_ptr<ToolServer> tools = cfg.tools.empty() ? nullptr : std::make_unique<ToolServer>(cfg);
    EvalResult r = evaluate(model, *tok, special, ds, cfg, 16, nullptr, tools.get(), /*progress=*/true);
    if (!samples_out.empty()) {
      std::string s;
      for (const auto& e : r.samples) {
        nlohmann::json j = {{"question", e.question},
                            {"gold", gold_json(e.gold)},
                            {"completion", e.completion},
                            {"correct_strict", e.correct_strict},
                            {"correct_flexible", e.correct_flexible}};
        if (!e.transcript.empty()) {
          j["transcript"] = e.transcript;
          j["tool_calls"] = e.tool_calls;
        }
        s += json_text(j) + "\n";
      }
      write_file_atomic(samples_out, s);
    }
    std::printf("%s\n", json_text(eval_json(r)).c_str());
  } catch (const std::exception& e) {
    return tool_error("grpo_eval", e);
  }
  return 0;
}
