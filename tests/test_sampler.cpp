// Tests for sampler.h: batched greedy == one-at-a-time == fp64 golden; the sampling filters
// (chi-square against the expected distribution at a fixed seed); excluded ids never drawn;
// returned log-probs == a full forward pass; a sequence's samples do not depend on its neighbours.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <numeric>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/engine/sampler.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/model_io.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;

namespace {

CausalLM tiny_model(const char* name = "tiny", torch::Device device = torch::kCPU) {
  static std::map<std::string, std::string> dirs;
  if (!dirs.count(name)) {
    dirs[name] = temp_dir() + "/" + name;
    for (const auto& p : test_presets())
      if (std::string(p.name) == name) write_test_model(dirs[name], p);
  }
  return load_causal_lm(dirs[name], torch::kFloat32, device);
}

std::vector<int64_t> row(const torch::Tensor& t, int64_t n) {
  auto r = t[n].contiguous().to(torch::kCPU);
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

// Chi-square statistic of `counts` against probabilities `p` (ids with p == 0 must have count 0).
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t total) {
  double chi = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) chi += std::pow(counts[i] - total * p[i], 2) / (total * p[i]);
  return chi;
}

// Draw `M` ids from fixed logits with M independent sequence keys at step 0.
std::vector<int64_t> histogram(const std::vector<float>& logits, const SamplingParams& sp, int64_t M) {
  auto lg = torch::tensor(logits).unsqueeze(0).expand({M, (int64_t)logits.size()}).contiguous();
  std::vector<int64_t> keys(M);
  for (int64_t i = 0; i < M; ++i) keys[i] = static_cast<int64_t>(sequence_seed(sp.seed, 0, i));
  auto ids = draw_from(sampling_probs(lg, sp), counter_uniform(torch::tensor(keys, torch::kInt64), 0));
  std::vector<int64_t> counts(logits.size(), 0);
  auto acc = ids.accessor<int64_t, 1>();
  for (int64_t i = 0; i < M; ++i) counts[acc[i]]++;
  return counts;
}

const std::vector<double> kP = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
std::vector<float> log_p() {
  std::vector<float> l;
  for (double p : kP) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

class SamplerDevice : public OnDevice {};

}  // namespace

GRPO_INSTANTIATE_ON_DEVICES(SamplerDevice);

// ---------------------------------------------------------------------------------------------
// Greedy

TEST_P(SamplerDevice, BatchedGreedyEqualsSingleAndGolden) {
  json golden = json::parse(read_file(source_path("tests/data/golden_qwen2.json")));
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = tiny_model(name, device());
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& g : golden[name]) prompts.push_back(g["prompt"].get<std::vector<int32_t>>());  // lengths 8, 2, 13
    SamplingParams sp;
    sp.greedy = true;
    sp.max_new_tokens = 24;
    Rollout batched = generate(model, prompts, 1, sp);
    for (size_t b = 0; b < prompts.size(); ++b) {
      Rollout alone = generate(model, {prompts[b]}, 1, sp);
      EXPECT_EQ(row(batched.completion_ids, b), row(alone.completion_ids, 0)) << "prompt " << b;
      EXPECT_EQ(row(batched.completion_ids, b), golden[name][b]["greedy"].get<std::vector<int64_t>>()) << "prompt " << b;
    }
  }
}

TEST_P(SamplerDevice, StopIdsMasksAndFinishReasons) {
  auto model = tiny_model("tiny", device());
  json golden = json::parse(read_file(source_path("tests/data/golden_qwen2.json")));
  auto greedy = golden["tiny"][0]["greedy"].get<std::vector<int64_t>>();
  SamplingParams sp;
  sp.greedy = true;
  sp.max_new_tokens = 24;
  sp.stop_ids = {greedy[5]};  // 348: first occurs at index 5
  sp.pad_id = 0;
  sp.sync_every = 2;
  Rollout r = generate(model, {golden["tiny"][0]["prompt"].get<std::vector<int32_t>>(), {7, 8, 9}}, 1, sp);
  auto ids = row(r.completion_ids, 0), mask = row(r.completion_mask, 0);
  for (int t = 0; t < 24; ++t) {
    EXPECT_EQ(mask[t], t <= 5 ? 1 : 0) << t;         // the stop id itself is inside the mask
    EXPECT_EQ(ids[t], t <= 5 ? greedy[t] : 0) << t;  // pad afterwards
  }
  EXPECT_EQ(r.finish[0], FinishReason::Stop);
  auto mask1 = row(r.completion_mask, 1);
  EXPECT_EQ(r.decode_tokens, 6 + std::accumulate(mask1.begin(), mask1.end(), int64_t(0)));
}

TEST_P(SamplerDevice, ExcludedIdsAreNeverProduced) {
  auto model = tiny_model("tiny", device());
  SamplingParams sp;
  sp.max_new_tokens = 16;
  sp.n_allowed = 100;  // as if the tokenizer had 100 ids and the embedding 512
  sp.seed = 3;
  Rollout r = generate(model, {{1, 2, 3}, {4, 5}}, 8, sp);
  EXPECT_LT(r.completion_ids.max().item<int64_t>(), 100);
  sp.greedy = true;
  Rollout g = generate(model, {{1, 2, 3}}, 1, sp);
  EXPECT_LT(g.completion_ids.max().item<int64_t>(), 100);
}

// ---------------------------------------------------------------------------------------------
// Filters: hand values and chi-square (df = kept ids - 1; critical values at p = 0.001)

TEST(Sampler, FilterValuesByHand) {
  auto lg = torch::tensor(log_p()).unsqueeze(0);
  SamplingParams sp;
  sp.top_k = 2;
  auto p = sampling_probs(lg, sp)[0];
  EXPECT_NEAR(p[0].item<float>(), 0.4 / 0.65, 1e-6);
  EXPECT_NEAR(p[1].item<float>(), 0.25 / 0.65, 1e-6);
  EXPECT_EQ(p[2].item<float>(), 0.0f);
  sp = SamplingParams{};
  sp.top_p = 0.7;  // 0.4 + 0.25 = 0.65 < 0.7, so 0.15 joins; the rest goes
  p = sampling_probs(lg, sp)[0];
  EXPECT_NEAR(p[2].item<float>(), 0.15 / 0.8, 1e-6);
  EXPECT_EQ(p[3].item<float>(), 0.0f);
  sp = SamplingParams{};
  sp.min_p = 0.3;  // keep p >= 0.3 * 0.4 = 0.12
  p = sampling_probs(lg, sp)[0];
  EXPECT_NEAR(p[2].item<float>(), 0.15 / 0.8, 1e-6);
  EXPECT_EQ(p[3].item<float>(), 0.0f);
  sp = SamplingParams{};
  sp.temperature = 0.5;  // p^2 normalised
  p = sampling_probs(lg, sp)[0];
  double z = 0;
  for (double q : kP) z += q * q;
  EXPECT_NEAR(p[0].item<float>(), 0.16 / z, 1e-6);
  // Repetition penalty (HF): positive logits divided, negative multiplied, unseen untouched.
  auto pen =
      apply_repetition_penalty(torch::tensor({2.0f, -1.0f, 3.0f}).unsqueeze(0), torch::tensor({true, true, false}).unsqueeze(0), 2.0);
  EXPECT_TRUE(torch::equal(pen, torch::tensor({1.0f, -2.0f, 3.0f}).unsqueeze(0)));
}

TEST(Sampler, ChiSquareMatchesExpectedDistributions) {
  const int64_t M = 40000;
  struct Case {
    const char* name;
    SamplingParams sp;
    std::vector<double> expected;
    double critical;  // chi-square at p = 0.001 for df = kept - 1
  };
  std::vector<Case> cases;
  SamplingParams base;
  base.seed = 1234;
  cases.push_back({"plain", base, kP, 20.52});
  SamplingParams t = base;
  t.temperature = 0.5;
  double z = 0;
  for (double q : kP) z += q * q;
  std::vector<double> sq;
  for (double q : kP) sq.push_back(q * q / z);
  cases.push_back({"temperature 0.5", t, sq, 20.52});
  SamplingParams k = base;
  k.top_k = 3;
  cases.push_back({"top_k 3", k, {0.4 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0}, 13.82});
  SamplingParams pp = base;
  pp.top_p = 0.5;
  cases.push_back({"top_p 0.5", pp, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}, 10.83});
  SamplingParams mp = base;
  mp.min_p = 0.2;  // keep >= 0.08
  cases.push_back({"min_p 0.2", mp, {0.4 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0.1 / 0.9, 0, 0}, 16.27});
  for (const auto& c : cases) {
    auto counts = histogram(log_p(), c.sp, M);
    for (size_t i = 0; i < counts.size(); ++i)
      if (c.expected[i] == 0) {
        EXPECT_EQ(counts[i], 0) << c.name << ": excluded id " << i << " was drawn";
      }
    double chi = chi_square(counts, c.expected, M);
    EXPECT_LT(chi, c.critical) << c.name;
    // And the test can fail: the plain distribution is rejected against a wrong one.
    if (std::string(c.name) == "plain") {
      EXPECT_GT(chi_square(counts, sq, M), 100.0);
    }
  }
}

TEST_P(SamplerDevice, CounterUniformIsPinnedAndUniform) {
  auto keys = torch::arange(0, 100000, torch::TensorOptions().dtype(torch::kInt64).device(device())) * 7919 - 400000;  // negative keys too
  auto u = counter_uniform(keys, 5);
  EXPECT_GE(u.min().item<double>(), 0.0);
  EXPECT_LT(u.max().item<double>(), 1.0);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.005);
  EXPECT_NEAR(u.var().item<double>(), 1.0 / 12, 0.002);
  EXPECT_FALSE(torch::equal(counter_uniform(keys, 5), counter_uniform(keys, 6)));
  // Pinned: a pure function of (key, step) in integer arithmetic, identical on every device.
  EXPECT_DOUBLE_EQ(counter_uniform(torch::tensor({int64_t(42)}).to(device()), 0).item<double>(), 0.033200097512448679);
  // A negative key (bits above 2^63) hashes like its unsigned twin: value from a plain-integer model.
  EXPECT_DOUBLE_EQ(counter_uniform(torch::tensor({int64_t(-400000)}).to(device()), 5).item<double>(), 0.48136230312139716);
  // The rollout's table of every step is the same numbers, bit for bit.
  auto table = counter_uniform_table(keys.narrow(0, 0, 1000), 300);  // (1000, 300)
  ASSERT_EQ(table.sizes(), torch::IntArrayRef({1000, 300}));
  for (int64_t t : {0, 1, 5, 255, 299}) EXPECT_TRUE(torch::equal(table.select(1, t), counter_uniform(keys.narrow(0, 0, 1000), t)));
}

// The draws a training run makes: keys sequence_seed(seed + step, prompt, sample), uniforms per
// decode position. No correlation between neighbouring positions, samples of a group, prompts or
// training steps, and pairs (u, u') of neighbours uniform over the unit square: a serial defect
// would make a group's G completions, or a completion's tokens, less diverse than the policy.
TEST(Sampler, CounterUniformsAreIndependentAcrossPositionsSamplesPromptsAndSteps) {
  const int64_t S = 3, P = 2000, G = 8, T = 16;
  std::vector<int64_t> keys;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t g = 0; g < G; ++g)
        keys.push_back(static_cast<int64_t>(sequence_seed(42ull * 0x9E3779B97F4A7C15ull + uint64_t(s), uint64_t(p), g)));
  auto u = counter_uniform_table(torch::tensor(keys, torch::kInt64), T).view({S, P, G, T});  // (S, P, G, T)
  auto corr = [](torch::Tensor a, torch::Tensor b) {
    a = a.reshape(-1) - a.mean();
    b = b.reshape(-1) - b.mean();
    return ((a * b).mean() / (a.std(false) * b.std(false))).item<double>();
  };
  // 5 standard errors of a correlation over n pairs (n >= 630,000 here: 0.0063)
  auto bound = [](torch::Tensor a) { return 5.0 / std::sqrt(double(a.numel())); };
  for (int64_t d = 0; d < 4; ++d) {
    const int64_t n = u.size(d) - 1;
    auto a = u.narrow(d, 0, n), b = u.narrow(d, 1, n);
    EXPECT_LT(std::abs(corr(a, b)), bound(a)) << "dimension " << d << " (step, prompt, sample, position)";
    // (u, u') in 16 x 16 cells: chi-square, df 255, p = 0.001 critical value 330.5
    auto cell = (a.reshape(-1) * 16).floor().to(torch::kLong) * 16 + (b.reshape(-1) * 16).floor().to(torch::kLong);
    auto counts = torch::bincount(cell, {}, 256).to(torch::kDouble);
    const double e = double(cell.numel()) / 256;
    EXPECT_LT(((counts - e).pow(2) / e).sum().item<double>(), 330.5) << "dimension " << d;
  }
}

// ---------------------------------------------------------------------------------------------
// Log-probs and independence

TEST_P(SamplerDevice, LogprobsEqualFullForward) {
  auto model = tiny_model("odd", device());
  SamplingParams sp;
  sp.temperature = 0.7;
  sp.max_new_tokens = 12;
  sp.seed = 11;
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5}, {9, 8}};
  Rollout r = generate(model, prompts, 3, sp);
  torch::NoGradGuard ng;
  auto ids = torch::cat({r.prompt_ids, r.completion_ids}, 1);
  auto mask = torch::cat({r.prompt_mask, r.completion_mask}, 1);
  auto lp = torch::log_softmax(model->forward(ids, mask) / sp.temperature, -1);  // (N, T, V)
  const int64_t Tp = r.prompt_ids.size(1);
  auto next = ids.narrow(1, Tp, r.completion_ids.size(1)).unsqueeze(-1);
  auto recomputed = lp.narrow(1, Tp - 1, r.completion_ids.size(1)).gather(-1, next).squeeze(-1);
  auto diff = ((recomputed - r.logprobs) * r.completion_mask).abs().max().item<float>();
  EXPECT_LT(diff, 1e-4);
  EXPECT_GT(r.completion_mask.sum().item<int64_t>(), 0);
}

TEST_P(SamplerDevice, SamplesDoNotDependOnNeighbours) {
  auto model = tiny_model("tiny", device());
  SamplingParams sp;
  sp.max_new_tokens = 16;
  sp.seed = 99;
  std::vector<int32_t> p = {3, 1, 4, 1, 5};
  Rollout alone = generate(model, {p}, 4, sp, {77});
  Rollout crowd = generate(model, {{9, 9, 9, 9, 9, 9, 9, 9, 9}, p, {2}}, 4, sp, {5, 77, 6});
  for (int g = 0; g < 4; ++g) EXPECT_EQ(row(alone.completion_ids, g), row(crowd.completion_ids, 4 + g)) << g;
  // Different samples of one prompt differ (the group is not G copies).
  EXPECT_NE(row(alone.completion_ids, 0), row(alone.completion_ids, 1));
  // Same seed, same result; another seed, another result.
  EXPECT_TRUE(torch::equal(generate(model, {p}, 4, sp, {77}).completion_ids, alone.completion_ids));
  sp.seed = 100;
  EXPECT_FALSE(torch::equal(generate(model, {p}, 4, sp, {77}).completion_ids, alone.completion_ids));
  // The draws are integer hashes of (seed, step) on every device: a GPU samples what the CPU samples.
  if (!device().is_cpu()) {
    sp.seed = 99;
    auto cpu_model = tiny_model("tiny", torch::kCPU);
    EXPECT_TRUE(torch::equal(generate(cpu_model, {p}, 4, sp, {77}).completion_ids, alone.completion_ids.to(torch::kCPU)));
  }
}

// ---------------------------------------------------------------------------------------------
// Static-shape decoding (the CUDA-graph path) against the eager one

// Static decode attends over whole buckets of the cache with the new position as a device tensor;
// it must produce the eager decode's tokens and log-probs, across bucket boundaries (bucket 8) and
// row compaction (stop ids + sync_every 2). On CUDA the captured graph must too.
TEST_P(SamplerDevice, StaticAndGraphDecodeEqualEager) {
  std::vector<DecodeMode> modes = {DecodeMode::Static};
  if (device().is_cuda() && built_with_cuda()) modes.push_back(DecodeMode::CudaGraph);
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = tiny_model(name, device());
    for (bool greedy : {true, false}) {
      SamplingParams sp;
      sp.greedy = greedy;
      sp.max_new_tokens = 20;
      sp.seed = 21;
      sp.sync_every = 2;
      for (int64_t id = 0; id < 40; ++id) sp.stop_ids.push_back(id);  // rows finish early and are compacted
      sp.decode_bucket = 8;
      std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {11, 12}, {13, 14, 15, 16}};
      Rollout eager = generate(model, prompts, greedy ? 1 : 4, sp);
      for (DecodeMode mode : modes) {
        SCOPED_TRACE(int(mode));
        sp.decode = mode;
        Rollout r = generate(model, prompts, greedy ? 1 : 4, sp);
        EXPECT_TRUE(torch::equal(r.completion_ids, eager.completion_ids));
        EXPECT_TRUE(torch::equal(r.completion_mask, eager.completion_mask));
        EXPECT_LT((r.logprobs - eager.logprobs).abs().max().item<double>(), 1e-4);
        EXPECT_GE(r.decode_shapes, 3);  // buckets 16, 24 and 32 at least
        EXPECT_EQ(r.graph_captures, mode == DecodeMode::CudaGraph ? r.decode_shapes : 0);
        // Sampled rows stop early, so the batch is compacted on the way (in place, for static shapes).
        if (!greedy) {
          EXPECT_GE(r.compactions, 1);
        }
        sp.decode = DecodeMode::Eager;
      }
      if (!greedy) {
        EXPECT_GE(eager.compactions, 1);
      }
    }
  }
}

// A StaticDecodeState kept across calls (as the trainer keeps it across rollouts) sets each step shape
// up once: a repeated rollout meets no new shape (on CUDA: captures no graph) and still equals
// eager decoding. Shorter prompts after longer ones must not see the stale K/V the longer ones
// left in the buffers; more rows, or weights in new storage, make the buffers (and graphs) anew;
// weights changed in place are read at replay.
TEST_P(SamplerDevice, StaticDecoderIsReusedAcrossRollouts) {
  const DecodeMode mode = device().is_cuda() && built_with_cuda() ? DecodeMode::CudaGraph : DecodeMode::Static;
  auto model = tiny_model("odd", device());
  SamplingParams sp;
  sp.max_new_tokens = 18;
  sp.seed = 5;
  sp.sync_every = 2;
  for (int64_t id = 0; id < 30; ++id) sp.stop_ids.push_back(id);
  sp.decode_bucket = 8;
  auto dec = std::make_shared<StaticDecodeState>();
  auto expect_as_eager = [&](const std::vector<std::vector<int32_t>>& prompts, int64_t G) {
    SamplingParams e = sp;
    e.decode = DecodeMode::Eager;
    Rollout want = generate(model, prompts, G, e);
    SamplingParams s = sp;
    s.decode = mode;
    s.decoder = dec;
    Rollout got = generate(model, prompts, G, s);
    EXPECT_TRUE(torch::equal(got.completion_ids, want.completion_ids));
    EXPECT_TRUE(torch::equal(got.completion_mask, want.completion_mask));
    EXPECT_LT((got.logprobs - want.logprobs).abs().max().item<double>(), 1e-4);
    EXPECT_EQ(got.graph_captures, mode == DecodeMode::CudaGraph ? got.decode_shapes : 0);
    return got;
  };
  const std::vector<std::vector<int32_t>> long_prompts = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, {14, 15}};
  Rollout first = expect_as_eager(long_prompts, 4);
  EXPECT_GE(first.decode_shapes, 3);
  EXPECT_GE(first.compactions, 1);
  EXPECT_EQ(dec->rows, 8);
  EXPECT_EQ(dec->capacity, 32);  // 13 + 18 rounded up to the bucket
  Rollout again = expect_as_eager(long_prompts, 4);
  EXPECT_EQ(again.decode_shapes, 0);
  // Shorter prompts, same rows: the buffers are reused and positions 3.. hold the last call's K/V.
  expect_as_eager({{21, 22, 23}, {24}}, 4);
  EXPECT_EQ(dec->rows, 8);
  // Fewer rows fit too.
  expect_as_eager({{31, 32, 33, 34}}, 4);
  EXPECT_EQ(dec->rows, 8);
  // More rows: new buffers, new shapes.
  Rollout wider = expect_as_eager(long_prompts, 8);
  EXPECT_EQ(dec->rows, 16);
  EXPECT_GE(wider.decode_shapes, 3);
  // In-place weight change: same buffers and graphs, new outputs.
  {
    torch::NoGradGuard no_grad;
    for (auto& w : model->parameters()) w.mul_(1.5);
  }
  Rollout scaled = expect_as_eager(long_prompts, 8);
  EXPECT_EQ(scaled.decode_shapes, 0);
  EXPECT_FALSE(torch::equal(scaled.logprobs, wider.logprobs));
  // Weights in new storage: the graphs would read the old tensors, so everything is made anew.
  {
    torch::NoGradGuard no_grad;
    for (auto& w : model->parameters()) w.set_data(w.clone());
  }
  Rollout moved = expect_as_eager(long_prompts, 8);
  EXPECT_GE(moved.decode_shapes, 3);
}

TEST(Sampler, GraphDecodeNeedsCuda) {
  auto model = tiny_model();
  SamplingParams sp;
  sp.decode = DecodeMode::CudaGraph;
  EXPECT_NE(error_of([&] {
              generate(model, {{1, 2}}, 1, sp);
            }).find("decode_mode cuda_graph needs a CUDA build of grpo_train and a CUDA device (model is on cpu)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_decode_mode("graphs"); }).find("decode_mode: expected eager, static or cuda_graph, found 'graphs'"),
            std::string::npos);
}

TEST(Sampler, KvBudgetFailsBeforeStarting) {
  auto model = tiny_model();
  std::string msg;
  try {
    check_kv_budget(model->cfg, 64, 1024, torch::kFloat32, torch::kCPU, 1 << 20);
  } catch (const Error& e) {
    msg = e.what();
  }
  // 2 x 2 layers x 64 x 1024 x 2 KV heads x 16 x 4 B = 32 MiB
  EXPECT_NE(msg.find("rollout KV cache needs 32 MiB (64 sequences x 1024 positions x 2 layers x 2 x 2 KV heads x 16 x 4 B) but only 1 MiB"),
            std::string::npos)
      << msg;
}

// ---------------------------------------------------------------------------------------------
// Tool calls: answers forced through the decode step (sampler.h)

namespace {

// A rollout whose sequences "call a tool" whenever a turn wrote `call_end` before its stop id; the
// hook answers sequence n with ids that include a stop id (an answer's <|im_end|> must not end it).
struct ToolRun {
  Rollout r;
  std::vector<std::vector<int32_t>> turns;  // what the hook was given, in order
  std::vector<std::vector<int32_t>> answers;
};

ToolRun run_with_tools(CausalLM& model, SamplingParams sp, const std::vector<std::vector<int32_t>>& prompts, int64_t G) {
  ToolRun out;
  sp.tools.max_turns = 2;
  sp.tools.max_reply_ids = 6;
  sp.tools.run = [&](const std::vector<int64_t>& seqs, const std::vector<std::vector<int32_t>>& turns) {
    std::vector<std::vector<int32_t>> answers;
    for (size_t i = 0; i < seqs.size(); ++i) {
      std::vector<int32_t> a = {250, static_cast<int32_t>(sp.stop_ids[0]), 251};
      for (int64_t k = 0; k < seqs[i] % 3; ++k) a.push_back(static_cast<int32_t>(260 + k));
      answers.push_back(a);
      out.turns.push_back(turns[i]);
      out.answers.push_back(a);
    }
    return answers;
  };
  out.r = generate(model, prompts, G, sp);
  return out;
}

}  // namespace

TEST_P(SamplerDevice, ToolAnswersAreForcedThroughTheCache) {
  auto model = tiny_model("odd", device());
  SamplingParams sp;
  sp.temperature = 0.3;
  sp.max_new_tokens = 24;
  sp.seed = 4;
  sp.sync_every = 3;
  sp.decode_bucket = 8;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 8}, {40, 41, 42}};
  // The call-end id and the stop ids: the ids this model writes most often (at a low temperature a
  // random model repeats itself), so that calls are frequent.
  Rollout plain = generate(model, prompts, 4, sp);
  auto counts = torch::bincount(plain.completion_ids.flatten().to(torch::kCPU), {}, 300);
  counts[0] = 0;  // the pad id
  auto order = std::get<1>(counts.sort(0, /*descending=*/true));
  sp.tools.call_end_id = order[0].item<int64_t>();
  for (int64_t k = 1; k < 4; ++k) sp.stop_ids.push_back(order[k].item<int64_t>());
  ToolRun eager = run_with_tools(model, sp, prompts, 4);
  const Rollout& r = eager.r;
  const int64_t N = 12, Tc = r.completion_ids.size(1);
  ASSERT_EQ(Tc, 24 + 2 * (6 + 3));
  int64_t answered = 0, holes = 0;
  for (int64_t n = 0; n < N; ++n) answered += r.tool_turns[n];
  ASSERT_GE(answered, 4) << "too few calls to test anything";
  // Each answer sits right where the hook's turn ended (after holes at most sync_every - 1 long),
  // attended (completion_mask 1) and never trained (loss_mask 0), log-prob 0.
  auto ids = r.completion_ids.to(torch::kCPU), cm = r.completion_mask.to(torch::kCPU), lm = r.loss_mask.to(torch::kCPU);
  auto lps = r.logprobs.to(torch::kCPU);
  for (int64_t n = 0; n < N; ++n) {
    int64_t model_ids = 0;
    for (int64_t t = 0; t < Tc; ++t) {
      const bool attended = cm[n][t].item<int64_t>(), own = lm[n][t].item<int64_t>();
      model_ids += own;
      EXPECT_TRUE(attended || !own);
      if (attended && !own) {
        EXPECT_EQ(lps[n][t].item<float>(), 0.0f);
        EXPECT_TRUE(ids[n][t].item<int64_t>() == 250 || ids[n][t].item<int64_t>() == 251 || ids[n][t].item<int64_t>() >= 260 ||
                    ids[n][t].item<int64_t>() == sp.stop_ids[0]);
      }
      if (!attended && t > 0 && t + 1 < Tc && cm[n].narrow(0, t + 1, Tc - t - 1).sum().item<int64_t>() > 0) ++holes;
    }
    EXPECT_LE(model_ids, 24);  // max_new_tokens counts the model's ids only
    EXPECT_LE(r.tool_turns[n], 2);
  }
  EXPECT_GT(holes, 0) << "sync_every 3 should leave some sequence waiting";
  // What the hook saw: each turn ends with a stop id right after... the call-end id somewhere in it.
  for (const auto& turn : eager.turns) {
    ASSERT_FALSE(turn.empty());
    EXPECT_NE(std::find(sp.stop_ids.begin(), sp.stop_ids.end(), turn.back()), sp.stop_ids.end());
    EXPECT_NE(std::find(turn.begin(), turn.end(), sp.tools.call_end_id), turn.end());
  }
  // Exactness: the sampled log-probs of the model's ids (after tool answers too) equal one full
  // forward over the whole transcript, holes masked and skipped by the positions. In fp32 within
  // 1e-5 on the logits' scale (x T: the sampled distribution divides them by T = 0.3, and the
  // plain rollout's own rounding is 2e-5 at this T); a position off by one, or a hole attended,
  // is off by 0.1 or more.
  auto full_forward_error = [&](CausalLM& m, const Rollout& x) {
    torch::NoGradGuard ng;
    auto all = torch::cat({x.prompt_ids, x.completion_ids}, 1);
    auto mask = torch::cat({x.prompt_mask, x.completion_mask}, 1);
    auto lp = torch::log_softmax(m->forward(all, mask).to(torch::kFloat64) / sp.temperature, -1);  // (N, T, V)
    const int64_t Tp = x.prompt_ids.size(1);
    auto full = lp.narrow(1, Tp - 1, Tc).gather(-1, all.narrow(1, Tp, Tc).unsqueeze(-1)).squeeze(-1);
    return ((full - x.logprobs.to(torch::kFloat64)) * x.loss_mask).abs().max().item<double>();
  };
  EXPECT_LT(full_forward_error(model, r) * sp.temperature, 1e-5);
  // Every other decode schedule gives the same transcripts: no holes (a look every step), static
  // shapes across buckets with compaction, and on CUDA the captured graphs.
  std::vector<std::pair<DecodeMode, int64_t>> schedules = {{DecodeMode::Eager, 1}, {DecodeMode::Static, 3}, {DecodeMode::Static, 1}};
  if (device().is_cuda() && built_with_cuda()) schedules.push_back({DecodeMode::CudaGraph, 3});
  for (auto [mode, sync] : schedules) {
    SCOPED_TRACE(std::to_string(int(mode)) + " sync " + std::to_string(sync));
    SamplingParams other = sp;
    other.decode = mode;
    other.sync_every = sync;
    ToolRun o = run_with_tools(model, other, prompts, 4);
    // Same model ids and answers; only the holes move.
    auto own_ids = [](const Rollout& x, int64_t n) {
      std::vector<int64_t> v;
      auto i = x.completion_ids[n].to(torch::kCPU), m = x.completion_mask[n].to(torch::kCPU);
      for (int64_t t = 0; t < i.size(0); ++t)
        if (m[t].item<int64_t>()) v.push_back(i[t].item<int64_t>());
      return v;
    };
    for (int64_t n = 0; n < N; ++n) EXPECT_EQ(own_ids(o.r, n), own_ids(r, n)) << n;
    EXPECT_EQ(o.r.tool_turns, r.tool_turns);
    EXPECT_EQ(o.r.finish, r.finish);
    if (mode != DecodeMode::Eager && sync == 3) {
      EXPECT_TRUE(torch::equal(o.r.completion_mask, r.completion_mask));
      EXPECT_GE(o.r.compactions, 1);
    }
  }
}
