// test_distributed.cpp: data parallelism (distributed.h). First the collectives between ranks that
// are threads of this process (gloo on loopback); then grpo_train itself as 2 processes against 1
// process with the same total batch: the same metrics.jsonl and final weights, a killed rank that
// ends the other with a message naming it, and a world-size-2 checkpoint resumed by 1 process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "grpo/base/safetensors.h"
#include "grpo/engine/distributed.h"
#include "grpo/run/checkpoint.h"
#include "grpo/run/evaluation.h"
#include "grpo/run/run.h"
#include "grpo/step/grpo_step.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;

namespace {

// A TCP port nobody listens on now (the kernel's pick for port 0).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("free_port: bind failed");
  ::close(fd);
  return ntohs(a.sin_port);
}

// fn(dist) on W ranks, each a thread of this process; returns each rank's error ("" if none).
std::vector<std::string> on_ranks(int W, const std::function<void(Dist&)>& fn) {
  const int port = free_port();
  std::vector<std::string> errors(W);
  std::vector<std::thread> threads;
  for (int r = 0; r < W; ++r)
    threads.emplace_back([&, r] {
      try {
        DistEnv e;
        e.launched = true;
        e.rank = r;
        e.world_size = W;
        e.master_port = port;
        e.run_id = "test/";
        auto d = Dist::connect(e, DistBackend::Gloo, torch::kCPU, 60);
        fn(*d);
        d->barrier();
      } catch (const std::exception& ex) {
        errors[r] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

void expect_no_errors(const std::vector<std::string>& errors) {
  for (size_t r = 0; r < errors.size(); ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The environment

TEST(DistEnv, NoVariablesIsOneProcess) {
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  DistEnv e = read_dist_env();
  EXPECT_FALSE(e.launched);
  EXPECT_EQ(e.world_size, 1);
}

TEST(DistEnv, ReadsTorchrunVariablesAndNamesABadOne) {
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  DistEnv e = read_dist_env();
  EXPECT_TRUE(e.launched);
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29511);
  ::setenv("RANK", "4", 1);
  EXPECT_EQ(error_of([] { read_dist_env(); }), "environment variable RANK: expected an integer in [0, 3], found '4'");
  ::unsetenv("WORLD_SIZE");
  EXPECT_NE(error_of([] { read_dist_env(); }).find("RANK is set but WORLD_SIZE is not"), std::string::npos);
  for (const char* v : {"RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
}

TEST(DistEnv, AutoBackendFollowsTheDevice) {
  EXPECT_EQ(resolve_backend(DistBackend::Auto, torch::kCPU), DistBackend::Gloo);
  EXPECT_EQ(resolve_backend(DistBackend::Gloo, torch::Device(torch::kCUDA, 0)), DistBackend::Gloo);
  if (nccl_available()) {
    EXPECT_EQ(resolve_backend(DistBackend::Auto, torch::Device(torch::kCUDA, 1)), DistBackend::Nccl);
    EXPECT_EQ(error_of([] { resolve_backend(DistBackend::Nccl, torch::kCPU); }),
              "config key 'dist_backend': nccl needs a CUDA device, and this run's device is cpu; use gloo");
  } else {
    EXPECT_NE(error_of([] { resolve_backend(DistBackend::Auto, torch::Device(torch::kCUDA, 1)); }).find("this build has no NCCL"),
              std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Collectives (2 ranks, threads)

TEST(Dist, OneProcessCollectivesAreTheIdentity) {
  Dist d;
  EXPECT_FALSE(d.active());
  EXPECT_EQ(d.all_reduce(2.5), 2.5);
  auto x = torch::arange(6).view({2, 3});
  EXPECT_TRUE(torch::equal(d.all_gather(x), x));
  EXPECT_EQ(d.all_gather(std::string("abc")), std::vector<std::string>{"abc"});
}

TEST(Dist, AllReduceSumMaxMin) {
  expect_no_errors(on_ranks(2, [](Dist& d) {
    const double r = d.rank() + 1;  // 1 and 2
    EXPECT_EQ(d.all_reduce(std::vector<double>{r, 10 * r}), (std::vector<double>{3, 30}));
    EXPECT_EQ(d.all_reduce(std::vector<double>{r, -r}, Dist::Op::Max), (std::vector<double>{2, -1}));
    EXPECT_EQ(d.all_reduce(r, Dist::Op::Min), 1);
  }));
}

TEST(Dist, AllGatherInRankOrder) {
  expect_no_errors(on_ranks(2, [](Dist& d) {
    auto rows = d.all_gather(torch::full({2, 3}, float(d.rank())));  // (4, 3)
    ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{4, 3}));
    EXPECT_TRUE(torch::equal(rows.select(1, 0), torch::tensor({0.f, 0.f, 1.f, 1.f})));
    auto texts = d.all_gather(std::string(d.rank() == 0 ? "" : "rank one's longer text"));
    EXPECT_EQ(texts, (std::vector<std::string>{"", "rank one's longer text"}));
  }));
}

TEST(Dist, BroadcastGivesEveryRankRankZerosValues) {
  expect_no_errors(on_ranks(2, [](Dist& d) {
    auto w = torch::full({3}, float(7 + d.rank()));
    d.broadcast({w});
    EXPECT_TRUE(torch::equal(w, torch::full({3}, 7.f)));
  }));
}

// Buckets of at most 4 elements split the 3 + 5 + 2 gradients; a missing gradient counts as zeros.
TEST(Dist, AllReduceGradsSumsEveryBucket) {
  expect_no_errors(on_ranks(2, [](Dist& d) {
    std::vector<torch::Tensor> ps = {torch::zeros({3}), torch::zeros({5}), torch::zeros({2}, torch::kFloat64)};
    const float r = float(d.rank() + 1);
    ps[0].mutable_grad() = torch::full({3}, r);
    if (d.rank() == 1) ps[1].mutable_grad() = torch::full({5}, 2.f);
    ps[2].mutable_grad() = torch::full({2}, double(r) / 4);
    d.all_reduce_grads(ps, /*bucket_elems=*/4);
    EXPECT_TRUE(torch::equal(ps[0].grad(), torch::full({3}, 3.f)));
    EXPECT_TRUE(torch::equal(ps[1].grad(), torch::full({5}, 2.f)));
    EXPECT_TRUE(torch::equal(ps[2].grad(), torch::full({2}, 0.75, torch::kFloat64)));
  }));
}

TEST(Dist, CheckSameNamesTheParameterThatDiverged) {
  auto errors = on_ranks(2, [](Dist& d) {
    std::vector<torch::Tensor> ps = {torch::ones({4}), torch::ones({2}) + (d.rank() == 1 ? 1e-7f : 0.f)};
    std::vector<torch::Tensor> same = {ps[0]};
    d.check_same(same, {"a"}, "in the test");  // agrees
    d.check_same(ps, {"a", "model.b"}, "at step 3");
  });
  for (const auto& e : errors) EXPECT_NE(e.find("parameter checksum at step 3: rank 1's 'model.b'"), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------
// grpo_train as W processes

namespace {

const char* kTrain = GRPO_TRAIN_EXE;

// The demo task, made small: 4 prompts x 4 samples, 16 new tokens, 8 eval questions; on the CPU
// (gloo) even on a GPU host, whose ranks would otherwise share one GPU; without the demo's dynamic
// sampling, whose refills are per rank (the batch would depend on the world size).
std::vector<std::string> train_argv(const std::string& out, const std::vector<std::string>& sets) {
  std::vector<std::string> a = {kTrain, source_path("data/tiny-model"), "-c", source_path("configs/tiny_demo.yaml")};
  for (std::string s :
       {"train_data=" + source_path("data/tiny-math/train.jsonl"), "eval_data=" + source_path("data/tiny-math/test.jsonl"),
        std::string("prompts_per_step=4"), std::string("group_size=4"), std::string("eval_limit=8"), std::string("eval_samples=0"),
        std::string("save_steps=0"), std::string("log_samples_every=1"), std::string("warmup_steps=0"), std::string("dist_timeout_s=60"),
        std::string("device=cpu"), std::string("dynamic_sampling=false"), "output_dir=" + out}) {
    a.push_back("--set");
    a.push_back(s);
  }
  for (const auto& s : sets) {
    if (s.rfind("--", 0) == 0)
      a.push_back(s);
    else
      a.insert(a.end(), {"--set", s});
  }
  return a;
}

// torchrun's environment, OMP_NUM_THREADS=1 included (its default for several ranks a node): ranks
// that each took every core would spin on each other's cores (5x slower on a 2-core CI box).
std::vector<std::string> rank_env(int rank, int W, int port) {
  return {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(W),     "LOCAL_RANK=" + std::to_string(rank),
          "MASTER_ADDR=127.0.0.1",        "MASTER_PORT=" + std::to_string(port), "OMP_NUM_THREADS=1"};
}

// Runs W ranks (W = 0: one process without the variables) to the end; returns the logs (rank 0's first).
std::vector<std::string> run_ranks(int W, const std::string& out, const std::vector<std::string>& sets) {
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  const int port = free_port();
  for (int r = 0; r < std::max(W, 1); ++r) {
    logs.push_back(out + ".rank" + std::to_string(r) + ".log");
    pids.push_back(spawn_process(train_argv(out, sets), W > 0 ? rank_env(r, W, port) : std::vector<std::string>{}, logs.back()));
  }
  for (size_t r = 0; r < pids.size(); ++r) {
    const int status = wait_process(pids[r], 280);
    EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank " << r << ": " << read_file(logs[r]);
  }
  return logs;
}

std::vector<json> metrics_of(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(read_file(out + "/metrics.jsonl"));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(json::parse(l));
  return lines;
}

// Every metric but timings and memory within 1e-5 of max(|value|, 1): a loss of zero-mean
// advantages is a cancellation, exact only to the rounding of its O(1) terms.
void expect_same_metrics(const std::string& a, const std::string& b) {
  auto ma = metrics_of(a), mb = metrics_of(b);
  ASSERT_EQ(ma.size(), mb.size());
  ASSERT_FALSE(ma.empty());
  for (size_t i = 0; i < ma.size(); ++i) {
    for (const auto& [k, v] : ma[i].items()) {
      if (k.rfind("time_", 0) == 0 || k.find("_per_s") != std::string::npos || k == "peak_mem_mb" || k == "decode_new_shapes") continue;
      ASSERT_TRUE(mb[i].contains(k)) << k;
      if (v.is_null()) {
        EXPECT_TRUE(mb[i][k].is_null()) << k;
        continue;
      }
      const double x = v.get<double>(), y = mb[i][k].get<double>();
      EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(x))) << "step " << ma[i]["step"] << " " << k;
    }
  }
}

// Each tensor of the two checkpoints' model.safetensors within 1e-5 relative (Frobenius norm). Not
// elementwise: AdamW's first steps divide each gradient by its own magnitude, so a weight whose
// gradient is ~0 moves by the rounding noise of that gradient, ~1e-6 of the tensor's scale.
void expect_same_weights(const std::string& ckpt_a, const std::string& ckpt_b) {
  auto fa = SafetensorsFile::open(ckpt_a + "/model.safetensors"), fb = SafetensorsFile::open(ckpt_b + "/model.safetensors");
  ASSERT_EQ(fa->tensors().size(), fb->tensors().size());
  for (const auto& t : fa->tensors()) {
    const TensorInfo* u = fb->find(t.name);
    ASSERT_TRUE(u && u->dtype == DType::F32 && t.dtype == DType::F32) << t.name;
    auto x = torch::from_blob(const_cast<uint8_t*>(fa->data(t)), {t.numel()}, torch::kFloat32);
    auto y = torch::from_blob(const_cast<uint8_t*>(fb->data(*u)), {u->numel()}, torch::kFloat32);
    EXPECT_LE((x - y).norm().item<double>(), 1e-5 * x.norm().item<double>()) << t.name;
  }
}

}  // namespace

class DataParallel : public ::testing::TestWithParam<std::string> {};

// 1 process with 2 micro-batches = 2 ranks with 1 each: the same micro-batches, summed gradients.
TEST_P(DataParallel, TwoRanksEqualOneProcess) {
  const std::string dir = temp_dir();
  const std::vector<std::string> sets = {"max_steps=2", "loss_aggregation=" + GetParam(), "num_iterations=2", "beta=0.04"};
  auto one = sets, two = sets;
  one.push_back("grad_accum=2");
  two.push_back("grad_accum=1");
  run_ranks(0, dir + "/one", one);
  auto logs = run_ranks(2, dir + "/two", two);
  expect_same_metrics(dir + "/one", dir + "/two");
  expect_same_weights(dir + "/one/checkpoint-2", dir + "/two/checkpoint-2");
  // One voice: rank 1 wrote nothing and printed nothing but its (empty) stderr.
  EXPECT_EQ(read_file(logs[1]), "");
  EXPECT_NE(read_file(logs[0]).find("Data parallel: 2 ranks (gloo), 2 of the 4 prompts per step on each"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(LossTypes, DataParallel, ::testing::Values("dapo", "grpo"));

// A run checkpointed at world size 2 goes on at world size 1 as if it had been one process.
TEST(DataParallelResume, CheckpointOfTwoRanksResumesInOneProcess) {
  const std::string dir = temp_dir();
  run_ranks(2, dir + "/run", {"max_steps=4", "grad_accum=1", "--stop-after=2"});
  ASSERT_TRUE(file_exists(dir + "/run/checkpoint-2/trainer_state.json"));
  run_ranks(0, dir + "/run", {"max_steps=4", "grad_accum=2", "--resume=auto"});
  run_ranks(0, dir + "/ref", {"max_steps=4", "grad_accum=2"});
  expect_same_metrics(dir + "/ref", dir + "/run");
  expect_same_weights(dir + "/ref/checkpoint-4", dir + "/run/checkpoint-4");
}

// ---------------------------------------------------------------------------------------------
// ZeRO (zero.h): the optimizer state sharded over the ranks changes nothing but where it lives.

// Settings under which every part of the update matters: two passes (old log-probs, the clipped
// second pass), a KL term, and a max_grad_norm below every step's norm (~0.1-0.4), so each update
// is clipped by the global norm: a rank that clipped by its own share's norm would differ. The
// sampler correction is off: its extrema (the min over tokens of exp(trainer - sampler log-prob))
// measure the float noise of recomputing a log-prob, ~1e-5 after four steps on LibTorch 2.11,
// which says nothing of where the optimizer state lives.
const std::vector<std::string> kZeroSets = {"max_steps=4", "num_iterations=2", "beta=0.04", "max_grad_norm=0.05",
                                            "vllm_importance_sampling_correction=false"};

std::vector<std::string> with(std::vector<std::string> sets, const std::vector<std::string>& more) {
  sets.insert(sets.end(), more.begin(), more.end());
  return sets;
}

class Zero : public ::testing::TestWithParam<std::tuple<int, int>> {};

// W ranks sharding AdamW (stage 1) or it and the gradients (stage 2) = one process with W micro-batches.
TEST_P(Zero, ShardedRanksEqualOneProcess) {
  const auto [W, stage] = GetParam();
  const std::string dir = temp_dir(), z = "zero_stage=" + std::to_string(stage);
  run_ranks(0, dir + "/one", with(kZeroSets, {"grad_accum=" + std::to_string(W)}));
  auto logs = run_ranks(W, dir + "/many", with(kZeroSets, {"grad_accum=1", z}));
  expect_same_metrics(dir + "/one", dir + "/many");
  expect_same_weights(dir + "/one/checkpoint-4", dir + "/many/checkpoint-4");
  for (auto m : metrics_of(dir + "/one")) EXPECT_GT(m["grad_norm"].get<double>(), 0.05);  // every update clipped
  // The state per rank: 1/W of the 12 bytes a parameter (the tiny model: 821,760 parameters, 9.40 MiB).
  char line[160];
  std::snprintf(line, sizeof line, "ZeRO-%d: AdamW's fp32 masters and moments sharded over %d ranks: %.2f MiB on each (9.40 MiB whole)",
                stage, W, 12.0 * double((821760 + W - 1) / W) / (1024.0 * 1024.0));
  EXPECT_NE(read_file(logs[0]).find(line), std::string::npos) << read_file(logs[0]);
  // One shard a rank, each with its range; the index checks them.
  const std::string opt = dir + "/many/checkpoint-4/optimizer";
  for (int r = 0; r < W; ++r) EXPECT_TRUE(file_exists(opt + "/shard-" + std::to_string(r) + "-of-" + std::to_string(W) + ".safetensors"));
  EXPECT_FALSE(file_exists(dir + "/many/checkpoint-4/optimizer.pt"));
  EXPECT_NO_THROW(verify_checkpoint(dir + "/many/checkpoint-4"));
}

INSTANTIATE_TEST_SUITE_P(RanksAndStages, Zero,
                         ::testing::Values(std::make_tuple(2, 1), std::make_tuple(2, 2), std::make_tuple(4, 1), std::make_tuple(4, 2)));

// A zero_stage 2 checkpoint of 4 ranks goes on at 2 ranks (stage 2) and in 1 process (stage 0):
// the shards are re-cut on load, and both continuations equal the uninterrupted run.
TEST(ZeroResume, FourRankShardsResumeAtTwoRanksAndInOneProcess) {
  const std::string dir = temp_dir();
  run_ranks(4, dir + "/a", with(kZeroSets, {"grad_accum=1", "zero_stage=2", "--stop-after=2"}));
  ASSERT_TRUE(file_exists(dir + "/a/checkpoint-2/optimizer/shard-3-of-4.safetensors"));
  std::filesystem::copy(dir + "/a", dir + "/b", std::filesystem::copy_options::recursive);
  run_ranks(2, dir + "/a", with(kZeroSets, {"grad_accum=2", "zero_stage=2", "--resume=auto"}));
  run_ranks(0, dir + "/b", with(kZeroSets, {"grad_accum=4", "zero_stage=0", "--resume=auto"}));
  run_ranks(0, dir + "/ref", with(kZeroSets, {"grad_accum=4"}));
  for (const char* run : {"/a", "/b"}) {
    expect_same_metrics(dir + "/ref", dir + run);
    expect_same_weights(dir + "/ref/checkpoint-4", dir + run + "/checkpoint-4");
  }
  EXPECT_TRUE(file_exists(dir + "/a/checkpoint-4/optimizer/shard-1-of-2.safetensors"));
  EXPECT_TRUE(file_exists(dir + "/b/checkpoint-4/optimizer.pt"));
}

class DataParallelFaults : public ::testing::TestWithParam<int> {};

// Killing rank 1 mid-run ends rank 0 with an error that names it, well within dist_timeout_s;
// the checkpoints written so far stay loadable. With each zero_stage.
TEST_P(DataParallelFaults, AKilledRankEndsTheOtherWithItsName) {
  const std::string dir = temp_dir(), out = dir + "/run";
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn_process(train_argv(out, {"max_steps=1000", "save_steps=1", "save_total_limit=0", "dist_timeout_s=60",
                                                  "zero_stage=" + std::to_string(GetParam())}),
                                 rank_env(r, 2, port), out + ".rank" + std::to_string(r) + ".log"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!file_exists(out + "/checkpoint-2/trainer_state.json") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(file_exists(out + "/checkpoint-2/trainer_state.json")) << read_file(out + ".rank0.log");
  ::kill(pids[1], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  wait_process(pids[1]);
  const int status = wait_process(pids[0], 60);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rank 0 ended %.2f s after rank 1 was killed\n", waited);
  ASSERT_GE(status, 0) << "rank 0 still running 60 s after rank 1 was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  EXPECT_LT(waited, 30.0);
  const std::string log = read_file(out + ".rank0.log");
  EXPECT_NE(log.find("grpo_train: error: data-parallel"), std::string::npos) << log;
  EXPECT_NE(log.find("on rank 0 of 2: rank 1 stopped (no heartbeat"), std::string::npos) << log;
  const std::string last = find_latest_checkpoint(out);
  ASSERT_FALSE(last.empty());
  EXPECT_NO_THROW(verify_checkpoint(last));
}

INSTANTIATE_TEST_SUITE_P(ZeroStages, DataParallelFaults, ::testing::Values(0, 1, 2));
