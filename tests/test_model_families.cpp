// Tests for the model families (family.h, src/model/families/) and the blocks they choose:
// sliding windows with ring KV caches, partial rotary, longrope and yarn, Gemma's norms, Phi-3's fused
// projections and their LoRA targets, each family's config.json read into the right options.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/engine/sampler.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;
using json = nlohmann::json;

namespace {

json tiny_config(const char* model_type) {
  return {{"model_type", model_type},    {"vocab_size", 40},         {"hidden_size", 32},        {"intermediate_size", 48},
          {"num_hidden_layers", 2},      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6},
          {"tie_word_embeddings", true}, {"rope_theta", 10000.0}};
}

ModelConfig parse(const json& j) {
  return ModelConfig::from_json(j.dump(), "config.json");
}

std::string bad(const json& j) {
  return error_of([&] { parse(j); });
}

// Two rows of 11 positions, the second left-padded by 2: ids and mask (2, 11).
std::pair<torch::Tensor, torch::Tensor> batch() {
  auto ids = torch::tensor({3, 17, 22, 9, 7, 25, 11, 4, 30, 2, 14, 0, 0, 5, 8, 13, 21, 34, 1, 19, 26, 6}, torch::kInt64).view({2, 11});
  auto mask = torch::ones({2, 11}, torch::kInt64);
  mask[1].narrow(0, 0, 2).zero_();
  return {ids, mask};
}

// Logits of the real positions of `batch` decoded through a preallocated KV cache: a prefill of
// `prefill` positions, then chunks of `chunk` (1: decoding one token at a time).
torch::Tensor cached_logits(CausalLM& model, int64_t prefill, int64_t chunk) {
  auto [ids, mask] = batch();
  auto pos = positions_from_mask(mask);
  KVCache cache = KVCache::allocate(model->cfg, 2, 11, torch::TensorOptions().dtype(torch::kFloat32));
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < 11;) {
    const int64_t T = t == 0 ? prefill : std::min(chunk, 11 - t);
    auto h = model->forward_hidden(ids.narrow(1, t, T), mask.narrow(1, 0, t + T), pos.narrow(1, t, T), &cache);
    out.push_back(model->logits(h));
    t += T;
  }
  return torch::cat(out, 1);  // (2, 11, V)
}

// The same, one static decode step a position (forward_decode_static over a capacity of 12).
torch::Tensor static_logits(CausalLM& model) {
  auto [ids, mask] = batch();
  auto pos = positions_from_mask(mask);
  KVCache cache = KVCache::allocate(model->cfg, 2, 12, torch::TensorOptions().dtype(torch::kFloat32));
  auto key_mask = torch::ones({2, 12}, torch::kInt64);
  key_mask.narrow(1, 0, 11).copy_(mask);
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < 11; ++t) {
    auto h =
        model->forward_decode_static(ids.narrow(1, t, 1), key_mask, pos.narrow(1, t, 1), torch::full({1}, t, torch::kInt64), cache, 12);
    out.push_back(model->logits(h));
  }
  return torch::cat(out, 1);  // (2, 11, V)
}

double real_diff(const torch::Tensor& a, const torch::Tensor& b) {
  auto real = batch().second.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).masked_fill(real.logical_not(), 0).abs().max().item<double>();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sliding windows

// A window of 4 over sequences of 11: the full forward (the window in its mask), decoding through
// ring caches of 4 slots (prefills shorter and longer than the window, chunks past its end, one token
// at a time) and static decoding all give the same logits; the window binds (full attention gives
// others from position 4 on), and a windowed layer keeps 4 positions, a full one all 11.
TEST(SlidingWindow, RingCachesEqualTheFullForward) {
  json j = tiny_config("mistral");
  j["sliding_window"] = 4;
  auto model = init_causal_lm(parse(j), 3, 0.2);
  torch::NoGradGuard ng;
  auto [ids, mask] = batch();
  auto full = model->forward(ids, mask);  // (2, 11, V)
  for (auto [prefill, chunk] : {std::pair<int64_t, int64_t>{2, 1}, {6, 1}, {3, 3}, {11, 1}, {5, 4}})
    EXPECT_LT(real_diff(cached_logits(model, prefill, chunk), full), 1e-5) << prefill << "/" << chunk;
  EXPECT_LT(real_diff(static_logits(model), full), 1e-5);

  json nowin = j;
  nowin.erase("sliding_window");
  auto unwindowed = init_causal_lm(parse(nowin), 3, 0.2);
  auto plain = unwindowed->forward(ids, mask);
  EXPECT_LT((plain[0].narrow(0, 0, 4) - full[0].narrow(0, 0, 4)).abs().max().item<double>(), 1e-6);  // within the window
  EXPECT_GT((plain[0].narrow(0, 4, 7) - full[0].narrow(0, 4, 7)).abs().max().item<double>(), 1e-3);

  KVCache cache = KVCache::allocate(model->cfg, 2, 11, torch::TensorOptions().dtype(torch::kFloat32));
  EXPECT_EQ(cache.k[0].size(2), 4);
  EXPECT_EQ(KVCache::bytes_needed(model->cfg, 2, 11, torch::kFloat32), 2 * 2 * 2 * 2 * 4 * 8 * 4);  // 2 (k, v) L N Hkv W hd 4 B
  json mixed = j;
  mixed["model_type"] = "gemma3_text";
  mixed["layer_types"] = {"sliding_attention", "full_attention"};
  cache = KVCache::allocate(parse(mixed), 2, 11, torch::TensorOptions().dtype(torch::kFloat32));
  EXPECT_EQ(cache.k[0].size(2), 4);
  EXPECT_EQ(cache.k[1].size(2), 11);
}

// Gemma 3's layers: local ones slide and turn with their own base, global ones see everything; the
// same equalities hold over its mix (and its sandwich norms, GeGLU and scaled embedding).
TEST(SlidingWindow, GemmaLocalAndGlobalLayers) {
  json j = tiny_config("gemma3_text");
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 3;
  j["sliding_window_pattern"] = 2;
  j["head_dim"] = 16;
  j["query_pre_attn_scalar"] = 24;
  j["rope_local_base_freq"] = 100.0;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.sliding_layers, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(c.window_of(0), 3);
  EXPECT_EQ(c.window_of(1), 0);
  EXPECT_EQ(c.rope_of(0).theta, 100.0);
  EXPECT_EQ(c.rope_of(1).theta, 10000.0);
  auto model = init_causal_lm(c, 4, 0.2);
  torch::NoGradGuard ng;
  auto [ids, mask] = batch();
  auto full = model->forward(ids, mask);
  EXPECT_LT(real_diff(cached_logits(model, 5, 1), full), 1e-5);
  EXPECT_LT(real_diff(static_logits(model), full), 1e-5);
}

// Rollouts over ring caches (window 4, rollouts of up to 9 + 20 positions): the static decoder
// (buckets of 8, in-place compaction as sampled rows stop) gives the eager decoder's tokens, and the
// log-probs the sampler recorded are the full forward's, as the trainer computes them.
TEST(SlidingWindow, RolloutsWithCompactionEqualTheTrainersForward) {
  json j = tiny_config("gemma3_text");
  j["sliding_window"] = 4;
  j["layer_types"] = {"sliding_attention", "full_attention"};
  j["head_dim"] = 8;
  auto model = init_causal_lm(parse(j), 6, 0.3);
  SamplingParams sp;
  sp.max_new_tokens = 20;
  sp.seed = 5;
  sp.sync_every = 2;
  sp.decode_bucket = 8;
  for (int64_t id = 0; id < 6; ++id) sp.stop_ids.push_back(id);  // rows finish early and are compacted
  const std::vector<std::vector<int32_t>> prompts = {{7, 8, 9, 10, 11, 12, 13, 14, 15}, {16, 17}, {18, 19, 20, 21}};
  Rollout eager = generate(model, prompts, 4, sp);
  sp.decode = DecodeMode::Static;
  Rollout stat = generate(model, prompts, 4, sp);
  EXPECT_GE(eager.compactions, 1);
  EXPECT_GE(stat.compactions, 1);
  EXPECT_TRUE(torch::equal(stat.completion_ids, eager.completion_ids));
  EXPECT_LT((stat.logprobs - eager.logprobs).abs().max().item<double>(), 1e-5);
  torch::NoGradGuard ng;
  auto ids = torch::cat({eager.prompt_ids, eager.completion_ids}, 1);
  auto mask = torch::cat({eager.prompt_mask, eager.completion_mask}, 1);
  auto lp = torch::log_softmax(model->forward(ids, mask), -1);  // (N, T, V)
  const int64_t Tp = eager.prompt_ids.size(1), Tc = eager.completion_ids.size(1);
  EXPECT_GT(Tp + Tc, 3 * 4);  // the window binds
  auto recomputed = lp.narrow(1, Tp - 1, Tc).gather(-1, ids.narrow(1, Tp, Tc).unsqueeze(-1)).squeeze(-1);
  EXPECT_LT(((recomputed - eager.logprobs) * eager.completion_mask).abs().max().item<double>(), 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Blocks: by hand

// Gemma's RMSNorm scales by 1 + w in fp32: x = (1, 2, 3, 4), rms = sqrt(7.5).
TEST(Blocks, GemmaNormScalesByOnePlusWeight) {
  json j = tiny_config("gemma3_text");
  ModelConfig c = parse(j);
  c.rms_norm_eps = 0;
  RMSNorm norm(4, c, torch::TensorOptions().dtype(torch::kFloat32));
  torch::NoGradGuard ng;
  norm->weight.copy_(torch::tensor({0.0f, 0.5f, -1.0f, 1.0f}));
  auto y = norm(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}));
  const double r = std::sqrt(7.5);
  EXPECT_NEAR(y[0].item<double>(), 1 / r, 1e-6);
  EXPECT_NEAR(y[1].item<double>(), 2 * 1.5 / r, 1e-6);
  EXPECT_NEAR(y[2].item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(y[3].item<double>(), 8 / r, 1e-6);
}

// Partial rotary: over a rotary width of 2 of a 4-dim head, at position p the first pair turns
// by p radians (inv_freq 1) and the last two dims pass.
TEST(Blocks, PartialRotaryTurnsTheLeadingDims) {
  auto pos = torch::tensor({3}, torch::kInt64).view({1, 1});
  auto [cos, sin] = rope_tables(Rope{}, 2, pos, torch::kFloat64);  // (1, 1, 1, 2)
  auto x = torch::tensor({1.0, 2.0, 5.0, 7.0}, torch::kFloat64).view({1, 1, 1, 4});
  auto y = apply_rope(x, cos, sin).flatten();
  // The tables are computed in fp32, as transformers computes them.
  EXPECT_NEAR(y[0].item<double>(), std::cos(3.0) - 2 * std::sin(3.0), 1e-6);
  EXPECT_NEAR(y[1].item<double>(), 2 * std::cos(3.0) + std::sin(3.0), 1e-6);
  EXPECT_EQ(y[2].item<double>(), 5.0);
  EXPECT_EQ(y[3].item<double>(), 7.0);
}

// YaRN over a head of 8 (4 frequencies 10000^(-i/4): 1, 0.1, 0.01, 0.001), original context 2048,
// factor 4: beta_fast's dimension 8 ln(2048 / 64 pi) / (2 ln 10000) = 1.008 floors to 1, beta_slow's
// 2.513 ceils to 3, so the ramp (i - 1) / 2 keeps frequencies 0 and 1, halves the way for 2
// (0.5 x 0.01 + 0.5 x 0.01 / 4 = 0.00625) and divides 3 by 4; cos and sin x (0.1 ln 4 + 1).
TEST(Blocks, YarnRampsBetweenTheCorrectionDims) {
  json j = tiny_config("qwen2");
  j["max_position_embeddings"] = 8192;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 2048}};
  const ModelConfig c = parse(j);
  ASSERT_EQ(c.rope_scaling.type, RopeType::Yarn);
  const double af = 0.1 * std::log(4.0) + 1;
  EXPECT_NEAR(c.rope_scaling.attention_factor, af, 1e-15);
  const Rope rope{c.rope_theta, c.rope_scaling};
  auto cos = rope_tables(rope, 8, torch::full({1, 1}, 100, torch::kInt64), torch::kFloat64).first.flatten();  // (8,)
  const double want[4] = {std::cos(100.0), std::cos(10.0), std::cos(0.625), std::cos(0.025)};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(cos[i].item<double>(), want[i] * af, 1e-5) << i;
    EXPECT_NEAR(cos[i + 4].item<double>(), want[i] * af, 1e-5) << i;
  }
  // Untruncated bounds 1.008 and 2.513: frequency 2 is (2 - 1.008) / 1.505 of the way.
  j["rope_scaling"]["truncate"] = false;
  const Rope loose{c.rope_theta, parse(j).rope_scaling};
  const double lo = 8 * std::log(2048 / (64 * M_PI)) / (2 * std::log(10000.0)),
               hi = 8 * std::log(2048 / (2 * M_PI)) / (2 * std::log(10000.0));
  const double r = (2 - lo) / (hi - lo);
  auto cos2 = rope_tables(loose, 8, torch::full({1, 1}, 100, torch::kInt64), torch::kFloat64).first.flatten();
  EXPECT_NEAR(cos2[2].item<double>(), std::cos(100 * (0.01 * (1 - r) + 0.0025 * r)) * af, 1e-5);
  // DeepSeek's mscale pair, and the pretraining context from the top level where given.
  j["rope_scaling"]["mscale"] = 1.0;
  j["rope_scaling"]["mscale_all_dim"] = 0.5;
  j["original_max_position_embeddings"] = 1024;
  const RopeScaling ds = parse(j).rope_scaling;
  EXPECT_NEAR(ds.attention_factor, af / (0.05 * std::log(4.0) + 1), 1e-15);
  EXPECT_EQ(ds.original_max_position_embeddings, 1024);
  j["rope_scaling"]["beta_slow"] = -1;
  EXPECT_NE(bad(j).find("\"beta_fast\" and \"beta_slow\" must be > 0, found 32.0 and -1.0"), std::string::npos) << bad(j);
}

// ---------------------------------------------------------------------------------------------
// Families' configs

// Phi-4-mini's shape: fused projections, 3/4 of each head turned, longrope with its factors chosen
// by the longest position (4096 positions: short; 4097: long) and cos, sin x
// sqrt(1 + ln(131072 / 4096) / ln 4096) = sqrt(17 / 12); 3,836,021,760 parameters (as transformers counts).
TEST(Families, Phi4MiniConfig) {
  json j = {{"model_type", "phi3"},
            {"vocab_size", 200064},
            {"hidden_size", 3072},
            {"intermediate_size", 8192},
            {"num_hidden_layers", 32},
            {"num_attention_heads", 24},
            {"num_key_value_heads", 8},
            {"partial_rotary_factor", 0.75},
            {"max_position_embeddings", 131072},
            {"original_max_position_embeddings", 4096},
            {"rope_theta", 10000.0},
            {"sliding_window", 262144},
            {"tie_word_embeddings", true}};
  std::vector<double> shortf(48, 1.0), longf(48, 2.0);
  shortf[0] = 1.5;
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", shortf}, {"long_factor", longf}};
  const ModelConfig c = parse(j);
  EXPECT_TRUE(c.fused_projections);
  EXPECT_EQ(c.rotary_dim, 96);
  EXPECT_EQ(c.rope_scaling.type, RopeType::LongRope);
  EXPECT_NEAR(c.rope_scaling.attention_factor, std::sqrt(17.0 / 12.0), 1e-12);
  EXPECT_EQ(c.n_params(), 3836021760);
  EXPECT_EQ(c.expected_tensors()[1].first, "model.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(c.expected_tensors()[1].second, (std::vector<int64_t>{5120, 3072}));
  const Rope rope{c.rope_theta, c.rope_scaling};
  auto cos_at = [&](int64_t p) { return rope_tables(rope, 96, torch::full({1, 1}, p), torch::kFloat64).first.flatten()[0].item<double>(); };
  const double af = std::sqrt(17.0 / 12.0);
  EXPECT_NEAR(cos_at(4095), std::cos(4095 / 1.5) * af, 1e-3);  // fp32 angles of ~2700 rad: 1e-4 relative
  EXPECT_NEAR(cos_at(4096), std::cos(4096 / 2.0) * af, 1e-3);
  j["rope_scaling"]["long_factor"] = std::vector<double>(47, 1.0);
  EXPECT_NE(bad(j).find("\"long_factor\": expected a list of 48 numbers (the rotary dims / 2)"), std::string::npos);
  j["rope_scaling"] = {{"type", "su"}, {"short_factor", shortf}, {"long_factor", longf}};
  EXPECT_EQ(parse(j).rope_scaling.type, RopeType::LongRope);  // Phi-3's old name
  j["partial_rotary_factor"] = 1.5;
  EXPECT_NE(bad(j).find("field \"partial_rotary_factor\": expected a number in (0, 1], found 1.5"), std::string::npos);
}

// Gemma 3 1B's shape: 999,885,952 parameters (as transformers counts), 5 local layers to 1 global,
// scale 256^-0.5, embedding x sqrt(1152); soft-capping read (refused for Qwen2), bidirectional
// attention refused.
TEST(Families, Gemma3Config) {
  json j = {{"model_type", "gemma3_text"},
            {"vocab_size", 262144},
            {"hidden_size", 1152},
            {"intermediate_size", 6912},
            {"num_hidden_layers", 26},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 1},
            {"head_dim", 256},
            {"query_pre_attn_scalar", 256},
            {"sliding_window", 512},
            {"sliding_window_pattern", 6},
            {"rope_theta", 1000000.0},
            {"rope_local_base_freq", 10000.0},
            {"hidden_activation", "gelu_pytorch_tanh"},
            {"final_logit_softcapping", nullptr},
            {"tie_word_embeddings", true}};
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.n_params(), 999885952);
  EXPECT_EQ(c.hidden_act, Activation::GeluTanh);
  EXPECT_EQ(c.attn_scale, 1.0 / 16);
  EXPECT_EQ(c.embed_scale, std::sqrt(1152.0));
  EXPECT_EQ(std::count(c.sliding_layers.begin(), c.sliding_layers.end(), false), 4);  // layers 6, 12, 18, 24
  EXPECT_FALSE(c.sliding_layers[5]);
  EXPECT_EQ(c.rope_of(0).theta, 10000.0);
  EXPECT_EQ(c.rope_of(5).theta, 1000000.0);
  EXPECT_EQ(c.final_softcap, 0.0);  // null: none
  j["final_logit_softcapping"] = 30.0;
  EXPECT_EQ(parse(j).final_softcap, 30.0);
  j["attn_logit_softcapping"] = 50.0;  // transformers' Gemma 3 would not apply it
  EXPECT_NE(bad(j).find("field \"attn_logit_softcapping\": soft-capping is not part of model_type \"gemma3_text\""), std::string::npos);
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = 0;
  EXPECT_NE(bad(j).find("field \"final_logit_softcapping\": expected null or a number > 0, found 0"), std::string::npos);
  j["final_logit_softcapping"] = nullptr;
  // A family whose transformers class would ignore it: refused, not ignored.
  json q = tiny_config("qwen2");
  q["final_logit_softcapping"] = 30.0;
  EXPECT_NE(bad(q).find("field \"final_logit_softcapping\": soft-capping is not part of model_type \"qwen2\" (expected null), found 30.0"),
            std::string::npos);
  j["use_bidirectional_attention"] = true;
  EXPECT_NE(bad(j).find("field \"use_bidirectional_attention\": true is not supported"), std::string::npos);
  j.erase("use_bidirectional_attention");
  j["hidden_activation"] = "relu";
  EXPECT_NE(bad(j).find("field \"hidden_activation\": expected \"silu\" or \"gelu_pytorch_tanh\", found \"relu\""), std::string::npos);
}

// config.json's "architectures" must name the family's causal LM: a classifier's or a multimodal
// wrapper's weights are another model's.
TEST(Families, ArchitecturesNameTheCausalLM) {
  json j = tiny_config("qwen2");
  j["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_NO_THROW(parse(j));
  j["architectures"] = {"Qwen2ForSequenceClassification"};
  EXPECT_NE(bad(j).find("config.json: field \"architectures\": expected [\"Qwen2ForCausalLM\"] for model_type \"qwen2\", found "
                        "[\"Qwen2ForSequenceClassification\"]"),
            std::string::npos);
  j = tiny_config("gemma3_text");
  j["architectures"] = {"Gemma3ForConditionalGeneration"};
  EXPECT_NE(bad(j).find("expected [\"Gemma3ForCausalLM\"] for model_type \"gemma3_text\""), std::string::npos);
}

// layer_types over any family: sliding layers need the family's window.
TEST(Families, LayerTypes) {
  json j = tiny_config("qwen2");
  j["layer_types"] = {"full_attention", "full_attention"};
  EXPECT_FALSE(parse(j).has_window());
  j["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_NE(bad(j).find("field \"layer_types\": \"sliding_attention\" layers, but the qwen2 family has no sliding window here"),
            std::string::npos);
  j["layer_types"] = {"full_attention"};
  EXPECT_NE(bad(j).find("expected a list of num_hidden_layers (2) layer types"), std::string::npos);
  j = tiny_config("mistral");
  j["sliding_window"] = 8;
  j["layer_types"] = {"chunked_attention", "full_attention"};
  EXPECT_NE(bad(j).find("expected \"full_attention\" or \"sliding_attention\" for each layer, found \"chunked_attention\""),
            std::string::npos);
  j["model_type"] = "gpt2";
  EXPECT_NE(bad(j).find("field \"model_type\": expected \"qwen2\", \"qwen3\", \"llama\", \"olmo2\", \"olmo3\", \"smollm3\", \"mistral\", "
                        "\"phi3\", \"gemma3_text\", \"qwen3_moe\", \"olmoe\" or "
                        "\"mixtral\", found \"gpt2\""),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Phi-3's fused projections: checkpoint names, LoRA targets

TEST(Families, FusedProjectionsAndTheirLoraTargets) {
  const ModelConfig phi = parse(tiny_config("phi3"));
  const ModelConfig qwen = parse(tiny_config("qwen2"));
  const std::vector<std::string> all = lora_target_names();
  EXPECT_EQ(resolve_lora_targets(phi, all), (std::vector<std::string>{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}));
  EXPECT_EQ(resolve_lora_targets(qwen, all).size(), 7u);
  EXPECT_NE(error_of([&] {
              resolve_lora_targets(phi, {"q_proj", "v_proj"});
            }).find("this phi3 model computes q_proj, k_proj, v_proj in one qkv_proj: name all of them, or qkv_proj"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_lora_targets(qwen, {"gate_up_proj"});
            }).find("gate_up_proj is a fused projection; this qwen2 model has gate_proj, up_proj apart"),
            std::string::npos);
  LoraConfig lc;
  lc.rank = 2;
  // Per layer: qkv (32 + 32 + 2 x 16) + o (32 + 32) + gate_up (32 + 96) + down (48 + 32), x r = 2, x 2 layers.
  EXPECT_EQ(lora_param_count(phi, lc), 2 * 2 * (96 + 64 + 128 + 80));
  // The fused model runs: its adapters start at zero, so the output is the base model's.
  auto model = init_causal_lm(phi, 5, 0.2);
  torch::NoGradGuard ng;
  auto ids = batch().first;
  auto before = model->forward(ids);
  add_lora(model, lc, 1);
  EXPECT_TRUE(torch::equal(model->forward(ids), before));
  EXPECT_TRUE(model->projections_packed());
}

// ---------------------------------------------------------------------------------------------
// Mixtures of experts

namespace {

json tiny_moe(const char* model_type) {
  json j = tiny_config(model_type);
  j["num_hidden_layers"] = 3;
  j["num_experts_per_tok"] = 2;
  if (std::string(model_type) == "mixtral") {
    j["num_local_experts"] = 4;
  } else {
    j["num_experts"] = 4;
    j["moe_intermediate_size"] = 16;
  }
  return j;
}

}  // namespace

// The grouped experts (one GEMM per expert over its rows) equal the formula token by token:
// y = sum_j w_j expert_{e_j}(x) over the router's top k, its weights renormalised (Qwen3-MoE with
// norm_topk_prob) or not (OLMoE).
TEST(MoE, GroupedExpertsEqualThePerTokenFormula) {
  for (bool norm : {true, false}) {
    json j = tiny_moe("qwen3_moe");
    j["norm_topk_prob"] = norm;
    j["mlp_only_layers"] = {1};
    const ModelConfig c = parse(j);
    EXPECT_EQ(c.moe_layers, (std::vector<bool>{true, false, true}));
    auto model = init_causal_lm(c, 7, 0.3);
    auto* moe = model->model->layers[0]->as<DecoderLayer>()->moe.get();
    ASSERT_NE(moe, nullptr);
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 5, 32}, torch::TensorOptions().dtype(torch::kFloat64)).to(torch::kFloat32);
    auto grouped = moe->forward(x, /*no_graph=*/true);  // (2, 5, D)
    auto rows = x.reshape({-1, 32});
    auto probs = torch::softmax(rows.matmul(moe->gate->weight.t()), -1);  // (10, E)
    for (int64_t m = 0; m < rows.size(0); ++m) {
      auto [w, e] = probs[m].topk(2);
      if (norm) w = w / w.sum();
      auto want = torch::zeros({32});
      for (int64_t s = 0; s < 2; ++s) {
        auto& ex = moe->experts[e[s].item<int64_t>()];
        auto h = torch::silu(ex->gate_proj->weight.matmul(rows[m])) * ex->up_proj->weight.matmul(rows[m]);
        want += w[s] * ex->down_proj->weight.matmul(h);
      }
      EXPECT_LT((grouped.reshape({-1, 32})[m] - want).abs().max().item<double>(), 1e-5) << m;
    }
    EXPECT_TRUE(torch::allclose(moe->forward(x, /*no_graph=*/false), grouped, 1e-6, 1e-6));  // per-projection path
  }
}

// Decoding through the KV cache gives the full forward's logits (routing per token either way), and
// a LoRA adapter leaves the experts and the router alone.
TEST(MoE, CachedDecodingAndLora) {
  for (const char* type : {"qwen3_moe", "olmoe", "mixtral"}) {
    SCOPED_TRACE(type);
    json j = tiny_moe(type);
    if (std::string(type) == "olmoe") j["intermediate_size"] = 16;
    auto model = init_causal_lm(parse(j), 8, 0.3);
    torch::NoGradGuard ng;
    auto full = model->forward(batch().first, batch().second);
    const double scale = full.abs().max().item<double>();  // relative: the experts' sums round in another order
    EXPECT_LT(real_diff(cached_logits(model, 3, 1), full) / scale, 1e-5);
    EXPECT_LT(real_diff(static_logits(model), full) / scale, 1e-5);
    LoraConfig lc;
    lc.rank = 2;
    add_lora(model, lc, 1);
    for (const auto& [name, p] : lora_parameters(model)) EXPECT_EQ(name.find(".experts."), std::string::npos) << name;
    EXPECT_EQ(lora_parameters(model).size(), 2u * 4 * 3);  // q, k, v, o of 3 layers (every layer sparse)
  }
}

TEST(MoE, BadConfigsNameTheField) {
  json j = tiny_moe("qwen3_moe");
  j["num_experts_per_tok"] = 5;
  EXPECT_NE(bad(j).find("config.json: field \"num_experts_per_tok\": expected 1 to num_experts (4), found 5"), std::string::npos);
  j = tiny_moe("qwen3_moe");
  j.erase("moe_intermediate_size");
  EXPECT_NE(bad(j).find("config.json: missing field \"moe_intermediate_size\""), std::string::npos);
  j = tiny_moe("qwen3_moe");
  j["mlp_only_layers"] = {3};
  EXPECT_NE(bad(j).find("field \"mlp_only_layers\": expected layer indices below num_hidden_layers (3), found 3"), std::string::npos);
  j = tiny_moe("olmoe");
  j["intermediate_size"] = 16;
  j["clip_qkv"] = 8.0;
  EXPECT_NE(bad(j).find("field \"clip_qkv\": clamping q, k and v is not supported (expected null), found 8.0"), std::string::npos);
  j = tiny_moe("mixtral");
  j["router_jitter_noise"] = 0.1;
  EXPECT_NE(bad(j).find("field \"router_jitter_noise\": expected 0 (no router noise), found 0.1"), std::string::npos);
}
