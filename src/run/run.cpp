// run.cpp: the grpo_train run; see run.h.
#include "grpo/run/run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/base/hub_cache.h"
#include "grpo/engine/distributed.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "grpo/run/checkpoint.h"
#include "grpo/run/evaluation.h"
#include "grpo/run/report.h"
#include "grpo/run/run_logs.h"
#include "grpo/run/run_plan.h"
#include "grpo/step/grpo_step.h"

namespace fs = std::filesystem;

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
namespace {

// Signals: the first SIGINT/SIGTERM asks the loop to stop after the current step and save; a
// second SIGINT exits at once.

std::atomic<int> g_signal{0};

void on_signal(int sig) {
  if (g_signal.load() != 0 && sig == SIGINT) {
    const char msg[] = "\ngrpo_train: second interrupt, exiting now without saving\n";
    ssize_t r = ::write(2, msg, sizeof msg - 1);
    (void)r;
    std::_Exit(130);
  }
  g_signal.store(sig);
  const char msg[] = "\ngrpo_train: interrupt received, finishing the current step and saving a checkpoint (Ctrl-C again to quit now)\n";
  ssize_t r = ::write(2, msg, sizeof msg - 1);
  (void)r;
}

// The training loop's handlers, installed for its lifetime and the previous ones restored after.
class SignalGuard {
 public:
  SignalGuard() : prev_int_(std::signal(SIGINT, on_signal)), prev_term_(std::signal(SIGTERM, on_signal)) { g_signal.store(0); }
  ~SignalGuard() {
    std::signal(SIGINT, prev_int_);
    std::signal(SIGTERM, prev_term_);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
  int received() const { return g_signal.load(); }

 private:
  void (*prev_int_)(int);
  void (*prev_term_)(int);
};

std::string fmt_duration(double s) {
  char b[32];
  int h = int(s / 3600), m = int(std::fmod(s, 3600) / 60), sec = int(std::fmod(s, 60));
  std::snprintf(b, sizeof b, h ? "%dh%02dm%02ds" : "%dm%02ds", h ? h : m, h ? m : sec, sec);
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The run, in two parts: run_grpo checks and loads every input, and connects the ranks;
// run_on_rank is the run itself, on every rank: load, evaluate before, the loop (step -> log ->
// eval -> save), evaluate after, summary and report (the files by rank 0 alone).

namespace {

// Everything run_on_rank needs, loaded and checked by run_grpo.
struct RunInputs {
  const TrainConfig& cfg;
  const RunOptions& opts;
  const Tokenizer& tok;
  const SpecialIds& special;
  const PromptDataset& train;
  const PromptDataset& eval;
  int64_t total_steps;
  DeviceSetting device_setting;  // cfg.device, or under torchrun the rank's local GPU
  torch::Device device;          // device_setting resolved
  torch::ScalarType dtype;
  std::string resume_dir;  // "" for a fresh run
  std::shared_ptr<Dist> dist;
  std::chrono::steady_clock::time_point t_start;
};

// ---- the step, then its line in metrics.jsonl, TensorBoard, samples.jsonl and on the console
struct Progress {
  double step_time_sum = 0;  // rollout + update seconds of this invocation's steps
  int64_t steps = 0;
};

void step_and_log(GrpoState& st, const RunInputs& in, RunLogs& logs, Progress& progress) {
  StepResult r;
  try {
    r = train_grpo_step(st, in.tok, in.special, in.train);
  } catch (const OutOfMemory& e) {  // the step was never saved: the last checkpoint is where to resume
    const std::string last = find_latest_checkpoint(in.cfg.output_dir);
    throw Error(std::string(e.what()) + "; " +
                (last.empty() ? std::string("no checkpoint was written yet") : "the last complete checkpoint, " + last + ", is intact"));
  }
  const StepMetrics& m = r.metrics;
  logs.log_step(to_json(m));
  // Samples at step 1 too, so that a short run shows what the model writes.
  if (in.cfg.log_samples_every > 0 && (st.step == 1 || st.step % in.cfg.log_samples_every == 0))
    logs.log_samples(st.step, r.batch, r.advantages, in.train);
  logs.log_rollouts(st.step, r.batch, m.lr, in.special.eos);
  const StepTiming& t = *m.timing;
  progress.step_time_sum += t.rollout_s + t.update_s;
  ++progress.steps;
  const double eta = progress.step_time_sum / progress.steps * double(in.total_steps - st.step);
  // The figures under metrics.jsonl's names (the trained groups'); what dynamic sampling drew, when it differs.
  char drawn[96] = "";
  if (m.dynamic_sampling && m.drawn_reward() != m.reward_mean.value_or(0))
    std::snprintf(drawn, sizeof drawn, " (dynamic_sampling/reward_mean_all %.3f)", m.drawn_reward());
  std::printf(
      "step %lld/%lld | reward_mean %.3f%s | accuracy %.3f | kl %.4f | len %.1f | %.2fs (rollout %.2fs, update %.2fs) | %.0f tok/s | ETA "
      "%s%s\n",
      (long long)st.step, (long long)in.total_steps, m.reward_mean.value_or(0), drawn, m.accuracy.value_or(0), m.kl.value_or(0),
      m.completion_len_mean.value_or(0), t.rollout_s + t.update_s, t.rollout_s, t.update_s, t.rollout_tokens_per_s,
      fmt_duration(eta).c_str(), m.skipped > 0 ? " | SKIPPED (non-finite)" : "");
  std::fflush(stdout);
}

// ---- evaluation before training (a resumed run keeps the first invocation's) and every eval_every steps
void print_tool_use(const EvalResult& e) {
  if (e.tool_calls_mean >= 0)
    std::printf("          tools: %.2f calls per answer, %s of answers with a call that gave the gold\n", e.tool_calls_mean,
                fmt_pct(e.tool_useful_frac).c_str());
}

json evaluate_before(GrpoState& st, const RunInputs& in) {
  const TrainConfig& cfg = in.cfg;
  std::printf("Evaluating before training (%lld questions)...\n",
              (long long)std::min<int64_t>(in.eval.size(), cfg.eval_limit ? cfg.eval_limit : in.eval.size()));
  std::fflush(stdout);
  EvalResult before = evaluate(st.policy, in.tok, in.special, in.eval, cfg, 16, in.dist.get(), st.tools.get());
  if (in.dist->is_main()) write_answers(cfg.output_dir + "/answers_before.jsonl", before);
  std::printf("  before: greedy strict %s, flexible %s, sampled %s (%.1f s)\n", fmt_pct(before.greedy_strict).c_str(),
              fmt_pct(before.greedy_flexible).c_str(), fmt_pct(before.sampled).c_str(), before.seconds);
  print_tool_use(before);
  return eval_json(before);
}

void evaluate_during(GrpoState& st, const RunInputs& in, RunLogs& logs) {
  EvalResult e = evaluate(st.policy, in.tok, in.special, in.eval, in.cfg, 16, in.dist.get(), st.tools.get());
  json ej = eval_json(e);
  ej["step"] = st.step;
  logs.log_eval(ej);
  std::printf("  eval @ %lld: greedy strict %s, flexible %s, sampled %s\n", (long long)st.step, fmt_pct(e.greedy_strict).c_str(),
              fmt_pct(e.greedy_flexible).c_str(), fmt_pct(e.sampled).c_str());
}

// What each checkpoint records of the run: the first invocation's before-training results (a
// resumed run keeps them; the per-question answers stay in answers_before.jsonl) and the wall
// time so far over every invocation (the checkpoint's plus this one's).
struct RunRecord {
  json eval_before;
  double prior_wall_s = 0;
  std::chrono::steady_clock::time_point t_start;
  double wall_s() const { return prior_wall_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); }
};

// ---- after: evaluation, then (rank 0) answers, summary.json and report.md
// wall_s is read after the evaluation: the report splits it into rollouts, updates and evaluations.
void finish_run(GrpoState& st, const RunInputs& in, const RunRecord& run) {
  const std::string& out = in.cfg.output_dir;
  std::printf("Evaluating after training...\n");
  std::fflush(stdout);
  EvalResult after = evaluate(st.policy, in.tok, in.special, in.eval, in.cfg, 16, in.dist.get(), st.tools.get());
  std::printf("  after: greedy strict %s, flexible %s, sampled %s\n", fmt_pct(after.greedy_strict).c_str(),
              fmt_pct(after.greedy_flexible).c_str(), fmt_pct(after.sampled).c_str());
  print_tool_use(after);
  if (!in.dist->is_main()) return;
  json summary = {{"before", run.eval_before},
                  {"after", eval_json(after)},
                  {"steps", st.step},
                  {"wall_s", run.wall_s()},
                  {"skipped_updates", st.skipped_updates}};
  summary["before"].erase("samples");
  write_answers(out + "/answers_after.jsonl", after);
  write_file_atomic(out + "/summary.json", json_text(summary, 2) + "\n");
  write_report(out);
  std::printf("Wrote %s/summary.json and %s/report.md\nTraining completed!\n", out.c_str(), out.c_str());
}

// ---- before the loop: the models (a resumed run's policy, and its reference), then output_dir
struct Models {
  CausalLM policy{nullptr};
  CausalLM reference{nullptr};  // only when resuming with a KL term (else GrpoState copies the policy)
};

Models load_models(const RunInputs& in) {
  const TrainConfig& cfg = in.cfg;
  const std::string& resume_dir = in.resume_dir;
  const bool lora = cfg.lora_rank > 0;  // the base model (frozen) + an adapter, saved as PEFT's files
  Models m;
  m.policy = load_policy(resume_dir.empty() || lora ? cfg.model_path : resume_dir, in.device_setting, cfg.dtype, cfg.attention,
                         lora ? resume_dir : "")
                 .model;
  in.dist->broadcast(m.policy->parameters());  // every rank starts from rank 0's weights
  // Resuming with a KL term: the reference is the initial model, not the resumed policy (or, with
  // sync_ref_model, the mixed reference the checkpoint saved; with LoRA, the base itself).
  if (!resume_dir.empty() && cfg.beta > 0 && !lora)
    m.reference = load_causal_lm(cfg.sync_ref_model && dir_exists(resume_dir + "/reference") ? resume_dir + "/reference" : cfg.model_path,
                                 in.dtype, in.device);
  return m;
}

// Every input is checked and loaded: only now is output_dir created or changed (rank 0).
void prepare_output_dir(const TrainConfig& cfg) {
  const std::string& out = cfg.output_dir;
  fs::create_directories(out);
  for (const auto& e : fs::directory_iterator(out))  // leftovers of an interrupted save
    if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path());
  write_file_atomic(out + "/config.yaml", config_to_yaml(cfg));
  std::printf("Resolved config saved to %s/config.yaml; curves: tensorboard --logdir %s/tb\n", out.c_str(), out.c_str());
}

// Rank 0 saves once the ranks agree on every weight; the others wait for it.
void save(GrpoState& st, const RunInputs& in, const RunRecord& run) {
  Dist& dist = *in.dist;
  dist.check_same(st.trainable(), st.param_names, "at step " + std::to_string(st.step));
  TrainerState record;
  record.wall_s = run.wall_s();
  record.eval_before = run.eval_before;
  record.model_path = in.cfg.model_path;
  record.seed = in.cfg.seed;
  const std::vector<std::string> shard_sums = st.zero ? save_optimizer_shards(st, in.cfg.output_dir) : std::vector<std::string>{};
  std::string dir = dist.is_main() ? save_checkpoint(st, in.cfg.output_dir, in.cfg.model_path, record, shard_sums) : "";
  dist.barrier();
  if (dist.is_main()) std::printf("  saved %s\n", dir.c_str());
}

// ---- the loop: step -> log -> evaluate -> save, until total_steps, a signal or --stop-after.
struct LoopEnd {
  std::optional<int> exit_code;  // stopped early (signal, --stop-after): the process's exit code
  bool saved_last = false;       // the last step's checkpoint is written
};

LoopEnd train_loop(GrpoState& st, const RunInputs& in, RunLogs& logs, const RunRecord& run) {
  const TrainConfig& cfg = in.cfg;
  std::printf("Starting GRPO training...\n");
  std::fflush(stdout);
  SignalGuard signals;
  Progress progress;
  int64_t last_saved = -1;
  const int64_t first_step = st.step;
  while (st.step < in.total_steps) {
    step_and_log(st, in, logs, progress);
    if (cfg.eval_every > 0 && st.step % cfg.eval_every == 0 && st.step < in.total_steps) evaluate_during(st, in, logs);
    const bool stop_here = in.opts.stop_after > 0 && st.step - first_step >= in.opts.stop_after && st.step < in.total_steps;
    // A signal to any rank stops every rank after this step (SIGTERM over SIGINT).
    const int signal = static_cast<int>(in.dist->all_reduce(double(signals.received()), Dist::Op::Max));
    if ((cfg.save_steps > 0 && st.step % cfg.save_steps == 0) || signal != 0 || stop_here || st.step == in.total_steps) {
      save(st, in, run);
      last_saved = st.step;
    }
    if (signal != 0) {
      std::printf("Interrupted at step %lld: checkpoint saved; continue with: grpo_train %s --resume auto [same options]\n",
                  (long long)st.step, cfg.model_path.c_str());
      return {signal == SIGTERM ? 143 : 130, true};
    }
    if (stop_here) {
      std::printf("Stopped after %lld steps of this run (--stop-after): checkpoint saved; continue with --resume auto\n",
                  (long long)in.opts.stop_after);
      return {0, true};
    }
  }
  return {std::nullopt, last_saved == st.step};
}

int run_on_rank(const RunInputs& in) {
  const TrainConfig& cfg = in.cfg;
  Models models = load_models(in);
  if (in.dist->is_main()) prepare_output_dir(cfg);
  std::printf("Setting up optimizer...\n");
  std::fflush(stdout);
  GrpoState st(cfg, models.policy, in.total_steps, models.reference, in.dist);
  if (st.zero && in.dist->is_main()) {
    const double mib = 1024.0 * 1024.0, whole = 12.0 * double(st.zero->layout().total);  // masters + 2 moments, fp32
    std::printf("ZeRO-%d: AdamW's fp32 masters and moments sharded over %d rank%s: %.2f MiB on each (%.2f MiB whole)\n", cfg.zero_stage,
                in.dist->world_size(), in.dist->world_size() == 1 ? "" : "s", double(st.zero->state_bytes()) / mib, whole / mib);
  }
  RunRecord run;
  run.t_start = in.t_start;
  if (!in.resume_dir.empty()) {
    TrainerState state = load_checkpoint_state(st, in.resume_dir);
    run.eval_before = state.eval_before;
    run.prior_wall_s = state.wall_s;
    std::printf("Resumed from %s at step %lld\n", in.resume_dir.c_str(), (long long)st.step);
  }
  RunLogs logs(cfg.output_dir, in.resume_dir.empty() ? -1 : st.step, in.dist->is_main(), in.opts.dump_rollouts);
  if (run.eval_before.is_null()) run.eval_before = evaluate_before(st, in);
  const LoopEnd end = train_loop(st, in, logs, run);  // the final save and evaluation run with the caller's signal handlers
  if (end.exit_code) return *end.exit_code;
  if (!end.saved_last) save(st, in, run);
  finish_run(st, in, run);
  return 0;
}

}  // namespace

int run_grpo(const TrainConfig& cfg_in, const RunOptions& opts) {
  TrainConfig cfg = cfg_in;
  auto t_start = std::chrono::steady_clock::now();
  // ---- inputs first: model dir, tokenizer, data; nothing is written before they all check out
  std::printf("Loading tokenizer and model...\n");
  std::fflush(stdout);
  if (const std::string dir = resolve_model_path(cfg.model_path); dir != cfg.model_path) {
    std::printf("Model %s: %s (Hugging Face cache)\n", cfg.model_path.c_str(), dir.c_str());
    cfg.model_path = dir;
  }
  ModelConfig mc = ModelConfig::from_dir(cfg.model_path);
  auto tok = load_tokenizer(cfg.model_path);
  SpecialIds special = load_special_ids(cfg.model_path, *tok, chat_settings(cfg));
  if (special.eos.empty()) throw Error(cfg.model_path + ": no EOS id in generation_config.json, config.json or tokenizer_config.json");
  std::printf("Loading dataset...\n");
  std::fflush(stdout);
  require_config_file(cfg, "train_data");
  require_config_file(cfg, "eval_data");
  PromptDataset train(cfg.train_data, static_cast<size_t>(cfg.train_limit));
  PromptDataset eval(cfg.eval_data, static_cast<size_t>(cfg.eval_limit));
  train.require_golds(cfg.answer_mode, /*needed=*/cfg.reward_weights.at("correctness") != 0);
  eval.require_golds(cfg.answer_mode, /*needed=*/true);
  const int64_t B = cfg.prompts_per_step;
  const int64_t total_steps = cfg.max_steps > 0 ? cfg.max_steps : cfg.num_epochs * ((int64_t(train.size()) + B - 1) / B);
  // ---- the ranks (torchrun's environment; none: one process) and this rank's device
  const DistEnv denv = read_dist_env();
  // Under torchrun, "cuda" and "auto" (on a CUDA machine) mean the rank's local GPU; cuda:N means GPU N.
  DeviceSetting device_setting = cfg.device;
  if (denv.launched && cfg.device.index < 0 && resolve_device(cfg.device).is_cuda())
    device_setting = {DeviceSetting::Kind::Cuda, denv.local_rank};
  const torch::Device device = opts.dry_run ? planned_device(device_setting) : resolve_device(device_setting);
  if (B % denv.world_size != 0)
    throw Error("prompts_per_step = " + std::to_string(B) + " is not a multiple of WORLD_SIZE = " + std::to_string(denv.world_size) +
                ": each rank rolls out whole groups, B / WORLD_SIZE of them");
  check_decode_mode(cfg.decode_mode, device);
  check_attention(cfg.attention);  // sdpa on LibTorch 1.x fails here, before anything is written
  const DistBackend backend = denv.launched ? resolve_backend(cfg.dist_backend, device) : DistBackend::Gloo;
  auto dtype = resolve_dtype(cfg.dtype, device);
  print_run_plan(cfg, mc, *tok, special, train, eval, total_steps, dtype, device,
                 opts.plan_world_size > 0 ? opts.plan_world_size : denv.world_size);
  if (denv.launched)
    std::printf("Data parallel: %d rank%s (%s), %lld of the %lld prompts per step on each; rank %d on %s\n", denv.world_size,
                denv.world_size == 1 ? "" : "s", choice_name(backend).c_str(), (long long)(B / denv.world_size), (long long)B, denv.rank,
                device.str().c_str());
  if (opts.dry_run) {
    if (device.is_cuda() && !torch::cuda::is_available())
      std::printf("  (planned for %s: CUDA is not available on this machine, so nothing was checked on the device)\n",
                  device.str().c_str());
    std::printf("  %s\n", check_weights(cfg.model_path, mc).c_str());
    const PromptIds first = tokenize_example(*tok, special.chat, cfg.system_prompt, train[0], cfg.max_prompt_tokens, cfg.tools);
    std::printf("First training prompt, as the model reads it (%zu tokens%s; chat template %s):\n----\n%s\n----\n", first.ids.size(),
                first.truncated ? ", its question shortened to max_prompt_tokens" : "", special.chat.describe().c_str(),
                tok->decode(first.ids, /*skip_special=*/false).c_str());
    std::printf("Dry run: config, model directory, tokenizer and data are valid; not training.\n");
    return 0;
  }

  // ---- resume point and output dir (every rank checks; nothing is written yet)
  const std::string resume_dir = resume_point(cfg, opts.resume, opts.allow_config_change, mc);
  check_output_dir(cfg.output_dir);
  set_current_device(device);
  auto dist = denv.launched ? Dist::connect(denv, backend, device, cfg.dist_timeout_s) : std::make_shared<Dist>();
  try {
    return run_on_rank({cfg, opts, *tok, special, train, eval, total_steps, device_setting, device, dtype, resume_dir, dist, t_start});
  } catch (const std::exception& e) {
    dist->report_failure(error_text(e));  // the other ranks name this rank and the reason
    throw;
  }
}

}  // namespace grpo
