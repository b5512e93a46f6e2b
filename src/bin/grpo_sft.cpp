// grpo_sft: training without rollouts, with the trainer's optimizer, checkpoints and metrics.jsonl:
//   grpo_sft <model_dir> --data FILE.jsonl [-c config.yaml] [--set key=value]...
//       supervised fine-tuning on question -> reference answer (loss on the answer tokens only)
//   grpo_sft <new_model_dir> --init model_config.json --data ...   (random init, byte-level tokenizer)
//   grpo_sft <model_dir> --offline-groups GROUPS.jsonl [--objective ppo|softmax] ...
//       groups of completions already scored, {"prompt", "responses": [...], "rewards": [...]} a line:
//       the group-relative lesson without sampling (ppo: GRPO's advantages and clipped loss, the update
//       grpo_train runs; softmax: L = -sum_i softmax(r / softmax_beta)_i log p(y_i | x))
// Config keys used: learning_rate, warmup_steps, lr_schedule, weight_decay, max_grad_norm,
// prompts_per_step (the batch: examples, or groups), grad_accum, max_steps, seed, system_prompt,
// max_prompt_tokens, max_new_tokens (answers are cut there), output_dir, save_steps,
// save_total_limit, eval_data, eval_limit, eval_samples, eval_temperature, dtype, device; with
// --objective ppo also the loss keys (beta, clip_eps_*, loss_aggregation, scale_rewards, ...).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/bin/cli.h"
#include "grpo/config/config.h"
#include "grpo/model/model_io.h"
#include "grpo/run/checkpoint.h"
#include "grpo/run/evaluation.h"
#include "grpo/run/trainer_state.h"
#include "grpo/step/grpo.h"
#include "grpo/step/offline.h"
#include "grpo/tokenizer/tokenizer.h"

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
void init_model_dir(const std::string& model_dir, const std::string& init, int n_merges, const TrainConfig& cfg, const PromptDataset& ds) {
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
  auto fresh = init_causal_lm(mc, static_cast<uint64_t>(cfg.seed), 0.02);
  save_causal_lm(fresh, model_dir, torch::kFloat32);
  write_file_atomic(model_dir + "/tokenizer.json", byte_level_tokenizer_json(merges, extra));
  write_file_atomic(model_dir + "/generation_config.json",
                    R"({"eos_token_id": [258, 256], "pad_token_id": 256, "do_sample": true, "temperature": 1.0})");
  std::printf("initialised %s: %.2f M params, byte-level tokenizer with %zu merges (vocab %lld)\n", model_dir.c_str(), mc.n_params() / 1e6,
              merges.size(), (long long)mc.n_vocab);
}

// What grpo_sft trains on: SFT examples, or scored groups (--offline-groups).
struct Lesson {
  std::optional<PromptDataset> examples;  // --data
  std::vector<OfflineGroup> groups;
  OfflineObjective objective = OfflineObjective::Ppo;
  double softmax_beta = 1.0;
  size_t size() const { return groups.empty() ? examples->size() : groups.size(); }
};

// One optimizer step on the step-th batch: prompts_per_step examples in the seeded order, or the
// next prompts_per_step groups in the file's order (wrapping around).
StepMetrics lesson_step(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const Lesson& lesson) {
  const TrainConfig& cfg = st.cfg;
  const size_t B = static_cast<size_t>(cfg.prompts_per_step);
  if (lesson.groups.empty()) {
    std::vector<Example> batch;
    for (size_t i : lesson.examples->indices_at(static_cast<uint64_t>(cfg.seed), st.step * cfg.prompts_per_step, B))
      batch.push_back((*lesson.examples)[i]);
    return sft_step(st, tok, special, batch);
  }
  std::vector<OfflineGroup> batch;
  for (size_t i = 0; i < B; ++i) batch.push_back(lesson.groups[(static_cast<size_t>(st.step) * B + i) % lesson.groups.size()]);
  return train_offline_step(st, tok, special, batch, lesson.objective, lesson.softmax_beta);
}

// The loop: max_steps steps, a metrics.jsonl line each, checkpoints, then the evaluation.
void train(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const Lesson& lesson, const std::string& model_dir) {
  const TrainConfig& cfg = st.cfg;
  fs::create_directories(cfg.output_dir);
  write_file_atomic(cfg.output_dir + "/config.yaml", config_to_yaml(cfg));
  std::ofstream metrics(cfg.output_dir + "/metrics.jsonl");
  const auto t0 = std::chrono::steady_clock::now();
  const char* what = lesson.groups.empty() ? "sft" : "offline";
  double loss_avg = 0;
  while (st.step < cfg.max_steps) {
    StepMetrics s = lesson_step(st, tok, special, lesson);
    s.epoch = double(st.step * cfg.prompts_per_step) / double(lesson.size());
    metrics << json_text(to_json(s)) << "\n" << std::flush;
    loss_avg = st.step == 1 ? s.loss : 0.9 * loss_avg + 0.1 * s.loss;
    if (st.step % 20 == 0 || st.step == cfg.max_steps)
      std::printf("%s step %lld/%d | loss %.4f | lr %.2e | %.1f s\n", what, (long long)st.step, cfg.max_steps, loss_avg, s.lr,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
    if ((cfg.save_steps > 0 && st.step % cfg.save_steps == 0) || st.step == cfg.max_steps)
      std::printf("  saved %s\n", save_checkpoint(st, cfg.output_dir, model_dir, TrainerState{}).c_str());
  }
  if (file_exists(cfg.eval_data)) {
    PromptDataset ev(cfg.eval_data, static_cast<size_t>(cfg.eval_limit));
    EvalResult r = evaluate(st.policy, tok, special, ev, cfg, 16, nullptr, st.tools.get());
    std::printf("eval on %lld: greedy strict %.1f%%, sampled %s\n", (long long)r.n, 100 * r.greedy_strict,
                r.sampled < 0 ? "n/a" : (std::to_string(100 * r.sampled).substr(0, 5) + "%").c_str());
  }
}

// The config: grpo_sft's defaults, a checkpoint's prompt and evaluation settings, -c, --set.
TrainConfig resolve_config(const std::string& model_dir, bool init, const ConfigOptions& config, const std::string& data) {
  TrainConfig cfg = sft_defaults();
  if (!init) {
    // A checkpoint's prompt, template, limits and evaluation settings (not its GRPO optimisation), then -c and --set.
    static const std::vector<std::string> kept = {"system_prompt",   "chat_template",     "chat_template_kwargs",
                                                  "enable_thinking", "max_prompt_tokens", "max_new_tokens",
                                                  "answer_mode",     "eval_data",         "tools"};
    const std::string from = apply_checkpoint_config(cfg, model_dir, &kept);
    if (!from.empty()) std::printf("settings from %s, then -c files and --set\n", from.c_str());
  }
  config.apply(cfg);
  set_config_value(cfg, "model_path", model_dir, "command line");
  if (!data.empty()) set_config_value(cfg, "train_data", data, "--data");
  validate_config(cfg);
  if (cfg.lora_rank > 0)
    throw Error("config key 'lora_rank': grpo_sft trains the whole model; expected 0, found " + std::to_string(cfg.lora_rank));
  return cfg;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_sft: supervised fine-tuning, or training on scored groups, of a model directory (no rollouts)"};
  add_version_flag(app, "grpo_sft");
  std::string model_dir, data, init, groups, objective = "ppo";
  int n_merges = 0;
  double softmax_beta = 1.0;
  app.add_option("model_dir", model_dir, "Hugging Face model directory (created with --init)")->required();
  auto* data_opt = app.add_option("--data", data, "GSM8K-style JSONL: question -> answer (supervised fine-tuning)");
  app.add_option("--offline-groups", groups, "JSONL of scored groups {prompt, responses, rewards}: train on them without rollouts")
      ->excludes(data_opt);
  app.add_option("--objective", objective, "with --offline-groups: ppo (GRPO's update) | softmax (reward-softmax-weighted likelihood)")
      ->check(CLI::IsMember({"ppo", "softmax"}))
      ->capture_default_str();
  app.add_option("--softmax-beta", softmax_beta, "with --objective softmax: the temperature of the rewards' softmax")
      ->capture_default_str();
  app.add_option("--init", init, "model config.json: create model_dir with random weights and a byte-level tokenizer");
  app.add_option("--merges", n_merges, "with --init: BPE merges learned from --data for the tokenizer (0 = bytes only)")
      ->check(integer_in(0, 1000000));
  ConfigOptions config;
  config.add_to(app, "YAML/JSON config");
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();
  try {
    if (data.empty() == groups.empty()) throw Error("give --data FILE (supervised fine-tuning) or --offline-groups FILE (scored groups)");
    if (!init.empty() && data.empty()) throw Error("--init learns its tokenizer from --data: give --data FILE");
    if (init.empty()) model_dir = resolve_model_path(model_dir);  // --init creates the directory
    const TrainConfig cfg = resolve_config(model_dir, !init.empty(), config, data);
    Lesson lesson;
    if (!data.empty()) {
      require_config_file(cfg, "train_data");
      lesson.examples.emplace(cfg.train_data, static_cast<size_t>(cfg.train_limit));
      if (!init.empty()) init_model_dir(model_dir, init, n_merges, cfg, *lesson.examples);
    } else {
      lesson.groups = load_offline_groups(groups);
      lesson.objective = objective == "ppo" ? OfflineObjective::Ppo : OfflineObjective::SoftmaxWeighted;
      lesson.softmax_beta = softmax_beta;
    }
    auto tok = load_tokenizer(model_dir);
    SpecialIds special = load_special_ids(model_dir, *tok, chat_settings(cfg));
    GrpoState st(cfg, load_policy(model_dir, cfg.device, cfg.dtype, cfg.attention).model, cfg.max_steps);
    train(st, *tok, special, lesson, model_dir);
  } catch (const std::exception& e) {
    return tool_error("grpo_sft", e);
  }
  return 0;
}
