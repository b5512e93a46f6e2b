// grpo_train: GRPO fine-tuning of a Hugging Face language model on JSONL prompts.
//   grpo_train <model_path> [-c config.yaml] [--set key=value]... [--dry-run]
// Config resolution: defaults, then -c FILE, then --set (and the positional model path), then
// validation, all before the model directory is touched. The run itself is run_grpo (run.h).

#include <iostream>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/bin/cli.h"
#include "grpo/config/config.h"
#include "grpo/engine/dataset.h"
#include "grpo/engine/distributed.h"
#include "grpo/model/causal_lm.h"
#include "grpo/run/report.h"
#include "grpo/run/run.h"
#include "grpo/run/run_plan.h"

using namespace grpo;

int main(int argc, char** argv) {
  CLI::App app{"grpo_train: GRPO fine-tuning of Hugging Face language models (C++/LibTorch)"};
  add_version_flag(app, "grpo_train");
  std::string model_path, resume;
  bool dry_run = false, print_config = false;
  app.add_option("model_path", model_path, "Hugging Face model directory (config.json, *.safetensors, tokenizer.json)");
  ConfigOptions config;
  config.add_to(app, "YAML (.yaml/.yml) or JSON (.json) config file");
  app.add_flag("--dry-run", dry_run, "validate config, model dir and data, print statistics, exit");
  app.add_flag("--print-config", print_config, "print the resolved config as YAML and exit");
  int plan_world_size = 0;
  app.add_option("--world-size", plan_world_size, "with --dry-run: plan the memory of each of N ranks (default: WORLD_SIZE, else 1)")
      ->check(integer_in(1, 65536));
  std::string shapes;
  app.add_option("--shapes", shapes,
                 "with --dry-run: plan the memory of a model of the shapes in this config.json, without a model directory")
      ->check(CLI::ExistingFile);
  int64_t stop_after = 0;
  app.add_option("--stop-after", stop_after, "stop after N steps of this invocation (checkpoint saved; continue with --resume auto)")
      ->check(integer_in(0));
  std::string report_only;
  app.add_option("--report-only", report_only, "rebuild report.md and plots/ of an existing output_dir from its files, then exit");
  app.add_option("--resume", resume, "continue from a checkpoint directory, or `auto` for the newest in output_dir");
  bool allow_config_change = false;
  app.add_flag("--allow-config-change", allow_config_change,
               "resume even though run-defining settings (seed, data, group size, loss, ...) differ from the checkpoint's");
  std::string dump_rollouts;
  app.add_option("--dump-rollouts", dump_rollouts,
                 "write each step's trained prompts and completions (token ids, rewards, lr) as JSON lines to FILE "
                 "(another trainer can replay them; bench/vs_trl)");
  bool help_config = false;
  app.add_flag("--help-config", help_config,
               "print every config key with its type, default and help as Markdown (docs/configuration.md), exit");
  app.footer("\n" + config_help());
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();

  std::string rank_label = "grpo_train";
  try {
    if (help_config) {
      std::cout << config_markdown();
      return 0;
    }
    if (!report_only.empty()) {
      write_report(report_only);
      std::printf("Wrote %s/report.md\n", report_only.c_str());
      return 0;
    }
    // ---- resolve the config: defaults, file, --set, positional model path; then validate
    TrainConfig cfg;
    config.apply(cfg);
    if (!model_path.empty()) set_config_value(cfg, "model_path", model_path, "command line");
    if (!shapes.empty() && cfg.model_path.empty()) set_config_value(cfg, "model_path", shapes, "--shapes");
    validate_config(cfg);
    // One voice: with several ranks only rank 0 prints progress (errors still reach stderr).
    if (const DistEnv env = read_dist_env(); env.rank != 0) {
      rank_label = "grpo_train[rank " + std::to_string(env.rank) + "]";
      if (!std::freopen("/dev/null", "w", stdout)) throw Error("rank " + std::to_string(env.rank) + ": cannot silence stdout");
    }
    if (print_config) {
      std::cout << config_to_yaml(cfg);
      return 0;
    }
    if (!shapes.empty()) {
      if (!dry_run) throw Error("--shapes " + quote(shapes) + " plans memory only: give --dry-run with it");
      return plan_memory_only(cfg, shapes, plan_world_size > 0 ? plan_world_size : read_dist_env().world_size);
    }
    std::cout << "Resolved config:\n" << config_to_yaml(cfg) << std::flush;
    RunOptions ro;
    ro.dry_run = dry_run;
    ro.plan_world_size = plan_world_size;
    ro.resume = resume;
    ro.stop_after = stop_after;
    ro.allow_config_change = allow_config_change;
    ro.dump_rollouts = dump_rollouts;
    return run_grpo(cfg, ro);
  } catch (const std::exception& e) {
    return tool_error(rank_label.c_str(), e);
  }
}
