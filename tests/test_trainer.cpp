// Tests for the run (run.h, checkpoint.h, run_logs.h, evaluation.h) and tensorboard.h: an end-to-end grpo_train run on a tiny random Qwen2
// made by the test (every artifact exists and parses), the TensorBoard file decoded against metrics.jsonl, resume equality (2k steps == k +
// resume + k, bit for bit), a crash in the middle of a checkpoint write, and checkpoint round trips. Labelled `trainer`; still seconds, not
// minutes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/base/tensorboard.h"
#include "grpo/model/model_io.h"
#include "grpo/run/checkpoint.h"
#include "grpo/run/evaluation.h"
#include "grpo/run/report.h"
#include "grpo/run/run.h"
#include "grpo/step/grpo_step.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Small addition problems; the `length` reward (target 4 characters) gives groups different
// rewards even for a random model, so every step really updates the weights.
std::string data_file(const char* name, int n, int seed) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    int a = (i * 7 + seed) % 9 + 1, b = (i * 5 + 2 * seed) % 9 + 1;
    s += json({{"question", "What is " + std::to_string(a) + "+" + std::to_string(b) + "?"},
               {"answer", std::to_string(a) + "+" + std::to_string(b) + "\n#### " + std::to_string(a + b)}})
             .dump() +
         "\n";
  }
  return write_temp(name, s);
}

TrainConfig run_config(const std::string& out) {
  TrainConfig c;
  c.model_path = tiny_test_model_dir();
  c.train_data = data_file("train.jsonl", 30, 1);
  c.eval_data = data_file("test.jsonl", 8, 2);
  c.output_dir = out;
  c.max_steps = 4;
  c.prompts_per_step = 2;
  c.group_size = 4;
  c.grad_accum = 2;
  c.max_new_tokens = 8;
  c.eval_limit = 4;
  c.eval_every = 2;
  c.eval_samples = 2;
  c.save_steps = 2;
  c.save_total_limit = 0;
  c.log_samples_every = 2;
  c.learning_rate = 1e-3;
  c.system_prompt = "S";
  c.reward_weights["length"] = 1.0;
  c.length_target = 4;
  return c;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

json without_timing(json j) {
  for (const char* k :
       {"time_rollout_s", "time_update_s", "time_step_s", "time_rewards_s", "rollout_tokens_per_s", "update_tokens_per_s", "peak_mem_mb"})
    j.erase(k);
  return j;
}

// Run ca for its 4 steps, cb for 2 (--stop-after) then --resume auto: the same metrics.jsonl
// (timings aside) and the same final weights, bit for bit.
// No checkpoint-<step>.tmp-<pid> directory left behind in output_dir `out`.
void expect_no_half_written_checkpoint(const std::string& out) {
  for (const auto& e : fs::directory_iterator(out)) EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

// Every log of a finished run in `out` holds each step once, as an uninterrupted run's would:
// metrics.jsonl steps 1..n, samples.jsonl and eval.jsonl no step twice, and tb/ one event file
// whose (tag, step) pairs are unique, with "loss" at steps 1..n.
void expect_each_step_logged_once(const std::string& out, int64_t n) {
  auto metrics = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), size_t(n));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(metrics[i]["step"], i + 1);
  for (const char* log : {"/samples.jsonl", "/eval.jsonl"}) {
    std::set<std::pair<int64_t, std::string>> seen;
    for (const auto& j : read_jsonl(out + log))
      EXPECT_TRUE(seen.insert({j["step"].get<int64_t>(), j.value("question", std::string())}).second) << log << " step " << j["step"];
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(out + "/tb")) files.push_back(e.path().string());
  ASSERT_EQ(files.size(), 1u);
  std::set<std::pair<std::string, int64_t>> pairs;
  std::vector<int64_t> loss_steps;
  for (const auto& s : read_tensorboard_scalars(files[0])) {
    EXPECT_TRUE(pairs.insert({s.tag, s.step}).second) << s.tag << " twice at step " << s.step;
    if (s.tag == "loss") loss_steps.push_back(s.step);
  }
  std::vector<int64_t> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = i + 1;
  EXPECT_EQ(loss_steps, want);
}

// A run of run_config(out) without evaluations, stopped after 2 of its 4 steps (--stop-after):
// checkpoint-2 in `out`, to resume.
TrainConfig stopped_after_two_steps(const std::string& out) {
  TrainConfig c = run_config(out);
  c.eval_every = 0;
  RunOptions first;
  first.stop_after = 2;
  EXPECT_EQ(run_grpo(c, first), 0);
  EXPECT_TRUE(file_exists(out + "/checkpoint-2/trainer_state.json"));
  return c;
}

void expect_resume_equals_uninterrupted(const TrainConfig& ca, const TrainConfig& cb) {
  ASSERT_EQ(run_grpo(ca, RunOptions{}), 0);
  RunOptions first;
  first.stop_after = 2;
  ASSERT_EQ(run_grpo(cb, first), 0);
  EXPECT_FALSE(file_exists(cb.output_dir + "/summary.json"));  // stopped early
  RunOptions second;
  second.resume = "auto";
  ASSERT_EQ(run_grpo(cb, second), 0);
  auto ma = read_jsonl(ca.output_dir + "/metrics.jsonl"), mb = read_jsonl(cb.output_dir + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(without_timing(ma[i]), without_timing(mb[i])) << "step " << i + 1;
  const std::string weights = ca.lora_rank > 0 ? "/checkpoint-4/adapter_model.safetensors" : "/checkpoint-4/model.safetensors";
  EXPECT_TRUE(read_file(ca.output_dir + weights) == read_file(cb.output_dir + weights));
  expect_each_step_logged_once(cb.output_dir, 4);
}

}  // namespace

TEST(TensorBoard, Crc32cKnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the standard CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
  uint8_t zeros[32] = {0};
  EXPECT_EQ(crc32c(zeros, 32), 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
}

TEST(TrainerState, RoundTripAndMalformedFieldsNamed) {
  TrainerState s;
  s.step = 7;
  s.total_steps = 10;
  s.data_position = 28;
  s.wall_s = 12.5;
  s.seed = -3;
  s.checksums = {{"model.safetensors", "00ff"}};
  s.config = {{"group_size", "4"}};
  TrainerState t = parse_trainer_state(trainer_state_text(s), "x");
  EXPECT_EQ(t.step, 7);
  EXPECT_EQ(t.data_position, 28);
  EXPECT_EQ(t.seed, -3);
  EXPECT_EQ(t.checksums, s.checksums);
  EXPECT_EQ(t.config, s.config);
  EXPECT_EQ(parse_trainer_state(R"({"step": 3})", "old").data_position, -1);  // older checkpoints: not recorded
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {R"({"step": -1})", "ts.json: field \"step\": expected an integer >= 0, found -1"},
           {R"({"total_steps": 4})", "ts.json: missing integer \"step\""},
           {R"({"step": 1, "checksums": {"a": 5}})", "ts.json: field \"checksums.a\": expected a string, found 5"},
           {R"({"step": 1, "wall_s": "long"})", "ts.json: field \"wall_s\": expected a number of seconds >= 0, found \"long\""},
           {R"({"step": 99999999999999999999})", "ts.json: field \"step\": expected an integer >= 0"},
           {R"([1])", "ts.json: expected a JSON object"}})
    EXPECT_NE(error_of([&] { parse_trainer_state(text, "ts.json"); }).find(want), std::string::npos) << text;
}

TEST(Trainer, EndToEndArtifacts) {
  const std::string out = temp_dir() + "/run";
  ASSERT_EQ(run_grpo(run_config(out), RunOptions{}), 0);
  // metrics.jsonl: one line per step with every key the issue lists
  auto metrics = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);
  for (const char* k : {"step",
                        "epoch",
                        "lr",
                        "loss",
                        "reward_mean",
                        "reward_std",
                        "accuracy",
                        "reward/correctness",
                        "reward/format",
                        "reward/tags",
                        "reward/digit",
                        "reward/length",
                        "frac_reward_zero_std",
                        "kl",
                        "clip_ratio_low",
                        "clip_ratio_high",
                        "entropy",
                        "completion_len_mean",
                        "completion_len_max",
                        "truncated_frac",
                        "grad_norm",
                        "skipped",
                        "time_rollout_s",
                        "time_update_s",
                        "time_step_s",
                        "time_rewards_s",
                        "rollout_tokens_per_s",
                        "update_tokens_per_s",
                        "peak_mem_mb"})
    EXPECT_TRUE(metrics[0].contains(k)) << k;
  EXPECT_EQ(metrics[3]["step"], 4);
  EXPECT_LT(metrics[0]["reward_mean"].get<double>(), 0.0);  // the length penalty is active
  EXPECT_GT(metrics[0]["grad_norm"].get<double>(), 0.0);
  // samples.jsonl at step 1 and every 2 steps (1, 2, 4): 2 prompts x 4 completions with rewards and advantages
  auto samples = read_jsonl(out + "/samples.jsonl");
  ASSERT_EQ(samples.size(), 6u);
  EXPECT_EQ(samples[0]["step"], 1);
  EXPECT_EQ(samples[0]["completions"].size(), 4u);
  EXPECT_TRUE(samples[0]["completions"][0].contains("advantage"));
  // summary.json
  json summary = json::parse(read_file(out + "/summary.json"));
  for (const char* k : {"greedy_strict", "greedy_flexible", "sampled"}) {
    EXPECT_TRUE(summary["before"].contains(k)) << k;
    EXPECT_TRUE(summary["after"].contains(k)) << k;
  }
  EXPECT_EQ(summary["steps"], 4);
  EXPECT_GT(summary["wall_s"].get<double>(), 0.0);
  // report.md: sections and SVG curves
  std::string report = read_file(out + "/report.md");
  for (const char* sec : {"## What changed", "## Algorithm", "## Hyperparameters", "## Training log", "## Curves", "## Before / after",
                          "**Before**", "**After**", "| step | reward | accuracy | KL |", "Wall time ", "went wrong -> right", "(gold "})
    EXPECT_NE(report.find(sec), std::string::npos) << sec;
  // The training log has rows for steps 1..4 (4 steps: every one), the answers one line per question.
  for (const char* row : {"\n| 1 | ", "\n| 2 | ", "\n| 3 | ", "\n| 4 | "}) EXPECT_NE(report.find(row), std::string::npos) << row;
  EXPECT_EQ(read_jsonl(out + "/answers_before.jsonl").size(), summary["before"]["n"].get<size_t>());
  EXPECT_EQ(read_jsonl(out + "/answers_after.jsonl")[0]["gold"], read_jsonl(out + "/answers_before.jsonl")[0]["gold"]);
  // The report is rebuilt, byte for byte, from the run's files alone.
  fs::remove(out + "/report.md");
  write_report(out);
  EXPECT_EQ(read_file(out + "/report.md"), report);
  for (const char* plot : {"reward_mean", "accuracy", "kl", "completion_len_mean", "loss"}) {
    std::string svg = read_file(out + "/plots/" + std::string(plot) + ".svg");
    EXPECT_EQ(svg.rfind("<svg", 0), 0u) << plot;
    EXPECT_NE(svg.find("<polyline"), std::string::npos) << plot;
    EXPECT_NE(report.find(std::string("plots/") + plot + ".svg"), std::string::npos) << plot;
  }
  // the final checkpoint loads back in HF layout
  const std::string ck = out + "/checkpoint-4";
  for (const char* f :
       {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "trainer_state.json", "optimizer.pt"})
    EXPECT_TRUE(file_exists(ck + "/" + f)) << f;
  auto model = load_causal_lm(ck, torch::kFloat32, torch::kCPU);
  EXPECT_EQ(json::parse(read_file(ck + "/trainer_state.json"))["step"], 4);
  EXPECT_EQ(read_jsonl(out + "/eval.jsonl").size(), 1u);  // eval_every 2, before the last step
  EXPECT_EQ(read_file(out + "/config.yaml").find("max_steps: 4") != std::string::npos, true);
}

TEST(Trainer, TensorBoardFileMatchesMetrics) {
  const std::string out = temp_dir() + "/run";
  ASSERT_EQ(run_grpo(run_config(out), RunOptions{}), 0);
  std::string event_file;
  for (const auto& e : fs::directory_iterator(out + "/tb")) event_file = e.path().string();
  ASSERT_NE(event_file.find("events.out.tfevents."), std::string::npos);
  auto scalars = read_tensorboard_scalars(event_file);  // throws on any bad CRC
  auto metrics = read_jsonl(out + "/metrics.jsonl");
  size_t matched = 0;
  for (const auto& m : metrics)
    for (const char* k : {"reward_mean", "loss", "grad_norm", "lr", "kl", "completion_len_mean"})
      for (const auto& s : scalars)
        if (s.tag == k && s.step == m["step"].get<int64_t>()) {
          EXPECT_EQ(s.value, static_cast<float>(m[k].get<double>())) << k << " @ " << s.step;
          ++matched;
        }
  EXPECT_EQ(matched, metrics.size() * 6);
  // A flipped byte is detected.
  std::string bytes = read_file(event_file);
  bytes[bytes.size() - 10] ^= 0x40;
  std::string bad = write_temp("events.out.tfevents.bad", bytes);
  EXPECT_THROW(read_tensorboard_scalars(bad), Error);
}

TEST(Trainer, ResumeEqualsUninterruptedRun) {
  const std::string a = temp_dir() + "/a", b = temp_dir() + "/b";
  TrainConfig ca = run_config(a), cb = run_config(b);
  cb.train_data = ca.train_data;
  cb.eval_data = ca.eval_data;
  ca.num_iterations = cb.num_iterations = 2;  // optimizer state and old log-probs must survive too
  ca.beta = cb.beta = 0.05;                   // and the reference model
  ca.lr_schedule = cb.lr_schedule = LrSchedule::Cosine;
  expect_resume_equals_uninterrupted(ca, cb);
  json sa = json::parse(read_file(a + "/summary.json")), sb = json::parse(read_file(b + "/summary.json"));
  for (auto* s : {&sa, &sb})  // evaluation wall times differ between runs
    for (const char* k : {"before", "after"}) (*s)[k].erase("seconds");
  EXPECT_EQ(sa["after"], sb["after"]);
  EXPECT_EQ(sa["before"], sb["before"]);
}

// LoRA: only the adapter is saved (PEFT's files), and resuming from it is exact; the reference of
// the KL term is the base model (adapters off), so the KL starts at 0 and grows as A and B train.
TEST(Trainer, LoraResumeEqualsUninterruptedRun) {
  const std::string a = temp_dir() + "/a", b = temp_dir() + "/b";
  TrainConfig ca = run_config(a), cb = run_config(b);
  cb.train_data = ca.train_data;
  cb.eval_data = ca.eval_data;
  for (TrainConfig* c : {&ca, &cb}) {
    c->lora_rank = 4;
    c->num_iterations = 2;
    c->beta = 0.05;
  }
  expect_resume_equals_uninterrupted(ca, cb);
  EXPECT_TRUE(file_exists(a + "/checkpoint-4/adapter_config.json"));
  EXPECT_FALSE(file_exists(a + "/checkpoint-4/model.safetensors"));
  // One pass a step: step 1's policy equals the base (B = 0 adds an exact 0), so its KL is 0 up to
  // the rounding of two forwards (the policy's with autograd, the reference's without: LibTorch
  // 2.6's CPU kernels round them apart, -9.3e-10); then A and B have trained and it is not. Were the
  // reference the adapted policy, step 2's KL would be as small as step 1's.
  TrainConfig c = run_config(temp_dir() + "/kl");
  c.lora_rank = 4;
  c.beta = 0.05;
  c.max_steps = 2;
  c.eval_every = 0;
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  auto m = read_jsonl(c.output_dir + "/metrics.jsonl");
  const double kl1 = m[0].at("kl").get<double>(), kl2 = m[1].at("kl").get<double>();
  std::printf("LoRA KL: step 1 %.3g, step 2 %.3g\n", kl1, kl2);
  EXPECT_LT(std::abs(kl1), 1e-7);
  EXPECT_GT(kl2, 1e-5);
}

TEST(Trainer, DynamicSamplingRefillsFlatGroups) {
  // Correctness alone on a random model: every group's rewards are all 0 (flat). With B = 2 and at
  // most 3 rollouts a step, each step rolls out 2 + 2 + 2 prompts, drops 4 flat groups and fills
  // the batch with 2 of them; the data position moves by 6 prompts a step.
  const std::string out = temp_dir() + "/dyn";
  TrainConfig c = run_config(out);
  for (auto& [fn, w] : c.reward_weights) w = fn == "correctness" ? 1.0 : 0.0;
  c.dynamic_sampling = true;
  c.dynamic_sampling_max_rollouts = 3;
  c.max_steps = 2;
  c.eval_every = 0;
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  auto m = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u);
  for (const auto& line : m) {
    EXPECT_EQ(line.at("dynamic_sampling/rollouts"), 3.0);
    EXPECT_EQ(line.at("dynamic_sampling/groups_dropped"), 4.0);
    EXPECT_EQ(line.at("dynamic_sampling/groups_filled_flat"), 2.0);
    EXPECT_EQ(line.at("frac_reward_zero_std"), 1.0);
  }
  EXPECT_NEAR(m[1].at("epoch").get<double>(), 12.0 / 30, 1e-12);  // 12 of the 30 training prompts
  EXPECT_EQ(json::parse(read_file(out + "/checkpoint-2/trainer_state.json")).at("data_position"), 12);
}

TEST(Trainer, DynamicSamplingLogsTheAccuracyOfEveryDrawnCompletion) {
  // The demo's model and task, where some groups are all right: the trained batch keeps the mixed
  // groups, so its accuracy differs from that of all the completions drawn; with one rollout a
  // step nothing is refilled and the two are the same. The report shows the latter (and the reward
  // of every drawn completion).
  auto run = [](const std::string& name, int64_t max_rollouts) {
    TrainConfig c;
    c.model_path = source_path("data/tiny-model");
    c.train_data = source_path("data/tiny-math/train.jsonl");
    c.eval_data = source_path("data/tiny-math/test.jsonl");
    c.output_dir = temp_dir() + "/" + name;
    c.system_prompt = "Solve.";
    c.max_new_tokens = 16;
    c.prompts_per_step = 8;
    c.group_size = 8;
    c.max_steps = 3;
    c.eval_limit = 2;
    c.save_steps = 0;
    c.reward_weights["format"] = 0.0;
    c.dynamic_sampling = true;
    c.dynamic_sampling_max_rollouts = max_rollouts;
    EXPECT_EQ(run_grpo(c, RunOptions{}), 0);
    return std::make_pair(c.output_dir, read_jsonl(c.output_dir + "/metrics.jsonl"));
  };
  for (const auto& m : run("dyn_acc1", 1).second) {
    EXPECT_EQ(m.at("dynamic_sampling/rollouts"), 1.0);
    EXPECT_DOUBLE_EQ(m.at("dynamic_sampling/accuracy_all").get<double>(), m.at("accuracy").get<double>());
    EXPECT_DOUBLE_EQ(m.at("dynamic_sampling/reward_mean_all").get<double>(), m.at("reward_mean").get<double>());
  }
  const auto [out, metrics] = run("dyn_acc4", 4);
  int differ = 0;
  for (const auto& m : metrics) {
    const double all = m.at("dynamic_sampling/accuracy_all").get<double>();
    EXPECT_GE(all, 0.0);
    EXPECT_LE(all, 1.0);
    differ += m.at("dynamic_sampling/groups_dropped").get<double>() > 0 && all != m.at("accuracy").get<double>();
  }
  EXPECT_GT(differ, 0);
  char row[64];
  std::snprintf(row, sizeof row, "\n| 1 | %.3f | %.3f | ", metrics[0].at("dynamic_sampling/reward_mean_all").get<double>(),
                metrics[0].at("dynamic_sampling/accuracy_all").get<double>());
  EXPECT_NE(read_file(out + "/report.md").find(row), std::string::npos) << row;
}

TEST(Trainer, ResumeWithDynamicSamplingAndSyncedReference) {
  // The data position (dynamic sampling draws more than B prompts a step) and the mixed reference
  // (sync_ref_model) are part of the checkpoint: 2 + resume + 2 steps equal 4 steps, bit for bit.
  const std::string a = temp_dir() + "/dyn_a", b = temp_dir() + "/dyn_b";
  TrainConfig ca = run_config(a), cb = run_config(b);
  cb.train_data = ca.train_data;
  cb.eval_data = ca.eval_data;
  for (TrainConfig* c : {&ca, &cb}) {
    c->dynamic_sampling = true;
    c->beta = 0.05;
    c->sync_ref_model = true;
    c->ref_model_sync_steps = 1;
  }
  expect_resume_equals_uninterrupted(ca, cb);
  EXPECT_TRUE(file_exists(b + "/checkpoint-2/reference/model.safetensors"));
}

TEST(Trainer, CorruptedCheckpointIsRefused) {
  // trainer_state.json records each file's checksum at save time; a resume checks them first and
  // names the file that changed: a flipped byte in the weights, a truncated optimizer state.
  const std::string out = temp_dir() + "/corrupt";
  TrainConfig c = run_config(out);
  c.max_steps = 2;
  c.eval_every = 0;
  c.save_steps = 2;
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  const std::string dir = out + "/checkpoint-2";
  EXPECT_NO_THROW(verify_checkpoint(dir));
  const std::string weights = read_file(dir + "/model.safetensors"), optimizer = read_file(dir + "/optimizer.pt");
  std::string flipped = weights;
  flipped[flipped.size() / 2] ^= 0x10;
  write_file_atomic(dir + "/model.safetensors", flipped);
  c.max_steps = 3;
  RunOptions r;
  r.resume = "auto";
  std::string msg = error_of([&] { run_grpo(c, r); });
  EXPECT_NE(msg.find(dir + "/model.safetensors: checksum "), std::string::npos) << msg;
  EXPECT_NE(msg.find("the file is corrupted"), std::string::npos) << msg;
  write_file_atomic(dir + "/model.safetensors", weights);
  write_file_atomic(dir + "/optimizer.pt", optimizer.substr(0, optimizer.size() - 100));
  msg = error_of([&] { run_grpo(c, r); });
  EXPECT_NE(msg.find(dir + "/optimizer.pt: checksum "), std::string::npos) << msg;
  write_file_atomic(dir + "/optimizer.pt", optimizer);
  EXPECT_EQ(run_grpo(c, r), 0);  // restored: resumes
}

TEST(Trainer, ResumeRefusesOtherRunDefiningSettings) {
  const std::string out = temp_dir() + "/other_settings";
  TrainConfig c = run_config(out);
  c.max_steps = 2;
  c.eval_every = 0;
  c.save_steps = 2;
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  const std::string config_before = read_file(out + "/config.yaml");
  TrainConfig d = c;
  d.seed = 7;  // max_steps may change: the run goes on longer
  d.group_size = 2;
  d.max_steps = 3;
  RunOptions r;
  r.resume = "auto";
  std::string msg = error_of([&] { run_grpo(d, r); });
  EXPECT_NE(
      msg.find(
          "these settings differ from the run the checkpoint belongs to (checkpoint -> now):\n  seed: 42 -> 7\n  group_size: 4 -> 2\n"),
      std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("max_steps"), std::string::npos) << msg;
  EXPECT_EQ(read_file(out + "/config.yaml"), config_before);  // refused before anything was written
  TrainConfig e = c;
  e.max_steps = 3;
  EXPECT_EQ(run_grpo(e, r), 0);  // only a free setting changed
  d.max_steps = 4;
  r.allow_config_change = true;
  EXPECT_EQ(run_grpo(d, r), 0);
}

TEST(Trainer, CrashDuringCheckpointKeepsThePreviousOne) {
  const std::string out = temp_dir() + "/run";
  TrainConfig c = run_config(out);
  RunOptions first;
  first.stop_after = 2;
  ASSERT_EQ(run_grpo(c, first), 0);
  const std::string good = read_file(out + "/checkpoint-2/model.safetensors");
  // grpo_train resumes in a fresh process and is killed (abort) in the middle of writing checkpoint-4.
  int status =
      run_process({GRPO_TRAIN_EXE, c.model_path, "-c", out + "/config.yaml", "--resume", "auto"}, {"GRPO_FAILPOINT=checkpoint_write"});
  ASSERT_TRUE(WIFSIGNALED(status)) << "the failpoint should have killed the child";
  EXPECT_FALSE(dir_exists(out + "/checkpoint-4"));
  EXPECT_EQ(find_latest_checkpoint(out), out + "/checkpoint-2");
  EXPECT_TRUE(read_file(out + "/checkpoint-2/model.safetensors") == good);
  EXPECT_NO_THROW(load_causal_lm(out + "/checkpoint-2", torch::kFloat32, torch::kCPU));
  // And the run can still be resumed from it (the half-written directory is cleaned up).
  RunOptions r;
  r.resume = "auto";
  EXPECT_EQ(run_grpo(c, r), 0);
  EXPECT_TRUE(file_exists(out + "/checkpoint-4/trainer_state.json"));
  expect_no_half_written_checkpoint(out);
  // The killed invocation had logged steps 3 and 4 before dying; the resume redid them: once each.
  expect_each_step_logged_once(out, 4);
}

TEST(Trainer, WallTimeCoversEveryInvocation) {
  // summary.json's wall_s adds the time recorded in the checkpoint to this invocation's: set to
  // 1000 s in checkpoint-2's trainer_state.json, the resumed run's summary says 1000 s and more.
  const std::string out = temp_dir() + "/wall";
  const TrainConfig c = stopped_after_two_steps(out);
  const std::string state_path = out + "/checkpoint-2/trainer_state.json";
  json state = json::parse(read_file(state_path));
  const double first_wall = state.at("wall_s").get<double>();
  EXPECT_GT(first_wall, 0.0);
  state["wall_s"] = 1000.0;
  write_file_atomic(state_path, state.dump(2));
  RunOptions r;
  r.resume = "auto";
  ASSERT_EQ(run_grpo(c, r), 0);
  const double wall = json::parse(read_file(out + "/summary.json")).at("wall_s").get<double>();
  EXPECT_GT(wall, 1000.0);
  EXPECT_LT(wall, 1000.0 + 120.0);
  EXPECT_GT(json::parse(read_file(out + "/checkpoint-4/trainer_state.json")).at("wall_s").get<double>(), 1000.0);
}

TEST(Trainer, WallTimeCoversTheFinalEvaluation) {
  // The report splits wall_s into rollouts, updates and evaluations: it must include the evaluation
  // after training (read before it, the parts summed to 108% of the demo's wall time). One step and
  // a large evaluation, so that the final evaluation outweighs loading and saving.
  TrainConfig c = run_config(temp_dir() + "/wall_eval");
  c.max_steps = 1;
  c.eval_every = 0;
  c.save_steps = 0;
  c.eval_limit = 8;
  c.eval_samples = 32;
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  const json summary = json::parse(read_file(c.output_dir + "/summary.json"));
  const json step = read_jsonl(c.output_dir + "/metrics.jsonl").at(0);
  const double phases = summary["before"]["seconds"].get<double>() + summary["after"]["seconds"].get<double>() +
                        step["time_rollout_s"].get<double>() + step["time_update_s"].get<double>();
  EXPECT_GE(summary["wall_s"].get<double>(), phases);
}

TEST(Trainer, FileSizeLimitWhileSavingKeepsTheLastCheckpoint) {
  // A disk that fills up, simulated by a file-size limit (ulimit -f, RLIMIT_FSIZE) smaller than
  // model.safetensors in the child that resumes and saves checkpoint-4: one clear error naming the
  // file and the intact checkpoint, exit 1, no half-written directory, and the run resumable.
  const std::string out = temp_dir() + "/full";
  const TrainConfig c = stopped_after_two_steps(out);
  const std::string good = read_file(out + "/checkpoint-2/model.safetensors");
  ASSERT_GT(good.size(), 400u << 10);
  const std::string log = out + "/child.log";
  const std::string cmd =
      "ulimit -f 200; exec " + std::string(GRPO_TRAIN_EXE) + " " + c.model_path + " -c " + out + "/config.yaml --resume auto";
  int status = run_process({"/bin/bash", "-c", cmd}, {}, log);
  const std::string said = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << said;
  EXPECT_EQ(WEXITSTATUS(status), 1) << said;
  EXPECT_NE(said.find("grpo_train: error: saving " + out + "/checkpoint-4 failed: "), std::string::npos) << said;
  EXPECT_NE(said.find("model.safetensors: write failed (File too large); the last complete checkpoint, " + out +
                      "/checkpoint-2, is intact: free space, then --resume auto"),
            std::string::npos)
      << said;
  EXPECT_FALSE(fs::exists(out + "/checkpoint-4"));
  expect_no_half_written_checkpoint(out);
  EXPECT_TRUE(read_file(out + "/checkpoint-2/model.safetensors") == good);
  RunOptions r;
  r.resume = "auto";
  EXPECT_EQ(run_grpo(c, r), 0);
  EXPECT_TRUE(file_exists(out + "/checkpoint-4/trainer_state.json"));
}

TEST(Trainer, OutOfMemoryInAStepSaysWhatToLower) {
  // CUDA running out of memory in the middle of a step (a failpoint throws LibTorch's own
  // OutOfMemoryError in the update, so the path is exercised on the CPU too): one message with the
  // settings to lower, exit 1, no checkpoint of the failed step, the last one intact.
  const std::string out = temp_dir() + "/oom";
  const TrainConfig c = stopped_after_two_steps(out);
  const std::string log = out + "/child.log";
  int status =
      run_process({GRPO_TRAIN_EXE, c.model_path, "-c", out + "/config.yaml", "--resume", "auto"}, {"GRPO_FAILPOINT=oom_update"}, log);
  const std::string said = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << said;
  EXPECT_EQ(WEXITSTATUS(status), 1) << said;
  EXPECT_NE(said.find("grpo_train: error: out of memory in the update of step 3 (CUDA out of memory. Tried to allocate 2.00 GiB "
                      "(failpoint)); raise grad_accum (now 2: micro-batches of 4 sequences), lower max_new_tokens (now 8), or set "
                      "gradient_checkpointing: true; "
                      "the last complete checkpoint, " +
                      out + "/checkpoint-2, is intact"),
            std::string::npos)
      << said;
  EXPECT_EQ(said.find("Exception raised from"), std::string::npos) << said;  // no LibTorch trace
  EXPECT_EQ(find_latest_checkpoint(out), out + "/checkpoint-2");
  expect_no_half_written_checkpoint(out);
}

TEST(Trainer, AFailingRewardIsCountedAndTheRunGoesOn) {
  // The reward program answers null for the first completion of every batch (its code threw on it):
  // each step counts 1 error in reward/errors, that completion scores 0, the run completes.
  const std::string out = temp_dir() + "/reward_errors";
  TrainConfig c = run_config(out);
  c.max_steps = 2;
  c.eval_every = 0;
  const std::string prog = write_temp("null_first.sh", R"(while IFS= read -r line; do
  n=$(printf '%s' "$line" | grep -o '"golds":\[[^]]*\]' | tr -cd ',' | wc -c)
  r="null"; i=0; while [ $i -lt $n ]; do r="$r, 1"; i=$((i+1)); done
  echo "{\"rewards\": {\"judge\": [$r]}}"
done
)");
  c.reward_command = {"/bin/sh", prog};
  ASSERT_EQ(run_grpo(c, RunOptions{}), 0);
  auto m = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u);
  for (const auto& line : m) {
    EXPECT_EQ(line.at("reward/errors"), 1.0);
    EXPECT_NEAR(line.at("reward/judge").get<double>(), 7.0 / 8.0, 1e-6);  // 7 of the 8 completions scored 1
  }
}

TEST(Trainer, NothingWrittenWhenAnInputFailsBeforeTraining) {
  // A model whose weights cannot be read, and a tokenizer with ids beyond the model's vocab_size:
  // each refused with the file named, and output_dir never created.
  TrainConfig c = run_config(temp_dir() + "/never");
  const std::string bad = temp_dir() + "/bad_model";
  fs::create_directories(bad);
  for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"}) fs::copy_file(c.model_path + "/" + f, bad + "/" + f);
  write_file_atomic(bad + "/model.safetensors", "not a safetensors file");
  c.model_path = bad;
  EXPECT_NE(error_of([&] { run_grpo(c, RunOptions{}); }).find(bad + "/model.safetensors"), std::string::npos);
  EXPECT_FALSE(fs::exists(c.output_dir));
  json config = json::parse(read_file(tiny_test_model_dir() + "/config.json"));
  config["vocab_size"] = 100;  // the test tokenizer's ids go up to 258
  write_file_atomic(bad + "/config.json", config.dump());
  std::string msg = error_of([&] { run_grpo(c, RunOptions{}); });
  EXPECT_NE(msg.find(bad + ": the tokenizer's largest id is 258 but config.json's vocab_size is 100"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(c.output_dir));
  c.model_path = tiny_test_model_dir() + "/config.json";
  EXPECT_NE(error_of([&] { run_grpo(c, RunOptions{}); }).find("config.json: is a file; expected a model directory"), std::string::npos);
}

TEST(Trainer, CheckpointRoundTripAndBadInputs) {
  const std::string out = temp_dir() + "/run";
  TrainConfig c = run_config(out);
  auto model = load_causal_lm(c.model_path, torch::kBFloat16, torch::kCPU);
  GrpoState st(c, model, 10);
  st.step = 3;
  std::string dir = save_checkpoint(st, out, c.model_path, TrainerState{});
  auto back = load_causal_lm(dir, torch::kBFloat16, torch::kCPU);
  auto pa = st.policy->named_parameters(), pb = back->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  EXPECT_TRUE(file_exists(dir + "/master.safetensors"));  // bf16 model: exact fp32 weights kept
  GrpoState st2(c, load_causal_lm(dir, torch::kBFloat16, torch::kCPU), 10);
  load_checkpoint_state(st2, dir);
  EXPECT_EQ(st2.step, 3);
  for (size_t i = 0; i < st.master.size(); ++i) EXPECT_TRUE(torch::equal(st.master[i], st2.master[i]));
  // A fresh run refuses an output_dir that holds checkpoints (nothing is overwritten).
  auto err = [&](const TrainConfig& cfg, const RunOptions& o) {
    try {
      run_grpo(cfg, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(c, RunOptions{}).find("already holds"), std::string::npos);
  // Resume from a checkpoint of another model shape.
  std::string other = temp_dir() + "/other";
  write_test_model(other, test_presets()[2]);
  fs::copy_file(dir + "/trainer_state.json", other + "/trainer_state.json");
  RunOptions r;
  r.resume = other;
  EXPECT_NE(err(c, r).find("is a different model shape"), std::string::npos) << err(c, r);
  TrainConfig bad = c;
  bad.train_data = "/nonexistent/train.jsonl";
  EXPECT_NE(err(bad, RunOptions{}).find("config key 'train_data' (default): '/nonexistent/train.jsonl': no such file"), std::string::npos);
}
