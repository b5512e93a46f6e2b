// test_models.h: small random Qwen2 checkpoints written by the tests themselves, with a
// platform-independent generator (splitmix64 + Box-Muller in double), so the golden values in
// tests/data/golden_qwen2.json (made once by scripts/make_golden.py, an independent fp64
// reference) hold on every machine. Presets cover: tied F32; untied BF16 in 3 shards; an odd
// shape (head_dim 24 != hidden/heads, 5 query heads on 1 KV head).
#pragma once

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo::test {

struct TestPreset {
  const char* name;
  int64_t vocab, hidden, inter, layers, heads, kv_heads, head_dim;  // head_dim 0: hidden / heads
  bool tied;
  DType dtype;
  int shards;
};

inline const std::vector<TestPreset>& test_presets() {
  static const std::vector<TestPreset> p = {
      {"tiny", 512, 64, 160, 2, 4, 2, 0, true, DType::F32, 1},
      {"untied_bf16_sharded", 384, 96, 256, 3, 6, 2, 0, false, DType::BF16, 3},
      {"odd", 300, 80, 136, 3, 5, 1, 24, false, DType::F32, 1},
  };
  return p;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return ((next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }

 private:
  uint64_t s_;
};

inline uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

inline std::string byte_tokenizer_json() {
  return byte_level_tokenizer_json();
}

// Write the preset's checkpoint (config.json, safetensors, generation_config.json) into dir.
inline void write_test_model(const std::string& dir, const TestPreset& p, uint64_t seed = 1) {
  const int64_t hd = p.head_dim ? p.head_dim : p.hidden / p.heads;
  nlohmann::json cfg = {{"architectures", {"Qwen2ForCausalLM"}},
                        {"model_type", "qwen2"},
                        {"hidden_act", "silu"},
                        {"vocab_size", p.vocab},
                        {"hidden_size", p.hidden},
                        {"intermediate_size", p.inter},
                        {"num_hidden_layers", p.layers},
                        {"num_attention_heads", p.heads},
                        {"num_key_value_heads", p.kv_heads},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 10000.0},
                        {"max_position_embeddings", 4096},
                        {"tie_word_embeddings", p.tied},
                        {"torch_dtype", p.dtype == DType::BF16 ? "bfloat16" : "float32"},
                        {"eos_token_id", 258}};
  if (p.head_dim) cfg["head_dim"] = p.head_dim;
  ::mkdir(dir.c_str(), 0755);
  write_file_atomic(dir + "/config.json", cfg.dump(2));
  write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": [258, 256], "pad_token_id": 256})");
  write_file_atomic(dir + "/tokenizer.json", byte_tokenizer_json());
  Rng rng(seed);
  struct W {
    std::string name;
    std::vector<int64_t> shape;
    double mean, std;
  };
  std::vector<W> ws = {{"model.embed_tokens.weight", {p.vocab, p.hidden}, 0, 1.0}};
  for (int64_t l = 0; l < p.layers; ++l) {
    std::string q = "model.layers." + std::to_string(l) + ".";
    ws.push_back({q + "input_layernorm.weight", {p.hidden}, 1, 0.1});
    ws.push_back({q + "self_attn.q_proj.weight", {p.heads * hd, p.hidden}, 0, 0.2});
    ws.push_back({q + "self_attn.q_proj.bias", {p.heads * hd}, 0, 0.2});
    ws.push_back({q + "self_attn.k_proj.weight", {p.kv_heads * hd, p.hidden}, 0, 0.2});
    ws.push_back({q + "self_attn.k_proj.bias", {p.kv_heads * hd}, 0, 0.2});
    ws.push_back({q + "self_attn.v_proj.weight", {p.kv_heads * hd, p.hidden}, 0, 0.2});
    ws.push_back({q + "self_attn.v_proj.bias", {p.kv_heads * hd}, 0, 0.2});
    ws.push_back({q + "self_attn.o_proj.weight", {p.hidden, p.heads * hd}, 0, 0.2});
    ws.push_back({q + "post_attention_layernorm.weight", {p.hidden}, 1, 0.1});
    ws.push_back({q + "mlp.gate_proj.weight", {p.inter, p.hidden}, 0, 0.2});
    ws.push_back({q + "mlp.up_proj.weight", {p.inter, p.hidden}, 0, 0.2});
    ws.push_back({q + "mlp.down_proj.weight", {p.hidden, p.inter}, 0, 0.2});
  }
  ws.push_back({"model.norm.weight", {p.hidden}, 1, 0.1});
  if (!p.tied) ws.push_back({"lm_head.weight", {p.vocab, p.hidden}, 0, 0.2});
  std::vector<std::vector<uint8_t>> blobs;
  std::vector<TensorBytes> tensors;
  for (const auto& w : ws) {
    int64_t n = 1;
    for (auto s : w.shape) n *= s;
    std::vector<uint8_t> b(n * (p.dtype == DType::BF16 ? 2 : 4));
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(w.mean + w.std * rng.normal());
      if (p.dtype == DType::BF16) {
        uint16_t h = to_bf16(v);
        std::memcpy(&b[2 * i], &h, 2);
      } else {
        std::memcpy(&b[4 * i], &v, 4);
      }
    }
    blobs.push_back(std::move(b));
    tensors.push_back({w.name, p.dtype, w.shape, blobs.back().data(), blobs.back().size()});
  }
  if (p.shards == 1) {
    write_safetensors(dir + "/model.safetensors", tensors);
    return;
  }
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  const size_t per = (tensors.size() + p.shards - 1) / p.shards;
  for (int s = 0; s < p.shards; ++s) {
    char fn[64];
    std::snprintf(fn, sizeof fn, "model-%05d-of-%05d.safetensors", s + 1, p.shards);
    std::vector<TensorBytes> part(tensors.begin() + std::min(tensors.size(), s * per),
                                  tensors.begin() + std::min(tensors.size(), (s + 1) * per));
    for (const auto& t : part) index["weight_map"][t.name] = fn;
    write_safetensors(dir + "/" + fn, part);
  }
  write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2));
}

}  // namespace grpo::test
