// bench_step_memory: peak memory of one GRPO training step (forward + PPO loss + backward) with the
// real 151936-entry vocabulary, chunked log-probs (ours) vs the naive full (N, Tc, V) log_softmax,
// side by side. Each mode runs in its own child process; peak RSS is getrusage's high-water mark
// after the step minus the mark after setup (model, optimizer-free, inputs), i.e. the step's own memory.
//   bench_step_memory [--n 16] [--prompt 64] [--completion 128]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "grpo/grpo.h"

using namespace grpo;

namespace {

long max_rss_kb() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int run_mode(const std::string& mode, int64_t N, int64_t Tp, int64_t Tc) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.n_vocab = 151936, c.n_embd = 128, c.n_ff = 512, c.n_layer = 4, c.n_head = 4, c.n_kv_head = 2, c.head_dim = 32;
  c.tie_word_embeddings = true, c.attention_bias = true;
  auto model = init_qwen2(c, 1, 0.02);
  auto ids = torch::randint(0, 151000, {N, Tp + Tc}, torch::kInt64);
  auto attn = torch::ones({N, Tp + Tc}, torch::kInt64);
  auto mask = torch::ones({N, Tc});
  auto adv = torch::randn({N});
  const long base = max_rss_kb();
  auto t0 = std::chrono::steady_clock::now();
  torch::Tensor logp;
  if (mode == "chunked") {
    logp = compute_logprobs_from_model(model, ids, attn, Tc, 1.0, false).logprobs;
  } else {
    auto hidden = model->forward_hidden(ids, attn, positions_from_mask(attn)).narrow(1, Tp - 1, Tc);
    logp = naive_logprobs(hidden, model->output_weight(), ids.narrow(1, Tp, Tc), 1.0, false).logprobs;
  }
  PolicyLoss pl = compute_policy_loss(logp, logp.detach(), adv, mask, PolicyLossConfig{});
  pl.loss.backward();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("RESULT mode=%s base_kb=%ld peak_kb=%ld step_kb=%ld seconds=%.2f\n", mode.c_str(), base, max_rss_kb(),
              max_rss_kb() - base, secs);
  return 0;
}

long field(const std::string& out, const char* key) {
  auto p = out.find(key);
  return p == std::string::npos ? -1 : std::atol(out.c_str() + p + std::strlen(key));
}

}  // namespace

int main(int argc, char** argv) {
  init_runtime();
  int64_t N = 16, Tp = 64, Tc = 128;
  std::string mode;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
    if (!std::strcmp(argv[i], "--n")) N = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--prompt")) Tp = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--completion")) Tc = std::atoll(argv[i + 1]);
  }
  if (!mode.empty()) return run_mode(mode, N, Tp, Tc);
  std::printf("one training step, 20.4 M-param Qwen2 (vocab 151936, hidden 128, 4 layers), fp32 CPU\n");
  std::printf("N=%lld sequences, prompt %lld + completion %lld tokens; naive logits alone = N*Tc*V*4 B = %.0f MiB\n\n",
              (long long)N, (long long)Tp, (long long)Tc, N * Tc * 151936.0 * 4 / 1048576);
  std::printf("| log-probs | step peak MiB (over setup) | seconds |\n|---|---|---|\n");
  long kb[2];
  const char* modes[2] = {"naive", "chunked"};
  for (int m = 0; m < 2; ++m) {
    std::string cmd = std::string(argv[0]) + " --mode " + modes[m] + " --n " + std::to_string(N) + " --prompt " +
                      std::to_string(Tp) + " --completion " + std::to_string(Tc);
    FILE* f = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (f && std::fgets(buf, sizeof buf, f)) out += buf;
    if (!f || pclose(f) != 0) {
      std::fprintf(stderr, "child %s failed:\n%s\n", modes[m], out.c_str());
      return 1;
    }
    kb[m] = field(out, "step_kb=");
    auto sp = out.find("seconds=");
    std::printf("| %s | %.0f | %s |\n", modes[m], kb[m] / 1024.0, out.substr(sp + 8, out.find('\n', sp) - sp - 8).c_str());
  }
  std::printf("\nchunked / naive = %.3f (goal <= 0.25)\n", double(kb[1]) / kb[0]);
  return 0;
}
