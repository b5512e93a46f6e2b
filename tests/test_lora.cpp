// test_lora.cpp: LoRA adapters (lora.h): the formula on hand-computed numbers, a fresh adapter is
// the base model exactly, gradients reach A and B only, merged == unmerged, the packed rollout path
// == the training path, PEFT's files written and read back, bad adapter_config.json refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "grpo/step/grpo_state.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;

namespace {

CausalLM tiny_model() {
  return load_causal_lm(tiny_test_model_dir(), torch::kFloat32, torch::kCPU);
}

torch::Tensor some_ids() {
  return torch::tensor({{5, 17, 99, 3, 250, 41}, {7, 7, 300, 12, 0, 9}}, torch::kInt64);
}

// Every adapter's B drawn at random, so that the adapters change the output.
void randomize_b(CausalLM& m) {
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  for (auto& [name, p] : lora_parameters(m))
    if (name.back() == 'B') p.normal_(0, 0.05);
}

LoraConfig rank4() {
  LoraConfig c;
  c.rank = 4;
  c.alpha = 8;
  return c;
}

}  // namespace

// y = W x + b + (alpha / r) B A x with W = [1 2], b = 0.5, A = [1 1], B = [3], alpha / r = 2, x = [1 1]:
// 3 + 0.5 + 2 * 3 * 2 = 15.5; off, 3.5.
TEST(Lora, LinearFormulaOnHandNumbers) {
  Linear lin(2, 1, true, torch::TensorOptions().dtype(torch::kFloat32));
  torch::NoGradGuard ng;
  lin->weight.copy_(torch::tensor({{1.f, 2.f}}));
  lin->bias.copy_(torch::tensor({0.5f}));
  lin->lora_A = torch::tensor({{1.f, 1.f}});
  lin->lora_B = torch::tensor({{3.f}});
  lin->lora_scaling = 2;
  auto x = torch::tensor({{1.f, 1.f}});
  EXPECT_EQ(lin(x).item<float>(), 15.5f);
  lin->lora_on = false;
  EXPECT_EQ(lin(x).item<float>(), 3.5f);
}

TEST(Lora, FreshAdapterIsTheBaseModelExactly) {
  auto base = tiny_model(), m = tiny_model();
  add_lora(m, rank4(), 7);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(base->forward(some_ids()), m->forward(some_ids())));
  // 2 layers x 7 projections x (A, B)
  EXPECT_EQ(lora_parameters(m).size(), 28u);
  EXPECT_EQ(lora_parameters(m)[0].first, "model.layers.0.self_attn.q_proj.lora_A");
  EXPECT_EQ(lora_parameters(m)[0].second.sizes(), (std::vector<int64_t>{4, 64}));
  // A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform(a = sqrt 5); the same draw for the same seed.
  auto A = lora_parameters(m)[0].second;
  EXPECT_LE(A.abs().max().item<double>(), 1.0 / 8);
  EXPECT_GT(A.abs().max().item<double>(), 0.9 / 8);
  auto again = tiny_model();
  add_lora(again, rank4(), 7);
  EXPECT_TRUE(torch::equal(lora_parameters(again)[0].second, A));
  EXPECT_EQ(lora_param_count(m->cfg, rank4()), [&] {
    int64_t n = 0;
    for (auto& [name, p] : lora_parameters(m)) n += p.numel();
    return n;
  }());
}

TEST(Lora, GradientsReachOnlyAAndB) {
  auto m = tiny_model();
  add_lora(m, rank4(), 7);
  randomize_b(m);
  m->forward(some_ids()).pow(2).mean().backward();
  for (auto& item : m->named_parameters()) {
    if (is_lora_name(item.key())) {
      ASSERT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0) << item.key();
    } else {
      EXPECT_FALSE(item.value().requires_grad()) << item.key();
      EXPECT_FALSE(item.value().grad().defined()) << item.key();
    }
  }
}

TEST(Lora, AdaptersOffIsTheBaseAndMergedEqualsUnmerged) {
  auto base = tiny_model(), m = tiny_model();
  add_lora(m, rank4(), 7);
  randomize_b(m);
  torch::NoGradGuard ng;
  auto ids = some_ids();
  auto want = base->forward(ids), with = m->forward(ids);
  EXPECT_GT((with - want).abs().max().item<double>(), 1e-3);  // the adapters do something
  set_lora_enabled(m, false);
  EXPECT_TRUE(torch::equal(m->forward(ids), want));
  set_lora_enabled(m, true);
  merge_lora(m);
  EXPECT_FALSE(has_lora(m));
  for (auto& item : m->named_parameters()) EXPECT_FALSE(is_lora_name(item.key())) << item.key();
  auto merged = m->forward(ids);
  EXPECT_LE((merged - with).abs().max().item<double>(), 1e-5 * with.abs().max().item<double>());
}

// The rollout's packed q/k/v and gate/up GEMM (no autograd) adds each part's term like the training path.
TEST(Lora, PackedProjectionsAddTheSameTerms) {
  auto m = tiny_model();
  add_lora(m, rank4(), 7);
  randomize_b(m);
  ASSERT_TRUE(m->projections_packed());
  auto ids = some_ids();
  auto graph = m->forward(ids).detach();  // grad mode: per-projection path
  torch::NoGradGuard ng;
  auto packed = m->forward(ids);
  EXPECT_LE((packed - graph).abs().max().item<double>(), 1e-5 * graph.abs().max().item<double>());
}

TEST(Lora, PeftFilesRoundTrip) {
  auto m = tiny_model();
  LoraConfig c = rank4();
  c.targets = {"q_proj", "v_proj", "down_proj"};
  add_lora(m, c, 7);
  randomize_b(m);
  const std::string dir = temp_dir() + "/adapter";
  save_lora_adapter(m, dir, c, "/models/base");
  json cfg = json::parse(read_file(dir + "/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["target_modules"], json({"q_proj", "v_proj", "down_proj"}));
  EXPECT_EQ(cfg["base_model_name_or_path"], "/models/base");
  auto f = SafetensorsFile::open(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f->tensors().size(), 12u);  // 2 layers x 3 projections x (A, B)
  const TensorInfo* t = f->find("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(t->dtype, DType::F32);
  auto fresh = tiny_model();
  LoraConfig read = load_lora_adapter(fresh, dir);
  EXPECT_EQ(read.rank, 4);
  EXPECT_EQ(read.targets, (std::vector<std::string>{"down_proj", "q_proj", "v_proj"}));
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(fresh->forward(some_ids()), m->forward(some_ids())));
}

TEST(Lora, BadAdapterConfigIsRefusedNamingTheField) {
  auto m = tiny_model();
  add_lora(m, rank4(), 7);
  const std::string dir = temp_dir() + "/adapter";
  save_lora_adapter(m, dir, rank4(), "base");
  json cfg = json::parse(read_file(dir + "/adapter_config.json"));
  cfg["use_dora"] = true;
  write_file_atomic(dir + "/adapter_config.json", cfg.dump());
  EXPECT_EQ(error_of([&] { read_lora_config(dir); }),
            dir + "/adapter_config.json: field 'use_dora': true is not supported (expected false)");
  cfg["use_dora"] = false;
  cfg["r"] = 0;
  write_file_atomic(dir + "/adapter_config.json", cfg.dump());
  EXPECT_EQ(error_of([&] { read_lora_config(dir); }), dir + "/adapter_config.json: field 'r': expected an integer >= 1, found 0");
  cfg["r"] = 2;  // the tensors are rank 4
  write_file_atomic(dir + "/adapter_config.json", cfg.dump());
  auto fresh = tiny_model();
  EXPECT_NE(error_of([&] { load_lora_adapter(fresh, dir); }).find("has 256 values, the model's adapter needs 2 x 64"), std::string::npos);
}

// Gradient checkpointing over a frozen base: the layers are recomputed from an input made to need a
// gradient, and A and B get the gradients of the plain forward.
TEST(Lora, CheckpointedLayersGiveTheSameAdapterGradients) {
  std::vector<std::vector<torch::Tensor>> grads;
  for (bool checkpointing : {false, true}) {
    auto m = tiny_model();
    add_lora(m, rank4(), 7);
    randomize_b(m);
    m->gradient_checkpointing = checkpointing;
    m->forward(some_ids()).pow(2).mean().backward();
    grads.emplace_back();
    for (auto& [name, p] : lora_parameters(m)) grads.back().push_back(p.grad().clone());
  }
  for (size_t i = 0; i < grads[0].size(); ++i)
    EXPECT_LE((grads[0][i] - grads[1][i]).abs().max().item<double>(), 1e-6 * grads[0][i].abs().max().item<double>() + 1e-12) << i;
}

// A bf16 base (the GPU setting): the adapters stay fp32 with fp32 gradients, and a fresh adapter
// still leaves the bf16 logits bit for bit (the term is 0 in fp32, rounded back to the same bf16).
TEST(Lora, Bf16BaseKeepsFp32Adapters) {
  const std::string& dir = tiny_test_model_dir();
  auto base = load_causal_lm(dir, torch::kBFloat16, torch::kCPU), m = load_causal_lm(dir, torch::kBFloat16, torch::kCPU);
  add_lora(m, rank4(), 7);
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(base->forward(some_ids()), m->forward(some_ids())));
  }
  randomize_b(m);
  m->forward(some_ids()).to(torch::kFloat32).pow(2).mean().backward();
  for (auto& [name, p] : lora_parameters(m)) {
    EXPECT_EQ(p.scalar_type(), torch::kFloat32) << name;
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32) << name;
  }
}
