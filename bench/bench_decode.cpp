// bench_decode: decode throughput of our sampler at N sequences, for each decode mode (eager,
// static shapes, static captured as CUDA graphs), against the memory roofline of the same work:
// every decode step must read all weights once and each sequence's K/V so far, so
//   floor(step t) = (weight bytes + N * (P + t) * L * 2 * Hkv * hd * elem) / copy bandwidth,
// with the copy bandwidth measured here (bytes read + written by a large device copy). The
// transformers side of the comparison is scripts/hf_reference.py bench-generate on the same model
// directory, batch and lengths.
//   bench_decode (--model DIR | --config JSON) [--device auto] [--dtype auto] [--n 64,128]
//                [--prompt 128] [--new 256] [--modes eager,static,cuda_graph] [--attention eager]
//                [--reps 2]
// Every sequence runs exactly --new tokens (no stop ids), greedy, prompts of --prompt random ids.
#include <algorithm>
#include <cstdio>

#include "bench_common.h"
#include "grpo/sampler.h"

using namespace grpo;
using namespace grpo::bench;

int main(int argc, char** argv) {
  return bench_main("bench_decode", argc, argv, [](const Args& a, BenchModel& b) {
    const ModelConfig& c = b.model->cfg;
    b.model->set_attention(parse_attention(a.str("attention", "eager")));
    const int64_t P = a.num("prompt", 128), T = a.num("new", 256), reps = a.num("reps", 2);
    const auto ns = a.nums("n", "64,128");
    const double bw = measure_copy_bandwidth_gbps(
        b.device, b.device.is_cuda() ? int64_t(2) << 30 : int64_t(256) << 20);
    const double W = weight_bytes(b.model), es = double(torch::elementSize(b.dtype));
    print_model_line(b);
    std::printf(
        "prompt %lld tokens, %lld new tokens per sequence (greedy, no stop), weights %.2f GB, copy "
        "bandwidth %.0f GB/s\n\n",
        (long long)P, (long long)T, W / 1e9, bw);
    std::printf(
        "| N | decode | tokens/s | ms/step | roofline ms/step | of roofline | graph captures "
        "(first run / later) |\n|---|---|---|---|---|---|---|\n");
    for (int64_t N : ns) {
      // The decode loop runs T-1 model steps (the first new token comes from the prefill).
      double floor_s = 0;
      for (int64_t t = 1; t < T; ++t)
        floor_s +=
            (W + double(N) * (P + t) * c.n_layer * 2 * c.n_kv_head * c.head_dim * es) / (bw * 1e9);
      std::vector<std::vector<int32_t>> prompts(N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < P; ++i)
          prompts[n].push_back(static_cast<int32_t>(splitmix64(uint64_t(n) * 1000003u + i) %
                                                    std::min<int64_t>(c.n_vocab, 150000)));
      for (const auto& mode_name :
           a.strs("modes", b.device.is_cuda() && built_with_cuda() ? "eager,static,cuda_graph"
                                                                   : "eager,static")) {
        SamplingParams sp;
        sp.greedy = true;
        sp.max_new_tokens = T;
        sp.decode = parse_decode_mode(mode_name);
        sp.pad_id = 0;
        sp.decoder = std::make_shared<StaticDecoder>();  // as in training: kept across rollouts
        std::vector<double> secs;
        int64_t first_captures = 0, later_captures = 0;
        for (int64_t r = 0; r <= reps;
             ++r) {  // run 0 warms up (allocator, cuBLAS) and captures the graphs
          Rollout out = generate(b.model, prompts, 1, sp);
          if (r == 0) first_captures = out.graph_captures;
          if (r > 0) secs.push_back(out.decode_seconds), later_captures += out.graph_captures;
        }
        std::sort(secs.begin(), secs.end());
        const double s = secs[secs.size() / 2], steps = double(T - 1);
        std::printf("| %lld | %s | %.0f | %.2f | %.2f | %.0f%% | %lld / %lld |\n", (long long)N,
                    mode_name.c_str(), N * T / s, 1e3 * s / steps, 1e3 * floor_s / steps,
                    100.0 * floor_s / s, (long long)first_captures, (long long)later_captures);
        std::fflush(stdout);
      }
    }
  });
}
