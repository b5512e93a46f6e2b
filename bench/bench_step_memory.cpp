// bench_step_memory: peak memory of one GRPO training step (forward + PPO loss + backward) with the
// real 151936-entry vocabulary, side by side: the naive full (N, Tc, V) log_softmax, our chunked
// log-probs, and chunked log-probs + gradient checkpointing (each decoder layer recomputed in backward). Each mode runs in its own child
// process; peak RSS is getrusage's high-water mark after the step minus the mark after setup (model, optimizer-free, inputs), i.e. the
// step's own memory.
//   bench_step_memory [--n 16] [--prompt 64] [--completion 128] [--hidden 128] [--layers 4]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "grpo/base/device.h"
#include "grpo/model/model_io.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_step.h"

using namespace grpo;

namespace {

long max_rss_kb() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

ModelConfig bench_config(int64_t hidden, int64_t layers) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.n_vocab = 151936;
  c.n_embd = hidden;
  c.n_ff = 4 * hidden;
  c.n_layer = layers;
  c.n_head = hidden / 32;
  c.n_kv_head = 2;
  c.head_dim = 32;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  return c;
}

int run_mode(const std::string& mode, int64_t N, int64_t Tp, int64_t Tc, int64_t hidden, int64_t layers) {
  auto model = init_causal_lm(bench_config(hidden, layers), 1, 0.02);
  model->gradient_checkpointing = mode == "checkpointed";
  auto ids = torch::randint(0, 151000, {N, Tp + Tc}, torch::kInt64);
  auto attn = torch::ones({N, Tp + Tc}, torch::kInt64);
  auto mask = torch::ones({N, Tc});
  auto adv = torch::randn({N});
  const long base = max_rss_kb();
  auto t0 = std::chrono::steady_clock::now();
  torch::Tensor logp;
  if (mode != "naive") {
    logp = compute_logprobs_from_model(model, ids, attn, Tc, 1.0, false).logprobs;
  } else {
    auto hidden = model->forward_hidden(ids, attn, positions_from_mask(attn)).narrow(1, Tp - 1, Tc);
    logp = naive_logprobs(hidden, model->output_weight(), ids.narrow(1, Tp, Tc), 1.0, false).logprobs;
  }
  PolicyLoss pl = compute_policy_loss(logp, logp.detach(), adv, mask, PolicyLossConfig{});
  pl.loss.backward();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("RESULT mode=%s base_kb=%ld peak_kb=%ld step_kb=%ld seconds=%.2f\n", mode.c_str(), base, max_rss_kb(), max_rss_kb() - base,
              secs);
  return 0;
}

long field(const std::string& out, const char* key) {
  auto p = out.find(key);
  return p == std::string::npos ? -1 : std::atol(out.c_str() + p + std::strlen(key));
}

}  // namespace

int main(int argc, char** argv) {
  init_runtime();
  int64_t N = 16, Tp = 64, Tc = 128, hidden = 128, layers = 4;
  std::string mode;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
    if (!std::strcmp(argv[i], "--n")) N = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--prompt")) Tp = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--completion")) Tc = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--hidden")) hidden = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--layers")) layers = std::atoll(argv[i + 1]);
  }
  if (!mode.empty()) return run_mode(mode, N, Tp, Tc, hidden, layers);
  std::printf("one training step, %.1f M-param Qwen2 (vocab 151936, hidden %lld, %lld layers), fp32 CPU\n",
              bench_config(hidden, layers).n_params() / 1e6, (long long)hidden, (long long)layers);
  std::printf("N=%lld sequences, prompt %lld + completion %lld tokens; naive logits alone = N*Tc*V*4 B = %.0f MiB\n\n", (long long)N,
              (long long)Tp, (long long)Tc, N * Tc * 151936.0 * 4 / 1048576);
  std::printf("| log-probs | step peak MiB (over setup) | seconds |\n|---|---|---|\n");
  long kb[3];
  const char* modes[3] = {"naive", "chunked", "checkpointed"};
  for (int m = 0; m < 3; ++m) {
    std::string cmd = std::string(argv[0]) + " --mode " + modes[m] + " --n " + std::to_string(N) + " --prompt " + std::to_string(Tp) +
                      " --completion " + std::to_string(Tc) + " --hidden " + std::to_string(hidden) + " --layers " + std::to_string(layers);
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
  std::printf("\nchunked / naive = %.3f (goal <= 0.25); checkpointed / chunked = %.3f\n", double(kb[1]) / kb[0], double(kb[2]) / kb[1]);
  return 0;
}
