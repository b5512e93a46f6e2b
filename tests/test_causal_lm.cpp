// Tests for safetensors.h and qwen2.h: golden parity with an independent fp64 reference, KV-cache
// decoding, padding, save/load round trips, memory-lean bf16 loading and every corruption error.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/engine/sampler.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/model_io.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;

namespace {

std::string model_dir(const TestPreset& p) {
  static std::map<std::string, std::string> made;
  auto it = made.find(p.name);
  if (it != made.end()) return it->second;
  std::string dir = temp_dir() + "/" + p.name;
  write_test_model(dir, p);
  return made[p.name] = dir;
}

const TestPreset& preset(const char* name) {
  for (const auto& p : test_presets())
    if (std::string(p.name) == name) return p;
  throw std::runtime_error("no preset");
}

torch::Tensor ids_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kInt64).unsqueeze(0);
}

// Two sequences of 8 positions, the second left-padded by 2: ids and mask (2, 8) int64 on `device`.
std::pair<torch::Tensor, torch::Tensor> padded_batch(const torch::Device& device) {
  auto ids = torch::tensor({3, 17, 42, 99, 7, 250, 11, 64, 0, 0, 5, 8, 13, 21, 34, 55}, torch::kInt64).view({2, 8});
  auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 8});
  return {ids.to(device), mask.to(device)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parity with the fp64 reference (tests/data/golden_qwen2.json, made by scripts/make_golden.py)

class Qwen2Device : public OnDevice {};
GRPO_INSTANTIATE_ON_DEVICES(Qwen2Device);

TEST_P(Qwen2Device, GoldenGreedyAndLogprobs) {
  json golden = json::parse(read_file(source_path("tests/data/golden_qwen2.json")));
  for (const auto& p : test_presets()) {
    SCOPED_TRACE(p.name);
    auto model = load_causal_lm(model_dir(p), torch::kFloat32, device());
    for (const auto& g : golden[p.name]) {
      auto prompt = g["prompt"].get<std::vector<int32_t>>();
      SamplingParams sp;
      sp.greedy = true;
      sp.max_new_tokens = 24;
      Rollout r = generate(model, {prompt}, 1, sp);
      auto got = r.completion_ids[0].to(torch::kCPU);
      EXPECT_EQ(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 24), g["greedy"].get<std::vector<int64_t>>());
      std::vector<int64_t> all(prompt.begin(), prompt.end());
      for (int64_t t : g["greedy"]) all.push_back(t);
      torch::NoGradGuard ng;
      auto lp = torch::log_softmax(model->forward(ids_tensor(all).to(device())), -1)[0].to(torch::kCPU);  // (T, V)
      auto want = g["logprobs"].get<std::vector<double>>();
      double max_err = 0;
      for (size_t i = 0; i + 1 < all.size(); ++i) max_err = std::max(max_err, std::abs(lp[i][all[i + 1]].item<double>() - want[i]));
      EXPECT_LT(max_err, 1e-4);
    }
  }
}

// TinyStories-656K (real weights, Llama layout, tied embedding stored once as lm_head.weight with a
// __metadata__ alias): greedy continuation of BOS + "Once upon a time, there was a little" equals the
// independent fp64 reference (shared/reference/tools/qwen2_ref.py, run once).
TEST(Qwen2, TinyStoriesGreedyMatchesReference) {
  auto model = load_causal_lm(source_path("tests/data/tinystories-656k"), torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(model->cfg.tie_word_embeddings);
  EXPECT_FALSE(model->cfg.attention_bias);
  SamplingParams sp;
  sp.greedy = true;
  sp.max_new_tokens = 40;
  Rollout r = generate(model, {{1, 80, 147, 201, 282, 215, 286, 64, 207, 161}}, 1, sp);
  auto got = r.completion_ids[0];
  const std::vector<int64_t> want = {152, 64,  101,  829, 463,  444, 698,  100, 258, 461,  715,  299, 93,  64,
                                     101, 829, 1361, 598, 1475, 303, 1864, 617, 242, 1407, 251,  64,  101, 829,
                                     195, 114, 122,  216, 1738, 585, 965,  380, 160, 1690, 2012, 467};
  std::vector<int64_t> ours(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 40);
  EXPECT_EQ(ours, want);
}

// ---------------------------------------------------------------------------------------------
// KV cache and padding

TEST_P(Qwen2Device, CachedDecodingEqualsFullForward) {
  auto model = load_causal_lm(model_dir(preset("odd")), torch::kFloat32, device());
  torch::NoGradGuard ng;
  // Two sequences, the second left-padded by 3: full forward vs prefill + one-token steps.
  auto ids = torch::tensor({5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 20, 21, 22, 23}, torch::kInt64).view({2, 7}).to(device());
  auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1}, torch::kInt64).view({2, 7}).to(device());
  auto full = model->forward(ids, mask);  // (2, 7, V)
  KVCache cache = KVCache::allocate(model->cfg, 2, 7, torch::TensorOptions().dtype(torch::kFloat32).device(device()));
  auto pos = positions_from_mask(mask);
  auto h = model->forward_hidden(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4), pos.narrow(1, 0, 4), &cache);
  std::vector<torch::Tensor> steps = {model->logits(h)};
  for (int64_t t = 4; t < 7; ++t) {
    h = model->forward_hidden(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), pos.narrow(1, t, 1), &cache);
    steps.push_back(model->logits(h));
  }
  auto cached = torch::cat(steps, 1);
  // Compare real positions only: a padding query attends to nothing real, its output is unused.
  auto real = mask.to(torch::kBool).unsqueeze(-1).expand_as(full);
  auto diff = (cached - full).masked_fill(real.logical_not(), 0).abs().max().item<float>();
  EXPECT_LT(diff, 1e-4);
  // Left padding does not change a sequence: row 1 equals the same 4 tokens alone.
  auto alone = model->forward(torch::tensor({20, 21, 22, 23}, torch::kInt64).unsqueeze(0).to(device()));
  EXPECT_TRUE(torch::allclose(full[1].narrow(0, 3, 4), alone[0], 1e-5, 1e-4));
}

// q/k/v and gate/up are row blocks of one storage each; a forward that records no graph runs one
// GEMM per block (and RoPE over q and k at once). It gives the logits of the per-projection path
// that a graph-recording forward takes; a parameter moved off the storage (set_data) turns the
// packed path off instead of reading stale weights.
TEST_P(Qwen2Device, PackedProjectionsEqualThePerProjectionPath) {
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = load_causal_lm(model_dir(preset(name)), torch::kFloat32, device());
    ASSERT_TRUE(model->projections_packed());
    auto* layer = model->model->layers[0]->as<DecoderLayer>();
    auto& q = layer->self_attn->q_proj->weight;
    auto& k = layer->self_attn->k_proj->weight;
    EXPECT_TRUE(q.is_leaf() && k.is_leaf() && q.requires_grad());
    EXPECT_EQ(static_cast<char*>(k.data_ptr()), static_cast<char*>(q.data_ptr()) + q.numel() * q.element_size());
    EXPECT_EQ(static_cast<char*>(layer->mlp->up_proj->weight.data_ptr()),
              static_cast<char*>(layer->mlp->gate_proj->weight.data_ptr()) + layer->mlp->gate_proj->weight.nbytes());
    torch::Tensor ids, mask;  // not a structured binding: lambdas below capture them (C++17)
    std::tie(ids, mask) = padded_batch(device());
    auto graph_logits = [&] { return model->forward(ids, mask).detach(); };  // grad mode: per-projection GEMMs
    auto packed_logits = [&] {
      torch::NoGradGuard ng;
      return model->forward(ids, mask);
    };
    auto real = mask.to(torch::kBool).unsqueeze(-1);
    auto diff = [&](const torch::Tensor& a, const torch::Tensor& b) {
      return (a - b).masked_fill(real.logical_not(), 0).abs().max().item<double>();
    };
    auto want = graph_logits();
    const double tol = 2e-6 * want.abs().max().item<double>();  // fp32 rounding of other GEMM shapes (logits reach ~40)
    EXPECT_LT(diff(packed_logits(), want), tol);
    // Move q_proj of layer 0 to new storage and change it there: both paths must see the change.
    {
      torch::NoGradGuard ng;
      q.set_data(q.clone());
      q.mul_(1.5);
    }
    EXPECT_FALSE(model->projections_packed());
    auto changed = graph_logits();
    EXPECT_GT(diff(changed, want), 1e-3);
    EXPECT_LT(diff(packed_logits(), changed), tol);
  }
}

// Checkpointed layers (recomputed in backward) give the loss and every parameter gradient of the
// plain backward: the recompute runs the same kernels on the same inputs.
TEST_P(Qwen2Device, GradientCheckpointingGivesTheSameGradients) {
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = load_causal_lm(model_dir(preset(name)), torch::kFloat32, device());
    const int64_t V = model->cfg.n_vocab;
    torch::Tensor ids, mask;  // not a structured binding: lambdas below capture them (C++17)
    std::tie(ids, mask) = padded_batch(device());
    auto weights = torch::linspace(-1.0, 1.0, 14, torch::kFloat32).view({2, 7}).to(device());  // signed, like advantages
    auto run = [&](bool ckpt) {
      model->zero_grad();
      model->gradient_checkpointing = ckpt;
      auto lp = torch::log_softmax(model->forward(ids, mask), -1);                                            // (2, 8, V)
      auto tok = lp.narrow(1, 0, 7).gather(2, ids.narrow(1, 1, 7).clamp_max(V - 1).unsqueeze(2)).squeeze(2);  // (2, 7)
      auto loss = (tok * weights * mask.narrow(1, 1, 7)).sum();
      loss.backward();
      std::map<std::string, torch::Tensor> grads;
      for (auto& item : model->named_parameters()) grads[item.key()] = item.value().grad().detach().to(torch::kCPU).clone();
      return std::make_pair(loss.item<double>(), grads);
    };
    auto plain = run(false), ckpt = run(true);
    model->gradient_checkpointing = false;
    EXPECT_DOUBLE_EQ(plain.first, ckpt.first);
    ASSERT_EQ(plain.second.size(), ckpt.second.size());
    for (auto& [key, g] : plain.second) {
      SCOPED_TRACE(key);
      const double scale = g.abs().max().item<double>();
      // Every parameter gets a gradient through the recompute too (k_proj.bias only rounding noise:
      // it shifts all of a query's scores equally, which the softmax cancels).
      if (key.find("k_proj.bias") == std::string::npos) {
        EXPECT_GT(scale, 1e-6);
      }
      EXPECT_LE((ckpt.second[key] - g).abs().max().item<double>(), 1e-6 * scale + 1e-9);
    }
  }
}

TEST(Qwen2, GradientsEqualFiniteDifferences) {
  // The backward of the whole model (RoPE's in-place halves, GQA, masks, RMSNorm, tied head) in
  // float64 against central differences (eps 1e-6), at each parameter's largest-gradient element.
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = load_causal_lm(model_dir(preset(name)), torch::kFloat64, torch::kCPU);
    auto [ids, mask] = padded_batch(torch::kCPU);
    torch::manual_seed(3);
    auto w = torch::randn({2, 8, model->cfg.n_vocab}, torch::kFloat64) * mask.unsqueeze(2);  // (2, 8, V)
    auto loss_of = [&, ids = ids, mask = mask] { return (model->forward(ids, mask) * w).sum(); };
    model->zero_grad();
    loss_of().backward();
    for (auto& item : model->named_parameters()) {
      SCOPED_TRACE(item.key());
      auto g = item.value().grad().view({-1});
      const int64_t j = g.abs().argmax().item<int64_t>();
      auto flat = item.value().data().view({-1});
      const double x = flat[j].item<double>(), eps = 1e-6;
      double up, down;
      {
        torch::NoGradGuard ng;
        flat[j] = x + eps;
        up = loss_of().item<double>();
        flat[j] = x - eps;
        down = loss_of().item<double>();
        flat[j] = x;
      }
      const double numeric = (up - down) / (2 * eps), analytic = g[j].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)));
    }
  }
}

// scaled_dot_product_attention (LibTorch >= 2.0) computes the eager formula: same logits on padded
// batches, same parameter gradients (also through checkpointed layers), same cached decoding.
TEST_P(Qwen2Device, SdpaAttentionEqualsEager) {
  if (!sdpa_available()) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no scaled_dot_product_attention";
  for (const char* name : {"tiny", "odd"}) {
    SCOPED_TRACE(name);
    auto model = load_causal_lm(model_dir(preset(name)), torch::kFloat32, device());
    torch::Tensor ids, mask;  // not a structured binding: lambdas below capture them (C++17)
    std::tie(ids, mask) = padded_batch(device());
    auto run = [&](AttentionKernel k, bool ckpt) {
      model->set_attention(k);
      model->gradient_checkpointing = ckpt;
      model->zero_grad();
      auto logits = model->forward(ids, mask);  // (2, 8, V)
      (logits.log_softmax(-1).select(2, 1) * mask).sum().backward();
      std::vector<torch::Tensor> grads;
      for (auto& p : model->parameters()) grads.push_back(p.grad().to(torch::kCPU).clone());
      return std::make_pair(logits.detach().masked_fill(mask.unsqueeze(-1) == 0, 0).to(torch::kCPU), grads);
    };
    auto eager = run(AttentionKernel::Eager, false);
    for (bool ckpt : {false, true}) {
      auto sdpa = run(AttentionKernel::Sdpa, ckpt);
      EXPECT_LT((sdpa.first - eager.first).abs().max().item<double>(), 1e-4);
      for (size_t i = 0; i < eager.second.size(); ++i)
        EXPECT_LE((sdpa.second[i] - eager.second[i]).abs().max().item<double>(), 1e-4 * eager.second[i].abs().max().item<double>() + 1e-7)
            << i;
    }
    // Greedy decoding through the cache (eager and static steps) gives the golden ids with sdpa too.
    json golden = json::parse(read_file(source_path("tests/data/golden_qwen2.json")));
    for (DecodeMode mode : {DecodeMode::Eager, DecodeMode::Static}) {
      SamplingParams sp;
      sp.greedy = true;
      sp.max_new_tokens = 24;
      sp.decode = mode;
      auto prompt = golden[name][0]["prompt"].get<std::vector<int32_t>>();
      auto got = generate(model, {prompt}, 1, sp).completion_ids[0].to(torch::kCPU);
      EXPECT_EQ(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 24),
                golden[name][0]["greedy"].get<std::vector<int64_t>>());
    }
    model->set_attention(AttentionKernel::Eager);
    model->gradient_checkpointing = false;
  }
}

TEST(Qwen2, AttentionKernelNames) {
  EXPECT_EQ(parse_attention("eager"), AttentionKernel::Eager);
  EXPECT_NE(error_of([] { parse_attention("flash"); }).find("attention: expected eager or sdpa, found 'flash'"), std::string::npos);
  if (sdpa_available()) {
    EXPECT_EQ(parse_attention("sdpa"), AttentionKernel::Sdpa);
  } else {
    EXPECT_NE(error_of([] { parse_attention("sdpa"); }).find("attention sdpa needs LibTorch >= 2.0"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading, saving, dtypes

TEST(Qwen2, Bf16CheckpointLoadsAsBf16WithExactBits) {
  const auto& p = preset("untied_bf16_sharded");
  auto model = load_causal_lm(model_dir(p), torch::kBFloat16, torch::kCPU);
  auto ws = WeightStore::open_dir(model_dir(p));
  auto ref = ws.find("model.layers.2.mlp.down_proj.weight");
  ASSERT_NE(ref.file, nullptr);
  auto w = model->named_parameters()["model.layers.2.mlp.down_proj.weight"];
  EXPECT_EQ(w.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(std::memcmp(w.data_ptr(), ref.file->data(*ref.info), ref.info->end - ref.info->begin), 0);
  // bf16 compute stays close to fp32 compute on the same weights.
  auto m32 = load_causal_lm(model_dir(p), torch::kFloat32, torch::kCPU);
  torch::NoGradGuard ng;
  auto x = torch::tensor({3, 1, 4, 1, 5, 9, 2, 6}, torch::kInt64).unsqueeze(0);
  auto a = torch::log_softmax(model->forward(x).to(torch::kFloat32), -1), b = torch::log_softmax(m32->forward(x), -1);
  EXPECT_LT((a - b).abs().max().item<float>(), 1.0f);
}

TEST(Qwen2, SaveLoadRoundTrip) {
  for (const char* name : {"tiny", "odd"}) {
    auto model = load_causal_lm(model_dir(preset(name)), torch::kFloat32, torch::kCPU);
    std::string out = temp_dir() + "/saved";
    save_causal_lm(model, out, torch::kFloat32);
    auto back = load_causal_lm(out, torch::kFloat32, torch::kCPU);
    auto pa = model->named_parameters(), pb = back->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    // Tied: the embedding is stored once, under its own name (the HF convention).
    auto f = SafetensorsFile::open(out + "/model.safetensors");
    EXPECT_EQ(f->find("lm_head.weight") != nullptr, std::string(name) != "tiny");
  }
}

TEST(Qwen2, ConfigParsing) {
  auto c = ModelConfig::from_dir(model_dir(preset("odd")));
  EXPECT_EQ(c.head_dim, 24);
  EXPECT_EQ(c.n_kv_head, 1);
  // Qwen2.5-1.5B-Instruct's shapes: 1.54 B parameters with the tied embedding.
  json q15 = {{"model_type", "qwen2"},   {"vocab_size", 151936},      {"hidden_size", 1536},      {"intermediate_size", 8960},
              {"num_hidden_layers", 28}, {"num_attention_heads", 12}, {"num_key_value_heads", 2}, {"tie_word_embeddings", true},
              {"rope_theta", 1000000.0}, {"rms_norm_eps", 1e-6}};
  auto q = ModelConfig::from_json(q15.dump(), "q15.json");
  EXPECT_EQ(q.head_dim, 128);
  EXPECT_EQ(q.n_params(), 1543714304);
  auto bad = [&](json j) { return error_of([&] { ModelConfig::from_json(j.dump(), "cfg.json"); }); };
  auto m = q15;
  m["rope_scaling"] = {{"type", "dynamic"}, {"factor", 4.0}};
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_scaling\": type \"dynamic\" is not supported"), std::string::npos);
  // transformers >= 5 layout: RoPE settings in "rope_parameters", no top-level rope_theta.
  m = q15;
  m.erase("rope_theta");
  EXPECT_EQ(ModelConfig::from_json(m.dump(), "v5.json").rope_theta, 10000.0);  // HF's default when absent
  m["rope_parameters"] = {{"rope_theta", 1000000.0}, {"rope_type", "default"}};
  EXPECT_EQ(ModelConfig::from_json(m.dump(), "v5.json").rope_theta, 1000000.0);
  m["rope_parameters"]["rope_type"] = "dynamic";
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_parameters\": rope_type \"dynamic\" is not supported"), std::string::npos);
  m = q15;
  m["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "default"}};
  EXPECT_NE(bad(m).find("cfg.json: \"rope_theta\" (1000000.0) and \"rope_parameters\".\"rope_theta\" (10000.0) disagree"),
            std::string::npos);
  m = q15;
  m["use_sliding_window"] = true;
  EXPECT_NE(bad(m).find("use_sliding_window"), std::string::npos);
  m = q15;
  m.erase("hidden_size");
  EXPECT_NE(bad(m).find("cfg.json: missing field \"hidden_size\""), std::string::npos);
  m = q15;
  m["num_key_value_heads"] = 5;
  EXPECT_NE(bad(m).find("must be a multiple of num_key_value_heads"), std::string::npos);
  // Llama's attention_bias covers o_proj too (HF LlamaAttention); Qwen2 has q/k/v bias only.
  EXPECT_TRUE(q.attention_bias);
  EXPECT_FALSE(q.o_proj_bias);
  m = q15;
  m["model_type"] = "llama";
  EXPECT_FALSE(ModelConfig::from_json(m.dump(), "llama.json").attention_bias);
  m["attention_bias"] = true;
  auto lb = ModelConfig::from_json(m.dump(), "llama.json");
  EXPECT_TRUE(lb.attention_bias && lb.o_proj_bias);
  EXPECT_EQ(lb.n_params(), 1543714304 + 28 * 1536);
  m = q15;
  m["model_type"] = "gemma3";  // the multimodal wrapper: its text model is gemma3_text
  EXPECT_NE(bad(m).find("cfg.json: field \"model_type\": expected \"qwen2\", \"qwen3\", \"llama\", \"olmo2\", \"olmo3\", \"smollm3\", "
                        "\"mistral\", \"phi3\", \"gemma3_text\", \"qwen3_moe\", \"olmoe\" or "
                        "\"mixtral\", found \"gemma3\""),
            std::string::npos);
  m["model_type"] = 3;
  EXPECT_NE(bad(m).find("found 3"), std::string::npos);
  m = q15;
  m["tie_word_embeddings"] = "yes";
  EXPECT_NE(bad(m).find("cfg.json: field \"tie_word_embeddings\": expected true or false, found \"yes\""), std::string::npos);
  // Qwen3-0.6B (../shared/reference/qwen3): head_dim 128 given (hidden / heads = 64), q/k norms, no
  // biases; 596,049,920 parameters = 151936 x 1024 + 28 x (6,291,456 attention + 9,437,184 MLP + 2,048
  // norms + 256 q/k norms) + 1,024.
  json q3 = {{"model_type", "qwen3"},       {"vocab_size", 151936},      {"hidden_size", 1024},      {"intermediate_size", 3072},
             {"num_hidden_layers", 28},     {"num_attention_heads", 16}, {"num_key_value_heads", 8}, {"head_dim", 128},
             {"tie_word_embeddings", true}, {"attention_bias", false},   {"rope_theta", 1000000},    {"rope_scaling", nullptr}};
  auto c3 = ModelConfig::from_json(q3.dump(), "qwen3.json");
  EXPECT_EQ(c3.qk_norm, QkNorm::PerHead);
  EXPECT_FALSE(c3.attention_bias || c3.o_proj_bias);
  EXPECT_EQ(c3.head_dim, 128);
  EXPECT_EQ(c3.n_params(), 596049920);
  EXPECT_EQ(q.qk_norm, QkNorm::None);
  // OLMo-2-1124-7B's shapes: q/k norms over the whole projections (2 x 4,096 a layer), norms after
  // each block (post_attention, post_feedforward), untied: 2 x 100352 x 4096 + 32 x (67,108,864
  // attention + 135,266,304 MLP + 8,192 norms + 8,192 q/k norms) + 4,096 = 7,298,617,344, as
  // transformers' Olmo2ForCausalLM counts.
  json o2 = {{"model_type", "olmo2"},        {"vocab_size", 100352},      {"hidden_size", 4096},       {"intermediate_size", 11008},
             {"num_hidden_layers", 32},      {"num_attention_heads", 32}, {"num_key_value_heads", 32}, {"rms_norm_eps", 1e-6},
             {"tie_word_embeddings", false}, {"attention_bias", false},   {"rope_theta", 500000}};
  auto co = ModelConfig::from_json(o2.dump(), "olmo2.json");
  EXPECT_EQ(co.qk_norm, QkNorm::Whole);
  EXPECT_EQ(co.norm_placement, NormPlacement::Post);
  EXPECT_TRUE(co.norm_weight_fp32);
  EXPECT_EQ(co.n_params(), 7298617344);
  const auto tensors = co.expected_tensors();
  EXPECT_EQ(tensors[5], (std::pair<std::string, std::vector<int64_t>>{"model.layers.0.self_attn.q_norm.weight", {4096}}));
  EXPECT_EQ(tensors[11].first, "model.layers.0.post_feedforward_layernorm.weight");
  // SmolLM3: NoPE layers from no_rope_layers (1 = RoPE), one a layer, checked.
  json s3 = q15;
  s3["model_type"] = "smollm3";
  s3["num_hidden_layers"] = 4;
  s3["no_rope_layers"] = {1, 1, 1, 0};
  EXPECT_EQ(ModelConfig::from_json(s3.dump(), "smollm3.json").rope_layers, (std::vector<bool>{true, true, true, false}));
  s3["no_rope_layers"] = {1, 0};
  EXPECT_NE(bad(s3).find("field \"no_rope_layers\": expected a list of num_hidden_layers (4) 0s and 1s, found [1,0]"), std::string::npos);
  // Mistral: sliding_window read (null: none), a positive integer or an error.
  json mi = q15;
  mi["model_type"] = "mistral";
  mi["sliding_window"] = 4096;
  const ModelConfig cm = ModelConfig::from_json(mi.dump(), "mistral.json");
  EXPECT_EQ(cm.sliding_window, 4096);
  EXPECT_FALSE(cm.attention_bias || cm.o_proj_bias);
  mi["sliding_window"] = nullptr;
  EXPECT_EQ(ModelConfig::from_json(mi.dump(), "mistral.json").sliding_window, 0);
  mi["sliding_window"] = 0;
  EXPECT_NE(bad(mi).find("field \"sliding_window\": expected a positive integer or null, found 0"), std::string::npos);
  s3["no_rope_layers"] = {1, 2, 1, 1};
  EXPECT_NE(bad(s3).find("expected 0 (NoPE) or 1 (RoPE) for each layer, found 2"), std::string::npos);
  // Llama 3.2's RoPE scaling, in the old key and in transformers 5's rope_parameters.
  m = q15;
  m["model_type"] = "llama";
  m["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 32.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    json l3 = m;
    if (std::string(key) == "rope_parameters") {
      l3["rope_parameters"] = l3["rope_scaling"];
      l3.erase("rope_scaling");
    }
    const RopeScaling rs = ModelConfig::from_json(l3.dump(), "llama3.json").rope_scaling;
    EXPECT_EQ(rs.type, RopeType::Llama3) << key;
    EXPECT_EQ(rs.factor, 32.0);
    EXPECT_EQ(rs.low_freq_factor, 1.0);
    EXPECT_EQ(rs.high_freq_factor, 4.0);
    EXPECT_EQ(rs.original_max_position_embeddings, 8192);
  }
  m["rope_scaling"].erase("low_freq_factor");
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_scaling\": missing field \"low_freq_factor\""), std::string::npos);
  m["rope_scaling"]["low_freq_factor"] = "1";
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_scaling\": field \"low_freq_factor\": expected a number, found \"1\""), std::string::npos);
  m["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(ModelConfig::from_json(m.dump(), "linear.json").rope_scaling.type, RopeType::Linear);
  m["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_scaling\": type \"dynamic\" is not supported (default, linear, llama3, longrope or yarn)"),
            std::string::npos);
  m["rope_scaling"] = "llama3";
  EXPECT_NE(bad(m).find("cfg.json: field \"rope_scaling\": expected an object, found \"llama3\""), std::string::npos);
  EXPECT_NE(error_of([] { ModelConfig::from_json("{not json", "cfg.json"); }).find("cfg.json: invalid JSON"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Corrupted checkpoints: each fails with the file and the tensor named

namespace {

// A valid one-tensor file to corrupt: tensor "w", F32 [2, 3].
std::string one_tensor_file(const std::string& header_json, size_t data_bytes) {
  std::string h = header_json;
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + h + std::string(data_bytes, '\x01');
}

std::string open_error(const std::string& bytes) {
  std::string path = write_temp("m.safetensors", bytes);
  return error_of([&] { SafetensorsFile::open(path); });
}

}  // namespace

TEST(Safetensors, CorruptionErrors) {
  const std::string ok = R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})";
  EXPECT_EQ(open_error(one_tensor_file(ok, 24)), "");
  EXPECT_NE(open_error("abc").find("file too short"), std::string::npos);
  std::string past = one_tensor_file(ok, 24);
  past[0] = '\xFF';
  past[1] = '\xFF';
  EXPECT_NE(open_error(past).find("header length 65535 runs past the end of the file"), std::string::npos);
  std::string truncated = one_tensor_file(ok, 24);
  EXPECT_NE(
      open_error(truncated.substr(0, truncated.size() - 10)).find("tensor 'w': data_offsets end 24 is outside the data area (14 bytes)"),
      std::string::npos);
  EXPECT_NE(open_error(one_tensor_file(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 24))
                .find("tensor 'w': F32 [2,3] needs 24 bytes, data_offsets span 20"),
            std::string::npos);
  EXPECT_NE(open_error(one_tensor_file(R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2))
                .find("tensor 'w': unsupported dtype \"Q4\""),
            std::string::npos);
  EXPECT_NE(open_error(one_tensor_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                       12))
                .find("tensors 'a' and 'b' overlap"),
            std::string::npos);
  EXPECT_NE(open_error(one_tensor_file(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8))
                .find("shape entries must be non-negative"),
            std::string::npos);
  EXPECT_NE(open_error(one_tensor_file("[1, 2]", 0)).find("header is not a JSON object"), std::string::npos);
  EXPECT_NE(open_error(one_tensor_file("{\"w\": ", 0)).find("header is not valid JSON"), std::string::npos);
}

TEST(Safetensors, ModelLevelErrorsNameTheTensor) {
  const auto& p = preset("tiny");
  auto copy_model = [&] {
    std::string dir = temp_dir() + "/m";
    write_test_model(dir, p);
    return dir;
  };
  auto rewrite = [](const std::string& dir, const std::function<void(std::vector<TensorBytes>&)>& edit) {
    auto f = SafetensorsFile::open(dir + "/model.safetensors");
    std::vector<TensorBytes> ts;
    for (const auto& t : f->tensors()) ts.push_back({t.name, t.dtype, t.shape, f->data(t), t.end - t.begin});
    edit(ts);
    write_safetensors(dir + "/model.safetensors", ts);
  };
  auto load_err = [](const std::string& dir) { return error_of([&] { load_causal_lm(dir, torch::kFloat32, torch::kCPU); }); };
  // Missing tensor.
  std::string d = copy_model();
  rewrite(d, [](auto& ts) {
    ts.erase(std::find_if(ts.begin(), ts.end(), [](auto& t) { return t.name == "model.layers.0.self_attn.q_proj.bias"; }));
  });
  EXPECT_NE(load_err(d).find("checkpoint lacks 1 tensor(s) the model needs: model.layers.0.self_attn.q_proj.bias"), std::string::npos)
      << load_err(d);
  // Unexpected tensor.
  d = copy_model();
  static float extra[4] = {0, 0, 0, 0};
  rewrite(d, [](auto& ts) { ts.push_back({"model.layers.0.rotary_emb.inv_freq", DType::F32, {4}, extra, 16}); });
  EXPECT_NE(load_err(d).find("does not use: model.layers.0.rotary_emb.inv_freq"), std::string::npos) << load_err(d);
  // Wrong shape for the config.
  d = copy_model();
  rewrite(d, [](auto& ts) {
    for (auto& t : ts) {
      if (t.name != "model.norm.weight") continue;
      t.shape = {32};
      t.nbytes = 128;
    }
  });
  EXPECT_NE(load_err(d).find("tensor 'model.norm.weight' has shape [32], the model"), std::string::npos) << load_err(d);
  // Integer dtype where weights are expected.
  d = copy_model();
  rewrite(d, [](auto& ts) {
    for (auto& t : ts)
      if (t.name == "model.norm.weight") t.dtype = DType::I32;
  });
  EXPECT_NE(load_err(d).find("tensor 'model.norm.weight' has dtype I32"), std::string::npos) << load_err(d);
  // Bad config.json, missing shard, missing dir.
  d = copy_model();
  write_file_atomic(d + "/config.json", R"({"model_type": "qwen2", "vocab_size": 512})");
  EXPECT_NE(load_err(d).find(d + "/config.json: missing field \"hidden_size\""), std::string::npos) << load_err(d);
  std::string sharded = temp_dir() + "/s";
  write_test_model(sharded, preset("untied_bf16_sharded"));
  ::unlink((sharded + "/model-00002-of-00003.safetensors").c_str());
  EXPECT_NE(load_err(sharded).find("lists shard 'model-00002-of-00003.safetensors', which is missing"), std::string::npos);
  EXPECT_NE(load_err("/nonexistent/model").find("/nonexistent/model: model directory does not exist"), std::string::npos);
}

TEST(Safetensors, WriterRoundTripAndAliases) {
  std::vector<float> a = {1.5f, -2.0f, 3.25f};
  std::vector<uint16_t> b = {0x3F80, 0xC000};  // bf16 1.0, -2.0
  std::string dir = temp_dir();
  write_safetensors(dir + "/model.safetensors",
                    {{"lm_head.weight", DType::F32, {3}, a.data(), 12}, {"x.bf", DType::BF16, {2, 1}, b.data(), 4}},
                    {{"format", "pt"}, {"model.embed_tokens.weight", "lm_head.weight"}});
  auto ws = WeightStore::open_dir(dir);
  auto r = ws.find("model.embed_tokens.weight");  // the alias
  ASSERT_NE(r.file, nullptr);
  EXPECT_EQ(r.info->name, "lm_head.weight");
  EXPECT_EQ(std::memcmp(r.file->data(*r.info), a.data(), 12), 0);
  auto rb = ws.find("x.bf");
  EXPECT_EQ(rb.info->dtype, DType::BF16);
  EXPECT_EQ(rb.info->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ws.total_bytes(), 16u);
  EXPECT_EQ(ws.find("nope").file, nullptr);
  // The header is 8-byte aligned like the reference writer's.
  std::string raw = read_file(dir + "/model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  EXPECT_EQ(n % 8, 0u);
}
