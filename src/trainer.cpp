// trainer.cpp: the grpo_train run; see trainer.h.
#include "grpo/trainer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "grpo/common.h"
#include "grpo/device.h"
#include "grpo/lora.h"
#include "grpo/report.h"
#include "grpo/safetensors.h"
#include "grpo/tensorboard.h"
#include "grpo/trainer_state.h"

namespace fs = std::filesystem;

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Evaluation

namespace {

SamplingParams eval_params(const TrainConfig& cfg, const Tokenizer& tok, const SpecialIds& special, int64_t n_vocab) {
  SamplingParams sp;
  sp.max_new_tokens = cfg.max_new_tokens;
  sp.decode = cfg.decode_mode;
  apply_model_limits(sp, tok, special, n_vocab);
  sp.seed = static_cast<uint64_t>(cfg.seed) + 0x5EED;  // the same draws before and after training
  return sp;
}

}  // namespace

EvalResult evaluate(Qwen2ForCausalLM& model, const Tokenizer& tok, const SpecialIds& special, const GSM8KDataset& data,
                    const TrainConfig& cfg, int64_t batch_size, Dist* dist) {
  auto t0 = std::chrono::steady_clock::now();
  EvalResult res;
  const int64_t n = cfg.eval_limit > 0 ? std::min<int64_t>(cfg.eval_limit, data.size()) : data.size();
  res.n = n;
  const int64_t W = dist ? dist->world_size() : 1, R = dist ? dist->rank() : 0;
  const int64_t lo = n * R / W, hi = n * (R + 1) / W;  // this rank's questions
  SamplingParams greedy = eval_params(cfg, tok, special, model->cfg.n_vocab);
  greedy.greedy = true;
  SamplingParams sampled = eval_params(cfg, tok, special, model->cfg.n_vocab);
  sampled.temperature = cfg.eval_temperature;
  greedy.decoder = sampled.decoder = std::make_shared<StaticDecoder>();  // one set of buffers/graphs for every batch
  const AnswerMode mode = cfg.answer_mode;
  int64_t ok_strict = 0, ok_flex = 0, ok_sampled = 0;
  for (int64_t s = lo; s < hi; s += batch_size) {
    const int64_t b = std::min(batch_size, hi - s);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<uint64_t> keys;
    for (int64_t i = s; i < s + b; ++i) {
      prompts.push_back(tokenize_prompt(tok, cfg.system_prompt, data[i].question, cfg.max_prompt_tokens).ids);
      keys.push_back(static_cast<uint64_t>(i));
    }
    Rollout g = generate(model, prompts, 1, greedy, keys);
    const auto greedy_ids = completion_token_ids(g);
    for (int64_t i = 0; i < b; ++i) {
      EvalSample e;
      e.question = data[s + i].question;
      e.gold = data[s + i].gold;
      e.gold_text = gold_as_written(data[s + i].answer);
      e.completion = tok.decode(greedy_ids[i], /*skip_special=*/true);
      e.correct_strict = correctness_reward(e.completion, e.gold, {AnswerMode::Strict, cfg.length_target}) > 0;
      e.correct_flexible = correctness_reward(e.completion, e.gold, {AnswerMode::Flexible, cfg.length_target}) > 0;
      ok_strict += e.correct_strict, ok_flex += e.correct_flexible;
      res.samples.push_back(std::move(e));
    }
    if (cfg.eval_samples > 0) {
      Rollout r = generate(model, prompts, cfg.eval_samples, sampled, keys);
      const auto sampled_ids = completion_token_ids(r);
      for (int64_t k = 0; k < b * cfg.eval_samples; ++k)
        ok_sampled += correctness_reward(tok.decode(sampled_ids[k], true), data[s + k / cfg.eval_samples].gold,
                                         {mode, cfg.length_target}) > 0;
    }
  }
  if (dist && dist->active()) {  // every rank's counts and answers, in question order
    auto counts = dist->all_reduce({double(ok_strict), double(ok_flex), double(ok_sampled)});
    ok_strict = int64_t(counts[0]), ok_flex = int64_t(counts[1]), ok_sampled = int64_t(counts[2]);
    json mine = json::array();
    for (const auto& e : res.samples)
      mine.push_back({e.question, e.gold, e.gold_text, e.completion, e.correct_strict, e.correct_flexible});
    res.samples.clear();
    for (const auto& text : dist->all_gather(json_text(mine)))
      for (const auto& j : json::parse(text))
        res.samples.push_back({j[0].get<std::string>(), j[1].get<double>(), j[2].get<std::string>(), j[3].get<std::string>(),
                               j[4].get<bool>(), j[5].get<bool>()});
  }
  res.greedy_strict = double(ok_strict) / std::max<int64_t>(1, n);
  res.greedy_flexible = double(ok_flex) / std::max<int64_t>(1, n);
  if (cfg.eval_samples > 0) res.sampled = double(ok_sampled) / std::max<int64_t>(1, n * cfg.eval_samples);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

namespace {

const std::regex kCheckpointName(R"(checkpoint-(\d+))");

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!dir_exists(output_dir)) return out;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, kCheckpointName) && file_exists(e.path().string() + "/trainer_state.json"))
      out.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void copy_if_exists(const std::string& from_dir, const std::string& to_dir, const char* name) {
  if (file_exists(from_dir + "/" + name)) fs::copy_file(from_dir + "/" + name, to_dir + "/" + name, fs::copy_options::overwrite_existing);
}

}  // namespace

std::string find_latest_checkpoint(const std::string& output_dir) {
  auto all = list_checkpoints(output_dir);
  return all.empty() ? "" : all.back().second;
}

namespace {

// Every file of a checkpoint into the directory `tmp`; trainer_state.json last.
void write_checkpoint_files(GrpoState& st, const std::string& tmp, const std::string& model_dir, TrainerState state) {
  fs::create_directories(tmp);
  torch::NoGradGuard ng;
  auto dtype = st.policy->output_weight().scalar_type();
  if (st.cfg.lora_rank > 0) save_lora_adapter(st.policy, tmp, lora_config(st.cfg), model_dir);  // PEFT's files, not the base
  else save_qwen2(st.policy, tmp, dtype);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json"})
    copy_if_exists(model_dir, tmp, f);
  if (!st.master.empty()) {  // exact fp32 weights for resuming a bf16/fp16 run
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (size_t i = 0; i < st.master.size(); ++i) ts.emplace_back(st.param_names[i], st.master[i]);
    write_tensors(tmp + "/master.safetensors", ts, torch::kFloat32);
  }
  if (failpoint("checkpoint_write")) std::abort();
  torch::save(*st.optimizer, tmp + "/optimizer.pt");
  if (st.cfg.sync_ref_model && st.ref) save_qwen2(st.ref, tmp + "/reference", dtype);  // no longer the initial model
  for (const char* f : {"model.safetensors", "adapter_model.safetensors", "optimizer.pt", "master.safetensors", "reference/model.safetensors"})
    if (file_exists(tmp + "/" + f)) state.checksums[f] = file_checksum(tmp + "/" + f);  // verify_checkpoint checks them
  for (const auto& key : config_key_names())  // the run-defining settings a resume is compared with
    if (!resumable_change(key) && key != "reward_weights") state.config[key] = get_config_value(st.cfg, key);
  state.step = st.step;
  state.total_steps = st.total_steps;
  state.skipped_updates = st.skipped_updates;
  state.data_position = st.data_position;
  write_file_atomic(tmp + "/trainer_state.json", trainer_state_text(state));  // written last: marks the dir complete
}

}  // namespace

std::string save_checkpoint(GrpoState& st, const std::string& output_dir, const std::string& model_dir, const TrainerState& record) {
  const std::string final_dir = output_dir + "/checkpoint-" + std::to_string(st.step);
  const std::string tmp = final_dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  try {
    write_checkpoint_files(st, tmp, model_dir, record);
  } catch (const std::exception& e) {  // disk full, a file-size limit, a permission: the last good checkpoint stays
    std::error_code ec;
    fs::remove_all(tmp, ec);
    const std::string last = find_latest_checkpoint(output_dir);
    throw Error("saving " + final_dir + " failed: " + error_text(e) + "; " +
                (last.empty() ? std::string("no earlier checkpoint exists")
                              : "the last complete checkpoint, " + last + ", is intact: free space, then --resume auto"));
  }
  // Swap into place; an older directory of the same name (a re-save) is replaced only now.
  if (dir_exists(final_dir)) {
    const std::string old = final_dir + ".old-" + std::to_string(::getpid());
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_dir);
  }
  // save_total_limit: drop the oldest complete checkpoints, never the one just written.
  if (st.cfg.save_total_limit > 0) {
    auto all = list_checkpoints(output_dir);
    for (size_t i = 0; i + st.cfg.save_total_limit < all.size(); ++i)
      if (all[i].second != final_dir) fs::remove_all(all[i].second);
  }
  return final_dir;
}

bool resumable_change(const std::string& key) {
  static const std::set<std::string> free = {"max_steps", "num_epochs", "eval_every", "eval_limit", "eval_samples",
                                             "eval_temperature", "save_steps", "save_total_limit", "log_samples_every",
                                             "output_dir", "device", "decode_mode", "attention", "reward_timeout",
                                             "reward_restarts", "eval_data", "dist_backend", "dist_timeout_s",
                                             // how a step is split into micro-batches: memory, not the step's
                                             // math (except bnpo's and top_entropy_quantile's per-micro-batch
                                             // statistics), and it changes with the world size
                                             "grad_accum"};
  return free.count(key) > 0;
}

std::string config_differences(const std::map<std::string, std::string>& saved, const TrainConfig& now) {
  std::string out;
  for (const auto& key : config_key_names()) {
    if (resumable_change(key) || !saved.count(key)) continue;
    const std::string value = get_config_value(now, key), was = saved.at(key);
    if (value != was) out += "\n  " + key + ": " + was + " -> " + value;
  }
  return out;
}

void verify_checkpoint(const std::string& dir) {
  for (const auto& [f, want] : read_trainer_state(dir).checksums) {
    const std::string file = dir + "/" + f;
    if (!file_exists(file)) throw Error(file + ": missing (trainer_state.json records it); the checkpoint is incomplete");
    const std::string got = file_checksum(file);
    if (got != want)
      throw Error(file + ": checksum " + got + " differs from the " + want +
                  " recorded when it was saved: the file is corrupted; resume from another checkpoint");
  }
}

TrainerState load_checkpoint_state(GrpoState& st, const std::string& dir) {
  TrainerState state = read_trainer_state(dir);
  st.step = state.step;
  st.skipped_updates = state.skipped_updates;
  st.data_position = state.data_position >= 0 ? state.data_position : st.step * int64_t(st.cfg.prompts_per_step);
  if (!file_exists(dir + "/optimizer.pt")) throw Error(dir + ": missing optimizer.pt");
  try {
    torch::load(*st.optimizer, dir + "/optimizer.pt");
  } catch (const std::exception& e) {  // truncated or not ours (a checkpoint without checksums)
    throw Error(dir + "/optimizer.pt: cannot be read as this run's optimizer state (" + error_text(e) + ")");
  }
  if (!st.master.empty()) {
    if (!file_exists(dir + "/master.safetensors")) throw Error(dir + ": missing master.safetensors for a non-fp32 model");
    auto f = SafetensorsFile::open(dir + "/master.safetensors");
    const auto& names = st.param_names;
    torch::NoGradGuard ng;
    for (size_t i = 0; i < st.master.size(); ++i) {
      const TensorInfo* t = f->find(names[i]);
      if (!t || t->dtype != DType::F32 || t->numel() != st.master[i].numel())
        throw Error(f->path() + ": tensor '" + names[i] + "' missing or of the wrong shape/dtype");
      st.master[i].copy_(tensor_in_file(*f, *t, st.master[i].sizes()));
    }
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Evaluation results on disk (summary.json, answers_*.jsonl; report.h reads them back)

namespace {

json eval_json(const EvalResult& e) {
  return {{"greedy_strict", e.greedy_strict}, {"greedy_flexible", e.greedy_flexible},
          {"sampled", e.sampled < 0 ? json(nullptr) : json(e.sampled)}, {"n", e.n}, {"seconds", e.seconds}};
}

// Every evaluated question's greedy answer, for the report's before/after examples.
void write_answers(const std::string& path, const EvalResult& e) {
  std::string s;
  for (const auto& a : e.samples)
    s += json_text(json({{"question", a.question}, {"gold", a.gold_text}, {"completion", a.completion}, {"correct", a.correct_strict},
                         {"correct_flexible", a.correct_flexible}})) +
         "\n";
  write_file_atomic(path, s);
}

// ---------------------------------------------------------------------------------------------
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

// Memory the run will need, printed by --dry-run and at start.
std::string memory_estimate(const ModelConfig& mc, const TrainConfig& cfg, torch::Dtype dtype) {
  const double P = double(mc.n_params()), es = double(torch::elementSize(dtype));
  const int64_t N = int64_t(cfg.prompts_per_step) * cfg.group_size, T = cfg.max_prompt_tokens + cfg.max_new_tokens;
  // LoRA: the base stays frozen (no gradient, master or AdamW state, and it is its own reference);
  // the adapters' Lp parameters are fp32 with fp32 gradients and AdamW moments.
  const bool lora = cfg.lora_rank > 0;
  const double Lp = double(lora_param_count(mc, lora_config(cfg))), trained = lora ? Lp : P;
  const double weights = P * es + Lp * 4, grads = lora ? Lp * 4 : P * es, adam = 2 * trained * 4;
  const double master = lora || dtype == torch::kFloat32 ? 0 : P * 4;
  const double ref = cfg.beta > 0 && !lora ? P * es : 0;
  const double kv = double(KVCache::bytes_needed(mc, N, T, dtype));
  // Saved for backward per token and layer (eager attention): ~16 D + 3 F values plus the (H, S)
  // scores and probabilities (model dtype) and the fp32 softmax. Checkpointing keeps only each
  // layer's input (D values) and one layer's worth during its recompute.
  // Without checkpointing a micro-batch runs each prompt once for its group (update_policy).
  const int64_t mb = N / std::max(1, cfg.grad_accum);
  const double prompt_rows = cfg.gradient_checkpointing ? double(mb) : std::ceil(double(mb) / cfg.group_size);
  const double tokens = prompt_rows * cfg.max_prompt_tokens + double(mb) * cfg.max_new_tokens;
  const double per_layer = (16.0 * mc.n_embd + 3.0 * mc.n_ff) * es + double(mc.n_head) * T * (2 * es + 4);
  const double act = cfg.gradient_checkpointing ? tokens * (mc.n_embd * es * mc.n_layer + per_layer)
                                                : tokens * per_layer * mc.n_layer;
  // The chunked lm_head: a few (rows, V) fp32 blocks, the fp32 (V, D) gradient, and for a bf16/fp16
  // model the fp32 copy of the (V, D) weight it multiplies with.
  const double head = double(mc.n_vocab) * mc.n_embd * 4;
  const double logits = double(logprob_chunk_rows(mc.n_vocab)) * mc.n_vocab * 4 * 3 + head * ((dtype == torch::kFloat32 ? 1 : 2) - (lora ? 1 : 0));
  char b[640];
  std::snprintf(b, sizeof b,
                "memory estimate%s: weights %.2f GB + grads %.2f GB + AdamW %.2f GB + master %.2f GB + reference %.2f GB + "
                "KV cache %.2f GB + activations%s ~%.2f GB + lm_head chunks %.2f GB = ~%.2f GB",
                lora ? (" (LoRA r=" + std::to_string(cfg.lora_rank) + ", " + std::to_string(int64_t(Lp)) + " trained parameters)").c_str() : "",
                weights / 1e9, grads / 1e9, adam / 1e9, master / 1e9, ref / 1e9, kv / 1e9, cfg.gradient_checkpointing ? " (checkpointed)" : "", act / 1e9, logits / 1e9,
                (weights + grads + adam + master + ref + kv + act + logits) / 1e9);
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The run

// ---------------------------------------------------------------------------------------------
// The rollout phase: B prompts from the data position, rolled out and scored. With
// dynamic_sampling (DAPO), groups whose G rewards are all equal (no advantage, no gradient) are
// dropped and the batch is refilled from the next prompts, up to dynamic_sampling_max_rollouts
// rollouts in all; if still short, the dropped groups fill the rest (they cost compute, not
// correctness: their advantages are 0). Counts go to the step's metrics.

namespace {

// A reward that failed on some completions (each scored 0) is counted in `reward/errors` and said
// once per rollout, so that a user's bad data shows without stopping the run.
void report_reward_errors(const RolloutBatch& p, int64_t step, std::map<std::string, double>& metrics) {
  metrics["reward/errors"] += double(p.reward_errors);
  if (p.reward_errors > 0)
    std::fprintf(stderr, "warning: step %lld: %lld completion(s) scored 0 because a reward failed on them; first: %s\n",
                 static_cast<long long>(step), static_cast<long long>(p.reward_errors), p.reward_error.c_str());
}

// Running out of memory in a step (CUDA's OutOfMemoryError, or the CPU allocator's failure) ends
// the run with the settings that would make it fit; the step was never saved, so the last
// checkpoint is where to resume. GRPO_FAILPOINT=oom_rollout|oom_update fakes it for the tests.
template <class Phase>
auto with_memory_hint(const std::string& phase, const GrpoState& st, const std::string& out, Phase&& run) -> decltype(run()) {
  const int64_t step = st.step + 1;
  try {
    TORCH_CHECK_WITH(OutOfMemoryError, !failpoint("oom_" + phase), "CUDA out of memory. Tried to allocate 2.00 GiB (failpoint)");
    return run();
  } catch (const c10::Error& e) {
    const std::string what = error_text(e), first_line = what.substr(0, what.find('\n'));
    if (!dynamic_cast<const c10::OutOfMemoryError*>(&e) && what.find("can't allocate memory") == std::string::npos) throw;
    const TrainConfig& c = st.cfg;
    const int64_t N = int64_t(c.prompts_per_step) * c.group_size;
    const std::string lower =
        phase == "rollout"
            ? "lower prompts_per_step (now " + std::to_string(c.prompts_per_step) + "), group_size (now " + std::to_string(c.group_size) +
                  ") or max_new_tokens (now " + std::to_string(c.max_new_tokens) + ")"
            : "raise grad_accum (now " + std::to_string(c.grad_accum) + ": micro-batches of " + std::to_string(N / c.grad_accum) +
                  " sequences), lower max_new_tokens (now " + std::to_string(c.max_new_tokens) + ")" +
                  (c.gradient_checkpointing ? "" : ", or set gradient_checkpointing: true");
    const std::string last = find_latest_checkpoint(out);
    throw Error("out of memory in the " + phase + " of step " + std::to_string(step) + " (" + first_line + "); " + lower + "; " +
                (last.empty() ? std::string("no checkpoint was written yet") : "the last complete checkpoint, " + last + ", is intact"));
  }
}

// ---------------------------------------------------------------------------------------------
// The run's logs: metrics.jsonl, samples.jsonl, eval.jsonl and TensorBoard (tb/). A resumed run
// keeps their lines up to its checkpoint's step, drops those of later steps (the interrupted
// invocation wrote them; this one redoes them), and rebuilds tb/ from the kept lines: every log
// reads as one uninterrupted run, no step twice, whatever number of invocations made it.

// The JSON lines of `path` whose "step" is at most `step`, rewritten in place.
std::vector<json> keep_lines_up_to(const std::string& path, int64_t step) {
  std::vector<json> kept;
  if (!file_exists(path)) return kept;
  std::istringstream in(read_file(path));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    if (trim(line).empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("step", int64_t(0)) > step) continue;
    kept.push_back(j);
    text += line + "\n";
  }
  write_file_atomic(path, text);
  return kept;
}

void add_step_scalars(TensorBoardWriter& tb, const json& m) {
  for (const auto& [k, v] : m.items())
    if (v.is_number() && k != "step") tb.add_scalar(k, v.get<double>(), m["step"].get<int64_t>());
}

void add_eval_scalars(TensorBoardWriter& tb, const json& e) {
  for (const char* k : {"greedy_strict", "greedy_flexible", "sampled"})
    if (e.contains(k) && e[k].is_number()) tb.add_scalar(std::string("eval/") + k, e[k].get<double>(), e["step"].get<int64_t>());
}

// Only rank 0 writes them (`writer`); on the other ranks every call is a no-op.
struct RunLogs {
  std::ofstream metrics, samples, eval, rollouts;
  std::unique_ptr<TensorBoardWriter> tb;

  // resume_step < 0: a fresh run, every log starts empty. rollouts_path: --dump-rollouts ("" = off).
  RunLogs(const std::string& out, int64_t resume_step, bool writer, const std::string& rollouts_path) {
    if (!writer) return;
    const int64_t keep = std::max<int64_t>(resume_step, 0);
    auto history = keep_lines_up_to(out + "/metrics.jsonl", keep);
    auto evals = keep_lines_up_to(out + "/eval.jsonl", keep);
    keep_lines_up_to(out + "/samples.jsonl", keep);
    if (!rollouts_path.empty()) {
      keep_lines_up_to(rollouts_path, keep);
      rollouts.open(rollouts_path, std::ios::app);
      if (!rollouts) throw Error("--dump-rollouts " + rollouts_path + ": cannot open for writing (" + std::strerror(errno) + ")");
    }
    const std::string tb_dir = out + "/tb";
    if (dir_exists(tb_dir))
      for (const auto& e : fs::directory_iterator(tb_dir))
        if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) fs::remove(e.path());
    tb = std::make_unique<TensorBoardWriter>(tb_dir);
    for (const auto& m : history) add_step_scalars(*tb, m);
    for (const auto& e : evals) add_eval_scalars(*tb, e);
    tb->flush();
    metrics.open(out + "/metrics.jsonl", std::ios::app);
    samples.open(out + "/samples.jsonl", std::ios::app);
    eval.open(out + "/eval.jsonl", std::ios::app);
  }
  void log_step(const json& m) {
    if (!tb) return;
    metrics << json_text(m) << "\n" << std::flush;
    add_step_scalars(*tb, m);
    tb->flush();
  }
  void log_eval(const json& e) {
    if (!tb) return;
    eval << json_text(e) << "\n" << std::flush;
    add_eval_scalars(*tb, e);
    tb->flush();
  }
  // --dump-rollouts: every trained group of the step, token ids as the loss sees them (the prompt
  // without its left padding, the completion up to and including its stop id), so another trainer
  // can be fed the same prompts in the same order and the same completions (bench/vs_trl).
  void log_rollouts(int64_t step, const RolloutBatch& rb, const StepStats& s, const std::vector<int32_t>& stop_ids) {
    if (!rollouts.is_open()) return;
    const Rollout& r = rb.rollout;
    const int64_t G = rb.rewards.size(1);
    auto prompt = r.prompt_ids.to(torch::kCPU), pmask = r.prompt_mask.to(torch::kCPU);
    const auto completions = completion_token_ids(r);
    auto rewards = rb.rewards.to(torch::kCPU).contiguous();  // (B, G) -> N values in completion order
    json j = {{"step", step},
              {"examples", rb.examples},
              {"prompt_ids", json::array()},
              {"completion_ids", completions},
              {"rewards", std::vector<float>(rewards.data_ptr<float>(), rewards.data_ptr<float>() + rewards.numel())},
              {"lr", s.metrics.count("lr") ? s.metrics.at("lr") : 0.0},
              {"stop_ids", stop_ids}};
    for (int64_t b = 0; b < rb.rewards.size(0); ++b) {
      auto ids = prompt[b * G].masked_select(pmask[b * G].to(torch::kBool));
      j["prompt_ids"].push_back(std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()));
    }
    rollouts << json_text(j) << "\n" << std::flush;
  }
  // The first 2 prompts of the step with their G completions, rewards and advantages (B, G).
  void log_samples(int64_t step, const RolloutBatch& rb, const torch::Tensor& advantages, const GSM8KDataset& train) {
    if (!tb) return;
    const int64_t G = rb.rewards.size(1);
    for (int64_t b = 0; b < std::min<int64_t>(2, rb.rewards.size(0)); ++b) {
      const Example& ex = train[rb.examples[b]];
      json j = {{"step", step}, {"question", ex.question}, {"gold", ex.gold}, {"completions", json::array()}};
      for (int64_t g = 0; g < G; ++g)
        j["completions"].push_back({{"text", rb.completions[b * G + g]},
                                    {"reward", rb.rewards[b][g].item<float>()},
                                    {"advantage", advantages[b][g].item<float>()},
                                    {"correct", rb.correct[b][g].item<float>() > 0}});
      samples << json_text(j) << "\n";
    }
    samples.flush();
  }
};

// What the run will do, printed before anything is written (and all a --dry-run prints): data and
// steps, prompt lengths, the model and its memory estimate, and warnings about the settings.
void print_run_plan(const TrainConfig& cfg, const ModelConfig& mc, const Tokenizer& tok, const GSM8KDataset& train,
                    const GSM8KDataset& eval, int64_t total_steps, torch::ScalarType dtype, const torch::Device& device) {
  const int64_t B = cfg.prompts_per_step;
  size_t longest_prompt = 0, truncated = 0;
  for (size_t i = 0; i < std::min<size_t>(train.size(), 2000); ++i) {
    auto p = tokenize_prompt(tok, cfg.system_prompt, train[i].question, cfg.max_prompt_tokens);
    longest_prompt = std::max(longest_prompt, p.ids.size());
    truncated += p.truncated;
  }
  std::printf("  train: %zu examples, eval: %zu examples, %lld steps of %lld prompts x %d samples\n", train.size(), eval.size(),
              (long long)total_steps, (long long)B, cfg.group_size);
  std::printf("  prompts (first %zu): longest %zu tokens, %zu truncated to max_prompt_tokens = %d\n",
              std::min<size_t>(train.size(), 2000), longest_prompt, truncated, cfg.max_prompt_tokens);
  std::printf("  model: %s, %.1f M params, %s on %s (%s); %s\n", mc.model_type.c_str(), mc.n_params() / 1e6,
              c10::toString(dtype), device.str().c_str(), runtime_summary().c_str(), memory_estimate(mc, cfg, dtype).c_str());
  std::fflush(stdout);
  if (cfg.vllm_importance_sampling_correction && (cfg.top_p < 1 || cfg.top_k > 0 || cfg.min_p > 0 || cfg.repetition_penalty != 1))
    std::printf("  warning: top_p/top_k/min_p/repetition_penalty filter the sampling distribution; the sampler correction\n"
                "  weighs each token by p_policy / p_filtered <= 1%s (see grpo.h, compute_sampler_correction)\n",
                cfg.vllm_importance_sampling_mode == IsCorrectionMode::SequenceMask || cfg.vllm_importance_sampling_mode == IsCorrectionMode::SequenceTruncate
                    ? ", and a sequence mode multiplies them over the whole completion: consider vllm_importance_sampling_mode=token_truncate"
                    : "");
}

// The checkpoint a run continues from ("" for a fresh run), checked before anything is loaded or
// written: it exists, has the model's shape, its files match their checksums, and its run-defining
// settings are the config's (or --allow-config-change). A fresh run refuses an output_dir that
// already holds a checkpoint.
std::string resume_point(const TrainConfig& cfg, const RunOptions& opts, const ModelConfig& mc) {
  const std::string& out = cfg.output_dir;
  std::string resume_dir;
  if (opts.resume == "auto") {
    resume_dir = find_latest_checkpoint(out);
    if (resume_dir.empty()) throw Error("--resume auto: no checkpoint-<step> directory in output_dir '" + out + "'");
  } else if (!opts.resume.empty()) {
    resume_dir = opts.resume;
    if (!file_exists(resume_dir + "/trainer_state.json"))
      throw Error("--resume " + resume_dir + ": not a checkpoint directory (no trainer_state.json)");
  } else if (const std::string existing = find_latest_checkpoint(out); !existing.empty()) {
    throw Error("output_dir '" + out + "' already holds " + existing +
                "; pass --resume auto to continue that run, or choose another output_dir");
  } else {
    return "";  // a fresh run
  }
  // A LoRA checkpoint is an adapter (PEFT's files) over model_path: its shapes are checked as it loads.
  ModelConfig rc = is_lora_adapter_dir(resume_dir) ? mc : ModelConfig::from_dir(resume_dir);
  if (rc.n_vocab != mc.n_vocab || rc.n_embd != mc.n_embd || rc.n_layer != mc.n_layer || rc.n_head != mc.n_head ||
      rc.n_kv_head != mc.n_kv_head || rc.n_ff != mc.n_ff || rc.head_dim != mc.head_dim)
    throw Error("--resume " + resume_dir + ": the checkpoint is a different model shape (hidden " + std::to_string(rc.n_embd) +
                ", layers " + std::to_string(rc.n_layer) + ", vocab " + std::to_string(rc.n_vocab) + ") than model_path " +
                cfg.model_path + " (hidden " + std::to_string(mc.n_embd) + ", layers " + std::to_string(mc.n_layer) + ", vocab " +
                std::to_string(mc.n_vocab) + ")");
  verify_checkpoint(resume_dir);  // a corrupted file is named before anything is loaded
  const std::string diff = config_differences(read_trainer_state(resume_dir).config, cfg);
  if (!diff.empty() && !opts.allow_config_change)
    throw Error("--resume " + resume_dir + ": these settings differ from the run the checkpoint belongs to (checkpoint -> now):" + diff +
                "\n  resume with the checkpoint's values, or pass --allow-config-change to continue with the new ones");
  if (!diff.empty()) std::printf("Resuming with changed settings (--allow-config-change):%s\n", diff.c_str());
  return resume_dir;
}

// One line of metrics.jsonl: the update's statistics, the rollout's counts, the timings and
// throughputs (tokens generated per rollout second; prompt + completion tokens per update
// second, times num_iterations) and the step's peak memory.
json step_metrics(const GrpoState& st, const RolloutBatch& rb, const StepStats& s, const std::map<std::string, double>& rollout_metrics,
                  double t_roll, double t_upd, double n_train, const torch::Device& device) {
  const TrainConfig& cfg = st.cfg;
  json m = {{"step", st.step}, {"epoch", double(st.data_position) / n_train}};
  for (const auto& [k, v] : s.metrics) m[k] = std::isfinite(v) ? json(v) : json(nullptr);
  for (const auto& [k, v] : rollout_metrics) m[k] = v;
  // Tokens summed over the ranks, times and memory of the slowest / fullest rank.
  const auto tokens = st.dist->all_reduce(
      {double(rb.rollout.decode_tokens),
       double((torch::cat({rb.rollout.prompt_mask, rb.rollout.completion_mask}, 1)).sum().item<int64_t>()) * cfg.num_iterations});
  const double gen_tokens = tokens[0], upd_tokens = tokens[1];
  const auto slowest = st.dist->all_reduce({t_roll, t_upd, rb.reward_seconds, peak_memory_mb(device)}, Dist::Op::Max);
  t_roll = slowest[0], t_upd = slowest[1];
  m["time_rollout_s"] = t_roll;
  m["time_update_s"] = t_upd;
  m["time_rewards_s"] = slowest[2];  // part of time_rollout_s
  m["time_step_s"] = t_roll + t_upd;
  m["rollout_tokens_per_s"] = gen_tokens / std::max(t_roll, 1e-9);
  m["update_tokens_per_s"] = upd_tokens / std::max(t_upd, 1e-9);
  if (cfg.decode_mode != DecodeMode::Eager) m["decode_new_shapes"] = rb.rollout.decode_shapes;
  m["peak_mem_mb"] = slowest[3];  // CUDA allocator peak of this step; CPU: process peak RSS
  return m;
}

// output_dir, or its nearest existing ancestor, must be a writable directory; nothing is created
// yet, so that a run failing before training leaves the file system as it found it.
void check_output_dir(const std::string& out) {
  std::error_code ec;
  fs::path p = fs::absolute(out, ec);
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec)) throw Error("output_dir '" + out + "' is not writable (" + p.string() + " is not a directory)");
  if (::access(p.c_str(), W_OK) != 0) throw Error("output_dir '" + out + "' is not writable (" + p.string() + ": " + std::strerror(errno) + ")");
}

RolloutBatch rollout_phase(GrpoState& st, const Tokenizer& tok, const SpecialIds& special, const GSM8KDataset& train,
                           std::map<std::string, double>& metrics) {
  const TrainConfig& cfg = st.cfg;
  Dist& dist = *st.dist;
  // Roll out `mine` prompts from `offset` past the data position, while the ranks together consume
  // `total`: rank r's prompts are positions [offset_r, offset_r + mine_r) of the step's sequence.
  auto roll = [&](int64_t offset, int64_t mine, int64_t total) {
    auto idx = train.indices_at(static_cast<uint64_t>(cfg.seed), st.data_position + offset, static_cast<size_t>(mine));
    st.data_position += total;
    std::vector<Example> batch;
    std::vector<uint64_t> keys;
    for (size_t i : idx) batch.push_back(train[i]), keys.push_back(i);
    RolloutBatch p = rollout_and_score(st, tok, special, batch, keys);
    report_reward_errors(p, st.step + 1, metrics);
    return p;
  };
  const int64_t b = cfg.prompts_per_step / dist.world_size();  // this rank's groups
  std::vector<RolloutBatch> parts{roll(dist.rank() * b, b, cfg.prompts_per_step)};
  if (cfg.dynamic_sampling) {
    // Each rank refills its own share; the refills of a round are consecutive prompts, rank by rank.
    std::vector<std::pair<size_t, int64_t>> keep, flat;
    auto scan = [&] {
      const RolloutBatch& p = parts.back();
      auto range = std::get<0>(p.rewards.max(1)) - std::get<0>(p.rewards.min(1));  // (b,)
      for (int64_t g = 0; g < p.rewards.size(0); ++g)
        (range[g].item<float>() > 0 && static_cast<int64_t>(keep.size()) < b ? keep : flat).emplace_back(parts.size() - 1, g);
    };
    scan();
    int rollouts = 1;
    for (;; ++rollouts) {
      const int64_t need = b - static_cast<int64_t>(keep.size());
      auto needs = dist.all_gather(torch::tensor({need}, torch::kInt64));  // (W,)
      const int64_t total = needs.sum().item<int64_t>();
      if (total == 0 || rollouts == cfg.dynamic_sampling_max_rollouts) break;
      if (need == 0) {
        st.data_position += total;
        continue;
      }
      parts.push_back(roll(needs.narrow(0, 0, dist.rank()).sum().item<int64_t>(), need, total));
      scan();
    }
    const int64_t filled = b - static_cast<int64_t>(keep.size());
    // The kept groups are the mixed ones, so the batch's accuracy leans to 1/2; the policy's own is
    // that of every completion drawn this step.
    double correct = 0, drawn = 0, reward = 0;
    for (const RolloutBatch& p : parts)
      correct += p.correct.sum().item<double>(), reward += p.rewards.sum().item<double>(), drawn += double(p.correct.numel());
    auto counts = dist.all_reduce({double(static_cast<int64_t>(flat.size()) - filled), double(filled), correct, reward, drawn});
    metrics["dynamic_sampling/rollouts"] = rollouts;
    metrics["dynamic_sampling/groups_dropped"] = counts[0];
    metrics["dynamic_sampling/groups_filled_flat"] = counts[1];
    metrics["dynamic_sampling/accuracy_all"] = counts[2] / counts[4];
    metrics["dynamic_sampling/reward_mean_all"] = counts[3] / counts[4];
    for (size_t i = 0; static_cast<int64_t>(keep.size()) < b; ++i) keep.push_back(flat[i]);
    parts = {gather_groups(parts, keep)};
  }
  metrics["reward/errors"] = dist.all_reduce(metrics["reward/errors"]);
  return std::move(parts[0]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The run, in two parts: train_grpo checks and loads every input, and connects the ranks;
// run_training is the run itself, on every rank: load, evaluate before, the loop (rollout ->
// update -> log -> eval -> save), evaluate after, summary and report (the files by rank 0 alone).

namespace {

// Everything run_training needs, loaded and checked by train_grpo.
struct RunInputs {
  const TrainConfig& cfg;
  const RunOptions& opts;
  const Tokenizer& tok;
  const SpecialIds& special;
  const GSM8KDataset& train;
  const GSM8KDataset& eval;
  int64_t total_steps;
  torch::Device device;
  torch::ScalarType dtype;
  std::string resume_dir;  // "" for a fresh run
  std::shared_ptr<Dist> dist;
  std::chrono::steady_clock::time_point t_start;
};

// ---- the step body: rollout -> update -> log (metrics.jsonl, TensorBoard, samples, the progress line)
struct Progress {
  double step_time_sum = 0;  // rollout + update seconds of this invocation's steps
  int64_t steps = 0;
};

void train_step(GrpoState& st, const RunInputs& in, RunLogs& logs, Progress& progress) {
  const TrainConfig& cfg = in.cfg;
  reset_peak_memory(in.device);  // CUDA: peak_mem_mb is this step's high-water mark
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, double> rollout_metrics;
  RolloutBatch rb = with_memory_hint("rollout", st, cfg.output_dir,
                                     [&] { return rollout_phase(st, in.tok, in.special, in.train, rollout_metrics); });
  synchronize(in.device);
  auto t1 = std::chrono::steady_clock::now();
  StepStats s = with_memory_hint("update", st, cfg.output_dir, [&] { return update_policy(st, rb); });
  synchronize(in.device);
  auto t2 = std::chrono::steady_clock::now();
  const json m = step_metrics(st, rb, s, rollout_metrics, std::chrono::duration<double>(t1 - t0).count(),
                              std::chrono::duration<double>(t2 - t1).count(), double(in.train.size()), in.device);
  const double t_roll = m.at("time_rollout_s").get<double>(), t_upd = m.at("time_update_s").get<double>();
  logs.log_step(m);
  if (cfg.log_samples_every > 0 && st.step % cfg.log_samples_every == 0) logs.log_samples(st.step, rb, s.advantages, in.train);
  logs.log_rollouts(st.step, rb, s, in.special.eos);
  progress.step_time_sum += t_roll + t_upd;
  ++progress.steps;
  const double eta = progress.step_time_sum / progress.steps * double(in.total_steps - st.step);
  // Reward and accuracy of every completion drawn, as in the report (with dynamic sampling, not the trained batch's).
  const double reward = m.value("dynamic_sampling/reward_mean_all", s.metrics["reward_mean"]);
  const double acc = m.value("dynamic_sampling/accuracy_all", s.metrics["accuracy"]);
  std::printf("step %lld/%lld | reward %.3f | acc %.3f | kl %.4f | len %.1f | %.2fs (rollout %.2fs, update %.2fs) | %.0f tok/s | ETA %s%s\n",
              (long long)st.step, (long long)in.total_steps, reward, acc, s.metrics["kl"],
              s.metrics["completion_len_mean"], t_roll + t_upd, t_roll, t_upd, m.at("rollout_tokens_per_s").get<double>(),
              fmt_duration(eta).c_str(), s.skipped ? " | SKIPPED (non-finite)" : "");
  std::fflush(stdout);
}

// ---- evaluation before training (a resumed run keeps the first invocation's) and every eval_every steps
json evaluate_before(GrpoState& st, const RunInputs& in) {
  const TrainConfig& cfg = in.cfg;
  std::printf("Evaluating before training (%lld questions)...\n",
              (long long)std::min<int64_t>(in.eval.size(), cfg.eval_limit ? cfg.eval_limit : in.eval.size()));
  std::fflush(stdout);
  EvalResult before = evaluate(st.policy, in.tok, in.special, in.eval, cfg, 16, in.dist.get());
  if (in.dist->is_main()) write_answers(cfg.output_dir + "/answers_before.jsonl", before);
  std::printf("  before: greedy strict %s, flexible %s, sampled %s (%.1f s)\n", fmt_pct(before.greedy_strict).c_str(),
              fmt_pct(before.greedy_flexible).c_str(), fmt_pct(before.sampled).c_str(), before.seconds);
  return eval_json(before);
}

void evaluate_during(GrpoState& st, const RunInputs& in, RunLogs& logs) {
  EvalResult e = evaluate(st.policy, in.tok, in.special, in.eval, in.cfg, 16, in.dist.get());
  json ej = eval_json(e);
  ej["step"] = st.step;
  logs.log_eval(ej);
  std::printf("  eval @ %lld: greedy strict %s, flexible %s, sampled %s\n", (long long)st.step, fmt_pct(e.greedy_strict).c_str(),
              fmt_pct(e.greedy_flexible).c_str(), fmt_pct(e.sampled).c_str());
}

// ---- after: evaluation, then (rank 0) answers, summary.json and report.md
// wall_s is read after the evaluation: the report splits it into rollouts, updates and evaluations.
void finish_run(GrpoState& st, const RunInputs& in, const json& before_json, const std::function<double()>& wall_s) {
  const std::string& out = in.cfg.output_dir;
  std::printf("Evaluating after training...\n");
  std::fflush(stdout);
  EvalResult after = evaluate(st.policy, in.tok, in.special, in.eval, in.cfg, 16, in.dist.get());
  std::printf("  after: greedy strict %s, flexible %s, sampled %s\n", fmt_pct(after.greedy_strict).c_str(),
              fmt_pct(after.greedy_flexible).c_str(), fmt_pct(after.sampled).c_str());
  if (!in.dist->is_main()) return;
  json summary = {{"before", before_json}, {"after", eval_json(after)}, {"steps", st.step}, {"wall_s", wall_s()},
                  {"skipped_updates", st.skipped_updates}};
  summary["before"].erase("samples");
  write_answers(out + "/answers_after.jsonl", after);
  write_file_atomic(out + "/summary.json", json_text(summary, 2) + "\n");
  write_report(out);
  std::printf("Wrote %s/summary.json and %s/report.md\nTraining completed!\n", out.c_str(), out.c_str());
}

int run_training(const RunInputs& in) {
  const TrainConfig& cfg = in.cfg;
  const std::string& out = cfg.output_dir;
  const std::string& resume_dir = in.resume_dir;
  Dist& dist = *in.dist;
  const bool writer = dist.is_main();  // rank 0 alone writes files

  const bool lora = cfg.lora_rank > 0;  // the base model (frozen) + an adapter, saved as PEFT's files
  auto model = load_qwen2(resume_dir.empty() || lora ? cfg.model_path : resume_dir, in.dtype, in.device);
  if (lora && !resume_dir.empty()) load_lora_adapter(model, resume_dir);
  dist.broadcast(model->parameters());  // every rank starts from rank 0's weights
  // Resuming with a KL term: the reference is the initial model, not the resumed policy (or, with
  // sync_ref_model, the mixed reference the checkpoint saved; with LoRA, the base itself).
  Qwen2ForCausalLM initial{nullptr};
  if (!resume_dir.empty() && cfg.beta > 0 && !lora)
    initial = load_qwen2(cfg.sync_ref_model && dir_exists(resume_dir + "/reference") ? resume_dir + "/reference" : cfg.model_path, in.dtype,
                         in.device);

  // ---- every input checked and loaded: only now is output_dir created or changed
  if (writer) {
    fs::create_directories(out);
    for (const auto& e : fs::directory_iterator(out))  // leftovers of an interrupted save
      if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path());
    write_file_atomic(out + "/config.yaml", config_to_yaml(cfg));
    std::printf("Resolved config saved to %s/config.yaml\n", out.c_str());
  }
  std::printf("Setting up optimizer...\n");
  std::fflush(stdout);
  GrpoState st(cfg, model, in.total_steps, initial);
  st.dist = in.dist;
  json before_json;
  double prior_wall_s = 0;
  if (!resume_dir.empty()) {
    TrainerState state = load_checkpoint_state(st, resume_dir);
    before_json = state.eval_before;
    prior_wall_s = state.wall_s;
    std::printf("Resumed from %s at step %lld\n", resume_dir.c_str(), (long long)st.step);
  }
  RunLogs logs(out, resume_dir.empty() ? -1 : st.step, writer, in.opts.dump_rollouts);
  if (before_json.is_null()) before_json = evaluate_before(st, in);

  // What each checkpoint records of the run: the first invocation's before-training results (a
  // resumed run keeps them; the per-question answers stay in answers_before.jsonl) and the wall
  // time so far over every invocation (the checkpoint's plus this one's).
  auto wall_s = [&] { return prior_wall_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - in.t_start).count(); };
  // Rank 0 saves once the ranks agree on every weight; the others wait for it.
  auto save = [&] {
    dist.check_same(st.trainable(), st.param_names, "at step " + std::to_string(st.step));
    TrainerState record;
    record.wall_s = wall_s(), record.eval_before = before_json, record.model_path = cfg.model_path, record.seed = cfg.seed;
    std::string dir = writer ? save_checkpoint(st, out, cfg.model_path, record) : "";
    dist.barrier();
    if (writer) std::printf("  saved %s\n", dir.c_str());
  };

  // ---- the loop
  std::printf("Starting GRPO training...\n");
  std::fflush(stdout);
  std::optional<SignalGuard> signals(std::in_place);
  Progress progress;
  int64_t last_saved = -1;
  const int64_t first_step = st.step;
  while (st.step < in.total_steps) {
    train_step(st, in, logs, progress);
    if (cfg.eval_every > 0 && st.step % cfg.eval_every == 0 && st.step < in.total_steps) evaluate_during(st, in, logs);
    const bool stop_here = in.opts.stop_after > 0 && st.step - first_step >= in.opts.stop_after && st.step < in.total_steps;
    // A signal to any rank stops every rank after this step (SIGTERM over SIGINT).
    const int signal = static_cast<int>(dist.all_reduce(double(signals->received()), Dist::Op::Max));
    if ((cfg.save_steps > 0 && st.step % cfg.save_steps == 0) || signal != 0 || stop_here || st.step == in.total_steps) {
      save();
      last_saved = st.step;
    }
    if (signal != 0) {
      std::printf("Interrupted at step %lld: checkpoint saved; continue with: grpo_train %s --resume auto [same options]\n",
                  (long long)st.step, cfg.model_path.c_str());
      return signal == SIGTERM ? 143 : 130;
    }
    if (stop_here) {
      std::printf("Stopped after %lld steps of this run (--stop-after): checkpoint saved; continue with --resume auto\n",
                  (long long)in.opts.stop_after);
      return 0;
    }
  }
  signals.reset();  // the final save and evaluation run with the caller's handlers
  if (last_saved != st.step) save();
  finish_run(st, in, before_json, wall_s);
  return 0;
}

}  // namespace

int train_grpo(const TrainConfig& cfg_in, const RunOptions& opts) {
  TrainConfig cfg = cfg_in;
  auto t_start = std::chrono::steady_clock::now();
  // ---- inputs first: model dir, tokenizer, data; nothing is written before they all check out
  std::printf("Loading tokenizer and model...\n");
  std::fflush(stdout);
  ModelConfig mc = ModelConfig::from_dir(cfg.model_path);
  auto tok = load_tokenizer(cfg.model_path);
  SpecialIds special = load_special_ids(cfg.model_path, *tok);
  if (special.eos.empty()) throw Error(cfg.model_path + ": no EOS id in generation_config.json, config.json or tokenizer_config.json");
  std::printf("Loading dataset...\n");
  std::fflush(stdout);
  GSM8KDataset train(cfg.train_data, static_cast<size_t>(cfg.train_limit));
  GSM8KDataset eval(cfg.eval_data, static_cast<size_t>(cfg.eval_limit));
  const int64_t B = cfg.prompts_per_step;
  const int64_t total_steps = cfg.max_steps > 0 ? cfg.max_steps : cfg.num_epochs * ((int64_t(train.size()) + B - 1) / B);
  // ---- the ranks (torchrun's environment; none: one process) and this rank's device
  const DistEnv denv = read_dist_env();
  auto device = parse_device(cfg.device);
  if (denv.launched && device.is_cuda() && cfg.device.find(':') == std::string::npos) device = torch::Device(torch::kCUDA, denv.local_rank);
  if (B % denv.world_size != 0)
    throw Error("prompts_per_step = " + std::to_string(B) + " is not a multiple of WORLD_SIZE = " + std::to_string(denv.world_size) +
                ": each rank rolls out whole groups, B / WORLD_SIZE of them");
  check_decode_mode(cfg.decode_mode, device);
  check_attention(cfg.attention);  // sdpa on LibTorch 1.x fails here, before anything is written
  const DistBackend backend = denv.launched ? resolve_backend(cfg.dist_backend, device) : DistBackend::Gloo;
  auto dtype = parse_dtype(cfg.dtype, device);
  print_run_plan(cfg, mc, *tok, train, eval, total_steps, dtype, device);
  if (denv.launched)
    std::printf("Data parallel: %d rank%s (%s), %lld of the %lld prompts per step on each; rank %d on %s\n", denv.world_size,
                denv.world_size == 1 ? "" : "s", choice_name(backend).c_str(), (long long)(B / denv.world_size), (long long)B, denv.rank,
                device.str().c_str());
  if (opts.dry_run) {
    std::printf("Dry run: config, model directory, tokenizer and data are valid; not training.\n");
    return 0;
  }

  // ---- resume point and output dir (every rank checks; nothing is written yet)
  const std::string resume_dir = resume_point(cfg, opts, mc);
  check_output_dir(cfg.output_dir);
  set_current_device(device);
  auto dist = denv.launched ? Dist::connect(denv, backend, device, cfg.dist_timeout_s) : std::make_shared<Dist>();
  try {
    return run_training({cfg, opts, *tok, special, train, eval, total_steps, device, dtype, resume_dir, dist, t_start});
  } catch (const std::exception& e) {
    dist->report_failure(error_text(e));  // the other ranks name this rank and the reason
    throw;
  }
}

}  // namespace grpo
