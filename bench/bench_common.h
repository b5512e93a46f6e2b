// bench_common.h: what the model benchmarks (bench_decode, bench_update, bench_grpo_step) share:
// `--key value` arguments, the model (a Hugging Face directory, or random weights for a config.json
// such as configs/models/qwen2.5-1.5b.json, made directly on the device), and FLOP/byte counts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/model_io.h"

namespace grpo::bench {

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) throw Error("arguments: expected --key value pairs, found " + quote(k));
      kv_[k.substr(2)] = argv[++i];
    }
  }
  std::string str(const std::string& k, const std::string& def) const {
    auto it = kv_.find(k);
    return it == kv_.end() ? def : it->second;
  }
  int64_t num(const std::string& k, int64_t def) const { return std::atoll(str(k, std::to_string(def)).c_str()); }
  double real(const std::string& k, double def) const { return std::atof(str(k, std::to_string(def)).c_str()); }
  std::vector<int64_t> nums(const std::string& k, const std::string& def) const {
    std::vector<int64_t> out;
    for (const auto& p : split(str(k, def), ',')) out.push_back(std::atoll(std::string(p).c_str()));
    return out;
  }
  std::vector<std::string> strs(const std::string& k, const std::string& def) const { return split(str(k, def), ','); }

 private:
  std::map<std::string, std::string> kv_;
};

struct BenchModel {
  CausalLM model{nullptr};
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  std::string source;  // the directory or config it came from
};

// --model DIR (load) or --config JSON (random weights); --device, --dtype as in grpo_train.
inline BenchModel bench_model(const Args& a) {
  BenchModel b;
  if (!a.str("model", "").empty()) {
    b.source = a.str("model", "");
    Policy p = load_policy(b.source, parse_device_setting(a.str("device", "auto"), "--device"),
                           parse_precision(a.str("dtype", "auto"), "--dtype"));
    b.model = p.model;
    b.device = p.device;
    b.dtype = p.dtype;
  } else {
    b.device = parse_device(a.str("device", "auto"));
    b.dtype = parse_dtype(a.str("dtype", "auto"), b.device);
    b.source = a.str("config", "configs/models/qwen2.5-1.5b.json");
    ModelConfig cfg = ModelConfig::from_json(read_file(b.source), b.source);
    b.model = random_causal_lm(cfg, 1234, torch::TensorOptions().dtype(b.dtype).device(b.device));
  }
  return b;
}

inline double weight_bytes(CausalLM& m) {
  double n = 0;
  for (const auto& p : m->parameters()) n += double(p.numel()) * p.element_size();
  return n;
}

// Parameters that are matrix-multiplied per token: every decoder layer's projections and the
// lm_head (the embedding lookup is a gather, not a matmul).
inline double matmul_params(const ModelConfig& c) {
  const double q = double(c.n_head) * c.head_dim, kv = double(c.n_kv_head) * c.head_dim, D = double(c.n_embd);
  return c.n_layer * (D * q + 2 * D * kv + q * D + 3 * D * c.n_ff) + D * c.n_vocab;
}

// The device's bf16 (GPU) or fp32 (CPU) matmul rate in TFLOP/s: the median of timed square
// products.
inline double measure_matmul_tflops(const torch::Device& device, torch::Dtype dtype, int64_t n, int reps = 10) {
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  auto x = torch::randn({n, n}, opts), y = torch::randn({n, n}, opts);
  return 2.0 * n * n * n /
         median_seconds(
             device, [&] { torch::mm(x, y); }, reps, 3) /
         1e12;
}

inline void print_model_line(const BenchModel& b) {
  std::printf("model: %s (%.1f M params, %lld layers, hidden %lld, vocab %lld), %s on %s (%s)\n", b.source.c_str(),
              b.model->cfg.n_params() / 1e6, (long long)b.model->cfg.n_layer, (long long)b.model->cfg.n_embd,
              (long long)b.model->cfg.n_vocab, c10::toString(b.dtype), b.device.str().c_str(), runtime_summary().c_str());
}

// The benchmarks' main: runtime setup, arguments, the model, then `body`; errors print and exit 1.
inline int bench_main(const char* name, int argc, char** argv, const std::function<void(const Args&, BenchModel&)>& body) {
  try {
    init_runtime();
    Args a(argc, argv);
    BenchModel b = bench_model(a);
    body(a, b);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
  return 0;
}

}  // namespace grpo::bench
