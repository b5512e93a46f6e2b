// bench_update: the GRPO update's forward + backward (compute_logprobs_from_model -> PPO-clip loss
// -> backward, micro-batched as the trainer does) in tokens/s and model FLOPs utilisation, with and
// without gradient checkpointing, for each attention kernel, and its peak memory. Model FLOPs per
// step (PaLM's count; the checkpointing recompute is not counted):
//   6 * tokens * (layer matmul params) + 6 * completion tokens * D * V (the lm_head runs on the
//   completion only) + 12 * L * H * hd * T * tokens (attention scores and values, fwd + bwd)
// MFU is given against the bf16 (GPU) / fp32 (CPU) matmul rate measured here and, on a GPU, the
// datasheet dense bf16 peak (--peak-tflops, H100/H200 SXM: 989).
//   bench_update (--model DIR | --config JSON) [--device auto] [--dtype auto] [--n 16]
//                [--prompt 128] [--completion 384] [--micro 16] [--checkpointing 0,1] [--reps 3]
//                [--peak-tflops 989]
#include <algorithm>
#include <cstdio>

#include "bench_common.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_step.h"

using namespace grpo;
using namespace grpo::bench;

int main(int argc, char** argv) {
  return bench_main("bench_update", argc, argv, [](const Args& a, BenchModel& b) {
    const ModelConfig& c = b.model->cfg;
    const int64_t N = a.num("n", 16), Tp = a.num("prompt", 128), Tc = a.num("completion", 384), T = Tp + Tc;
    const int64_t mb = std::min(N, a.num("micro", 16)), reps = a.num("reps", 3);
    TORCH_CHECK(N % mb == 0, "--micro must divide --n");
    const double peak_sheet = b.device.is_cuda() ? a.real("peak-tflops", 989.0) : 0.0;
    const double peak_meas = measure_matmul_tflops(b.device, b.dtype, b.device.is_cuda() ? 8192 : 1024);
    const double tokens = double(N) * T;
    const double flops = 6.0 * tokens * (matmul_params(c) - double(c.n_embd) * c.n_vocab) + 6.0 * N * Tc * double(c.n_embd) * c.n_vocab +
                         12.0 * c.n_layer * c.n_head * c.head_dim * T * tokens;
    print_model_line(b);
    std::printf(
        "N=%lld sequences x (%lld prompt + %lld completion) tokens, micro-batch %lld; %.2f TFLOP "
        "per step; "
        "matmul peak measured %.1f TFLOP/s%s\n\n",
        (long long)N, (long long)Tp, (long long)Tc, (long long)mb, flops / 1e12, peak_meas,
        peak_sheet > 0 ? (", datasheet " + std::to_string(int(peak_sheet)) + " TFLOP/s").c_str() : "");
    std::printf(
        "| attention | checkpointing | seconds | tokens/s | TFLOP/s | MFU (measured peak) | MFU "
        "(datasheet) | "
        "peak MiB |\n"
        "|---|---|---|---|---|---|---|---|\n");
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(b.device);
    auto ids = torch::randint(0, std::min<int64_t>(c.n_vocab, 150000), {N, T}, opts);
    auto attn = torch::ones({N, T}, opts);
    auto mask = torch::ones({N, Tc}, opts.dtype(torch::kFloat32));
    auto adv = torch::randn({N}, opts.dtype(torch::kFloat32));
    for (const auto& att : a.strs("attention", sdpa_available() ? "eager,sdpa" : "eager"))
      for (int64_t ckpt : a.nums("checkpointing", "0,1")) {
        b.model->set_attention(parse_attention(att));
        b.model->gradient_checkpointing = ckpt != 0;
        std::vector<double> secs;
        reset_peak_memory(b.device);
        for (int64_t r = 0; r <= reps; ++r) {  // run 0 warms up
          b.model->zero_grad();
          synchronize(b.device);
          auto t0 = std::chrono::steady_clock::now();
          for (int64_t k = 0; k < N / mb; ++k) {
            auto rows = [&](const torch::Tensor& x) { return x.narrow(0, k * mb, mb); };
            auto lp = compute_logprobs_from_model(b.model, rows(ids), rows(attn), Tc, 1.0).logprobs;
            compute_policy_loss(lp, lp.detach(), rows(adv), rows(mask), PolicyLossConfig{}).loss.backward();
          }
          synchronize(b.device);
          if (r > 0) secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(secs.begin(), secs.end());
        const double s = secs[secs.size() / 2], rate = flops / s / 1e12;
        std::printf("| %s | %s | %.3f | %.0f | %.3g | %.1f%% | %s | %.0f |\n", att.c_str(), ckpt ? "per layer" : "off", s, tokens / s, rate,
                    100.0 * rate / peak_meas, peak_sheet > 0 ? (std::to_string(int(100.0 * rate / peak_sheet + 0.5)) + "%").c_str() : "-",
                    peak_memory_mb(b.device));
        std::fflush(stdout);
      }
  });
}
