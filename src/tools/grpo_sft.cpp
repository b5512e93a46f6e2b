// grpo_sft: supervised fine-tuning on question -> reference answer (loss on the answer tokens
// only), with the trainer's optimizer, checkpoints and metrics.jsonl.
//   grpo_sft <model_dir> --data FILE.jsonl [-c config.yaml] [--set key=value]...
//   grpo_sft <new_model_dir> --init model_config.json --data ...   (random init, byte-level tokenizer)
// Config keys used: learning_rate, warmup_steps, lr_schedule, weight_decay, max_grad_norm,
// prompts_per_step (the batch size), grad_accum, max_steps, seed, system_prompt,
// max_prompt_tokens, max_new_tokens (answers are cut there), output_dir, save_steps,
// save_total_limit, eval_data, eval_limit, eval_samples, eval_temperature, dtype, device.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/checkpoint.h"
#include "grpo/cli.h"
#include "grpo/common.h"
#include "grpo/config.h"
#include "grpo/device.h"
#include "grpo/evaluation.h"
#include "grpo/grpo.h"
#include "grpo/offline.h"
#include "grpo/tokenizer.h"
#include "grpo/trainer_state.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

// grpo_sft's own defaults under the config file and --set: a fresh small model learns fast.
TrainConfig sft_defaults() {
  TrainConfig cfg;
  cfg.output_dir = "runs/sft";
  cfg.learning_rate = 1e-3;
  cfg.prompts_per_step = 32;
  cfg.max_steps = 300;
  return cfg;
}

// --init: a fresh model directory, random weights from the config.json `init` and a byte-level
// tokenizer (BPE merges learned on the data when n_merges > 0).
void init_model_dir(const std::string& model_dir, const std::string& init, int n_merges, const TrainConfig& cfg, const GSM8KDataset& ds) {
  if (dir_exists(model_dir) && !fs::is_empty(model_dir)) throw Error("--init: " + model_dir + " exists and is not empty");
  nlohmann::json mj = nlohmann::json::parse(read_file(init));
  // The tokenizer comes first: its size decides the embedding's rows.
  std::vector<std::string> texts = {cfg.system_prompt, "system\n", "user\n", "assistant\n"};
  for (size_t i = 0; i < ds.size(); ++i) {
    texts.push_back(ds[i].question);
    texts.push_back(ds[i].answer);
  }
  // With tools every prompt carries their system turn: merges learned on it keep prompts short.
  if (!cfg.tools.empty()) texts.insert(texts.end(), 64, tools_system_text(ChatTemplate{}, cfg.system_prompt, cfg.tools));
  auto merges = train_bpe_merges(texts, n_merges);
  // With tools the model must write Qwen's call markers as single tokens (the sampler watches </tool_call>).
  const std::vector<std::string> extra =
      cfg.tools.empty() ? std::vector<std::string>{} : std::vector<std::string>{"<tool_call>", "</tool_call>"};
  mj["vocab_size"] = 259 + static_cast<int64_t>(extra.size() + merges.size());
  ModelConfig mc = ModelConfig::from_json(json_text(mj), init);
  fs::create_directories(model_dir);
  auto fresh = init_qwen2(mc, static_cast<uint64_t>(cfg.seed), 0.02);
  save_qwen2(fresh, model_dir, torch::kFloat32);
  write_file_atomic(model_dir + "/tokenizer.json", byte_level_tokenizer_json(merges, extra));
  write_file_atomic(model_dir + "/generation_config.json",
                    R"({"eos_token_id": [258, 256], "pad_token_id": 256, "do_sample": true, "temperature": 1.0})");
  std::printf("initialised %s: %.2f M params, byte-level tokenizer with %zu merges (vocab %lld)\n", model_dir.c_str(), mc.n_params() / 1e6,
              merges.size(), (long long)mc.n_vocab);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_sft: supervised fine-tuning (answer tokens only) of a Qwen2 model directory"};
  add_version_flag(app, "grpo_sft");
  std::string model_dir, data, init;
  int n_merges = 0;
  app.add_option("model_dir", model_dir, "Hugging Face model directory (created with --init)")->required();
  app.add_option("--data", data, "GSM8K-style JSONL: question -> answer")->required();
  app.add_option("--init", init, "model config.json: create model_dir with random weights and a byte-level tokenizer");
  app.add_option("--merges", n_merges, "with --init: BPE merges learned from --data for the tokenizer (0 = bytes only)")
      ->check(integer_in(0, 1000000));
  ConfigOptions config;
  config.add_to(app, "YAML/JSON config");
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();
  try {
    if (init.empty()) model_dir = resolve_model_path(model_dir);  // --init creates the directory
    TrainConfig cfg = sft_defaults();
    if (init.empty()) {
      // A checkpoint's prompt, template, limits and evaluation settings (not its GRPO optimisation), then -c and --set.
      static const std::vector<std::string> kept = {"system_prompt",   "chat_template",     "chat_template_kwargs",
                                                    "enable_thinking", "max_prompt_tokens", "max_new_tokens",
                                                    "answer_mode",     "eval_data",         "tools"};
      const std::string from = apply_checkpoint_config(cfg, model_dir, &kept);
      if (!from.empty()) std::printf("settings from %s, then -c files and --set\n", from.c_str());
    }
    config.apply(cfg);
    set_config_value(cfg, "model_path", model_dir, "command line");
    set_config_value(cfg, "train_data", data, "--data");
    validate_config(cfg);
    if (cfg.lora_rank > 0)
      throw Error("config key 'lora_rank': grpo_sft trains the whole model; expected 0, found " + std::to_string(cfg.lora_rank));
    require_config_file(cfg, "train_data");
    GSM8KDataset ds(cfg.train_data, static_cast<size_t>(cfg.train_limit));
    if (!init.empty()) init_model_dir(model_dir, init, n_merges, cfg, ds);
    auto tok = load_tokenizer(model_dir);
    SpecialIds special = load_special_ids(model_dir, *tok, chat_settings(cfg));
    auto model = load_policy(model_dir, cfg.device, cfg.dtype, cfg.attention).model;
    GrpoState st(cfg, model, cfg.max_steps);
    fs::create_directories(cfg.output_dir);
    write_file_atomic(cfg.output_dir + "/config.yaml", config_to_yaml(cfg));
    std::ofstream metrics(cfg.output_dir + "/metrics.jsonl");
    auto t0 = std::chrono::steady_clock::now();
    double loss_avg = 0;
    while (st.step < cfg.max_steps) {
      auto idx = ds.indices_at(static_cast<uint64_t>(cfg.seed), st.step * cfg.prompts_per_step, static_cast<size_t>(cfg.prompts_per_step));
      std::vector<Example> batch;
      for (size_t i : idx) batch.push_back(ds[i]);
      StepMetrics s = sft_step(st, *tok, special, batch);
      s.epoch = double(st.step * cfg.prompts_per_step) / double(ds.size());
      metrics << json_text(to_json(s)) << "\n" << std::flush;
      loss_avg = st.step == 1 ? s.loss : 0.9 * loss_avg + 0.1 * s.loss;
      if (st.step % 20 == 0 || st.step == cfg.max_steps)
        std::printf("sft step %lld/%d | loss %.4f | lr %.2e | %.1f s\n", (long long)st.step, cfg.max_steps, loss_avg, s.lr,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
      if ((cfg.save_steps > 0 && st.step % cfg.save_steps == 0) || st.step == cfg.max_steps)
        std::printf("  saved %s\n", save_checkpoint(st, cfg.output_dir, model_dir, TrainerState{}).c_str());
    }
    if (file_exists(cfg.eval_data)) {
      GSM8KDataset ev(cfg.eval_data, static_cast<size_t>(cfg.eval_limit));
      EvalResult r = evaluate(st.policy, *tok, special, ev, cfg, 16, nullptr, st.tools.get());
      std::printf("eval on %lld: greedy strict %.1f%%, sampled %s\n", (long long)r.n, 100 * r.greedy_strict,
                  r.sampled < 0 ? "n/a" : (std::to_string(100 * r.sampled).substr(0, 5) + "%").c_str());
    }
  } catch (const std::exception& e) {
    return tool_error("grpo_sft", e);
  }
  return 0;
}
