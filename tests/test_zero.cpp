// Tests for zero.h in one process: the sharded AdamW's arithmetic against LibTorch's own AdamW and
// clip_grad_norm_ (the referee), its fp32 masters under bf16 weights, and the checkpoint shards'
// errors. The ranks themselves (2 and 4, both stages, resume at other world sizes) are in
// test_distributed.cpp.
#include <gtest/gtest.h>

#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/engine/zero.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;

namespace {

std::vector<torch::Tensor> make_params(torch::Dtype dtype) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> ps;
  for (auto shape : {std::vector<int64_t>{5, 7}, std::vector<int64_t>{11}, std::vector<int64_t>{3, 2, 4}})
    ps.push_back(torch::randn(shape).to(dtype).set_requires_grad(true));
  return ps;
}

// Five steps of the same gradients (seeded) through ShardedAdamW and through torch's AdamW with
// clip_grad_norm_, at varying lr; max_norm clips some steps and not others.
void expect_matches_torch(int stage, torch::Dtype dtype) {
  const AdamWSettings s{0.9, 0.95, 1e-8, 0.1};
  auto mine = make_params(dtype);
  std::vector<torch::Tensor> ref;
  for (auto& p : mine) ref.push_back(p.detach().to(torch::kFloat32).clone().set_requires_grad(true));
  ShardedAdamW zero(mine, {"a", "b", "c"}, s, std::make_shared<Dist>(), stage);
  torch::optim::AdamW adam(ref, torch::optim::AdamWOptions(1e-2).betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(s.weight_decay));
  for (int step = 0; step < 5; ++step) {
    const double lr = 1e-2 * (step + 1), max_norm = step % 2 ? 100.0 : 1.0;
    torch::manual_seed(100 + step);
    for (size_t i = 0; i < ref.size(); ++i) {
      auto g = torch::randn(ref[i].sizes()) * (step + 1);
      ref[i].mutable_grad() = g.clone();
      // Two micro-batches' worth, in the model's dtype, accumulated in fp32 as the trainer does.
      mine[i].mutable_grad() = (g * 0.25).to(dtype);
    }
    zero.accumulate();
    for (size_t i = 0; i < ref.size(); ++i)
      mine[i].mutable_grad() = (ref[i].grad() - (ref[i].grad() * 0.25).to(dtype).to(torch::kFloat32)).to(dtype);
    zero.accumulate();
    const double want_norm = torch::nn::utils::clip_grad_norm_(ref, max_norm);
    for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    adam.step();
    ShardedAdamW::Outcome o = zero.step(lr, max_norm);
    ASSERT_TRUE(o.applied);
    if (dtype == torch::kFloat32) {
      EXPECT_NEAR(o.grad_norm, want_norm, 1e-5 * want_norm) << "step " << step;
    }
  }
  const double tol = dtype == torch::kFloat32 ? 1e-6 : 1e-2;  // bf16: the sum of two bf16 halves is not the fp32 gradient
  for (size_t i = 0; i < ref.size(); ++i) {
    auto got = mine[i].detach().to(torch::kFloat32);
    EXPECT_LE((got - ref[i].detach()).abs().max().item<double>(), tol * ref[i].detach().abs().max().item<double>()) << "tensor " << i;
  }
  // The fp32 masters hold the exact update; the model gets them rounded to its dtype.
  EXPECT_TRUE(torch::equal(zero.state().master.narrow(0, 0, 35).view({5, 7}).to(dtype), mine[0].detach()));
  EXPECT_EQ(zero.state().step, 5);
  EXPECT_EQ(zero.state_bytes(), 12 * (35 + 11 + 24));
}

}  // namespace

TEST(Zero, LayoutSplitsTheFlatVectorEvenly) {
  FlatLayout L({torch::zeros({5, 7}), torch::zeros({11}), torch::zeros({3, 2, 4})}, 4);
  EXPECT_EQ(L.total, 70);
  EXPECT_EQ(L.shard, 18);
  EXPECT_EQ(L.offsets, (std::vector<int64_t>{0, 35, 46}));
  EXPECT_EQ(std::make_pair(L.lo(0), L.hi(0)), std::make_pair(int64_t(0), int64_t(18)));
  EXPECT_EQ(std::make_pair(L.lo(3), L.hi(3)), std::make_pair(int64_t(54), int64_t(70)));  // the last share is shorter
  FlatLayout tiny({torch::zeros({2})}, 4);  // more ranks than values: the last ranks own nothing
  EXPECT_EQ(tiny.lo(3), tiny.hi(3));
}

TEST(Zero, Stage1EqualsTorchAdamWWithClipping) {
  expect_matches_torch(1, torch::kFloat32);
}

TEST(Zero, Stage2EqualsTorchAdamWWithClipping) {
  expect_matches_torch(2, torch::kFloat32);
}

TEST(Zero, Bf16WeightsKeepFp32Masters) {
  expect_matches_torch(1, torch::kBFloat16);
}

TEST(Zero, NonFiniteGradientIsNotApplied) {
  auto ps = make_params(torch::kFloat32);
  auto before = ps[1].detach().clone();
  ShardedAdamW zero(ps, {"a", "b", "c"}, AdamWSettings{}, std::make_shared<Dist>(), 1);
  for (auto& p : ps) p.mutable_grad() = torch::ones_like(p);
  ps[1].mutable_grad()[0] = NAN;
  zero.accumulate();
  ShardedAdamW::Outcome o = zero.step(1e-2, 1.0);
  EXPECT_FALSE(o.applied);
  EXPECT_TRUE(std::isnan(o.grad_norm));
  EXPECT_TRUE(torch::equal(ps[1].detach(), before));
  EXPECT_EQ(zero.state().step, 0);
}

// A sharded checkpoint's optimizer/: a shard missing, changed or from another run's tensors is an
// error naming the file before anything is loaded into the run.
TEST(Zero, ShardProblemsAreNamedErrors) {
  auto ps = make_params(torch::kFloat32);
  const std::vector<std::string> names = {"a", "b", "c"};
  ShardedAdamW zero(ps, names, AdamWSettings{}, std::make_shared<Dist>(), 2);
  zero.state().exp_avg.fill_(0.5);
  zero.state().step = 7;
  const std::string dir = grpo::test::temp_dir();
  const std::string sum = save_optimizer_shard(zero, dir + "/optimizer", 0);
  save_optimizer_index(zero, dir, {sum});
  ASSERT_TRUE(has_sharded_optimizer(dir));
  const std::vector<int64_t> numels = {35, 11, 24};
  FlatState part = load_optimizer_range(dir, names, numels, 30, 50);  // any range, as another world size would cut it
  EXPECT_EQ(part.step, 7);
  EXPECT_TRUE(torch::equal(part.master, zero.state().master.narrow(0, 30, 20).cpu()));
  EXPECT_EQ(part.exp_avg.sum().item<double>(), 10.0);
  // Another run's tensors.
  EXPECT_NE(error_of([&] {
              load_optimizer_range(dir, {"a", "b", "x"}, numels, 0, 70);
            }).find("optimizer/index.json: the optimizer state is of other tensors than this run trains"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_optimizer_range(dir, names, {35, 11, 25}, 0, 70); }).find("of other tensors"), std::string::npos);
  // Truncated (or any changed byte): its checksum.
  const std::string shard = dir + "/optimizer/shard-0-of-1.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 8);
  EXPECT_NE(error_of([&] { load_optimizer_range(dir, names, numels, 0, 70); }).find(shard + ": checksum "), std::string::npos);
  // Missing.
  std::filesystem::remove(shard);
  EXPECT_EQ(error_of([&] { load_optimizer_range(dir, names, numels, 0, 70); }),
            shard + ": missing (optimizer/index.json lists it); the checkpoint is incomplete");
}
