// bench_tokenizer: encode GSM8K train (every question and answer) with the Qwen2.5 tokenizer and
// print tokens/s: one cold pass (empty word cache), warm passes, and the multi-threaded batch path.
//   bench_tokenizer [--tokenizer tests/data/qwen2.5/tokenizer.json] [--data data/gsm8k/train.jsonl]
// bench/vs_hf/run.sh runs grpo_tokenize side by side with HF tokenizers (Rust).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string tok_path = "tests/data/qwen2.5/tokenizer.json", data = "data/gsm8k/train.jsonl";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tokenizer")
      tok_path = argv[i + 1];
    else if (a == "--data")
      data = argv[i + 1];
  }
  auto t0 = Clock::now();
  auto tok = HfTokenizer::from_file(tok_path);
  double load_s = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<std::string> texts;
  size_t bytes = 0;
  std::ifstream in(data);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    for (const char* k : {"question", "answer"}) {
      texts.push_back(j[k].get<std::string>());
      bytes += texts.back().size();
    }
  }
  auto run = [&](int threads) {
    auto start = Clock::now();
    size_t n = 0;
    if (threads == 1)
      for (const auto& t : texts) n += tok->encode(t).size();
    else
      for (const auto& v : tok->encode_batch(texts, true, threads)) n += v.size();
    return std::make_pair(n, std::chrono::duration<double>(Clock::now() - start).count());
  };
  std::printf("tokenizer: %s (load %.3f s)\ndata: %s, %zu texts, %.1f MB\n\n", tok_path.c_str(), load_s, data.c_str(), texts.size(),
              bytes / 1e6);
  std::printf("| pass | threads | tokens | seconds | tokens/s |\n|---|---|---|---|---|\n");
  auto [n_cold, s_cold] = run(1);
  std::printf("| cold cache | 1 | %zu | %.3f | %.0f |\n", n_cold, s_cold, n_cold / s_cold);
  double best = 1e9;
  size_t n_warm = 0;
  for (int r = 0; r < 3; ++r) {
    auto [n, s] = run(1);
    n_warm = n;
    best = std::min(best, s);
  }
  std::printf("| warm (best of 3) | 1 | %zu | %.3f | %.0f |\n", n_warm, best, n_warm / best);
  int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto [n_mt, s_mt] = run(hw);
  std::printf("| warm, encode_batch | %d | %zu | %.3f | %.0f |\n", hw, n_mt, s_mt, n_mt / s_mt);
  std::printf("RESULT cold_tokens_per_s=%.0f warm_tokens_per_s=%.0f\n", n_cold / s_cold, n_warm / best);
  return 0;
}
