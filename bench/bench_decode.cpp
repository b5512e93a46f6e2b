// bench_decode: decode throughput of our sampler at N sequences, for each decode mode (eager,
// static shapes, static captured as CUDA graphs), against the memory roofline of the same work:
// every decode step must read all weights once and each sequence's K/V so far, so
//   floor(step t) = (weight bytes + N * (P + t) * L * 2 * Hkv * hd * elem) / copy bandwidth,
// with the copy bandwidth measured here (bytes read + written by a large device copy). The
// transformers side of the comparison is scripts/hf_reference.py bench-generate on the same model
// directory, batch and lengths.
//   bench_decode (--model DIR | --config JSON) [--device auto] [--dtype auto] [--n 64,128]
//                [--prompt 128] [--new 256] [--modes eager,static,cuda_graph] [--attention eager]
//                [--reps 2] [--count-ops 0]
// Every sequence runs exactly --new tokens (no stop ids), greedy, prompts of --prompt random ids.
// --count-ops 1 adds the device-independent side of the profile: the ATen ops that launch work
// (leaves of the op tree, views and allocations left out) per decode step, by op, from a
// RecordFunction observer: (ops of a rollout with --new tokens - ops of one with 1) / (new - 1).
// With CUDA graphs each such op is one kernel node replayed per step, and at small batch the
// per-kernel cost, not the bytes, bounds the step.
#include <ATen/record_function.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "bench_common.h"
#include "grpo/engine/sampler.h"

using namespace grpo;
using namespace grpo::bench;

namespace {

// ---- counting the leaf ATen ops of a piece of work (one thread: the dispatcher calls of generate)

std::map<std::string, int64_t>* g_counts = nullptr;
// Per open op: does it launch no work itself (a view, an allocation, or host arithmetic on 0-dim
// tensors such as wrapped scalars), and did an op that launches work start inside it?
struct OpenOp {
  bool no_work = false, has_child = false;
};
thread_local std::vector<OpenOp> t_open;

const std::set<std::string>& no_kernel_ops() {
  // clang-format off
  static const std::set<std::string> s = {
      "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::view", "aten::_reshape_alias",
      "aten::as_strided", "aten::transpose", "aten::t", "aten::narrow", "aten::slice", "aten::select",
      "aten::unsqueeze", "aten::squeeze", "aten::expand", "aten::permute", "aten::alias",
      "aten::resize_", "aten::detach", "aten::lift_fresh", "aten::_unsafe_view", "aten::split",
      "aten::chunk", "aten::item", "aten::_local_scalar_dense", "aten::result_type", "aten::is_nonzero",
      "aten::reshape", "aten::contiguous", "aten::to", "aten::_to_copy", "aten::size", "aten::stride",
      "aten::set_", "aten::unbind", "aten::expand_as", "aten::view_as", "aten::resolve_conj",
      "aten::resolve_neg", "aten::squeeze_", "aten::unsqueeze_", "aten::dim", "aten::numel"};
  // clang-format on
  return s;
}

bool only_scalar_tensors(const at::RecordFunction& f) {
  bool any = false;
  for (const auto& v : f.inputs())
    if (v.isTensor() && v.toTensor().defined()) {
      if (v.toTensor().dim() > 0) return false;
      any = true;
    }
  return any;
}

std::map<std::string, int64_t> count_ops(const std::function<void()>& fn) {
  std::map<std::string, int64_t> counts;
  g_counts = &counts;
  auto handle = at::addGlobalCallback(at::RecordFunctionCallback(
                                          [](const at::RecordFunction& f) -> std::unique_ptr<at::ObserverContext> {
                                            OpenOp op;
                                            op.no_work = no_kernel_ops().count(f.name()) || only_scalar_tensors(f);
                                            if (!t_open.empty() && !op.no_work) t_open.back().has_child = true;
                                            t_open.push_back(op);
                                            return nullptr;
                                          },
                                          [](const at::RecordFunction& f, at::ObserverContext*) {
                                            if (t_open.empty()) return;
                                            const OpenOp op = t_open.back();
                                            t_open.pop_back();
                                            if (!op.no_work && !op.has_child && g_counts) ++(*g_counts)[f.name()];
                                          })
                                          .needsInputs(true)
                                          .scopes({at::RecordScope::FUNCTION}));
  fn();
  at::removeCallback(handle);
  g_counts = nullptr;
  return counts;
}

void print_op_counts(BenchModel& b, const std::vector<std::vector<int32_t>>& prompts, SamplingParams sp, int64_t T) {
  sp.decoder = std::make_shared<StaticDecodeState>();
  generate(b.model, prompts, 1, sp);  // shapes set up (and graphs captured) outside the count
  auto one = sp;
  one.max_new_tokens = 1;
  auto base = count_ops([&] { generate(b.model, prompts, 1, one); });
  auto full = count_ops([&] { generate(b.model, prompts, 1, sp); });
  std::vector<std::pair<double, std::string>> rows;
  double total = 0;
  for (const auto& [name, n] : full) {
    const double per_step = double(n - (base.count(name) ? base[name] : 0)) / double(T - 1);
    if (per_step > 0) {
      rows.push_back({per_step, name});
      total += per_step;
    }
  }
  std::sort(rows.rbegin(), rows.rend());
  std::printf(
      "\nATen ops that launch work, per decode step (%s decode, %lld layers): %.1f in all, %.1f "
      "per layer with the ops outside the layers spread over them (runs with two layer counts "
      "separate the two)\n",
      sp.decode == DecodeMode::Eager ? "eager" : "static", (long long)b.model->cfg.n_layer, total, total / double(b.model->cfg.n_layer));
  std::printf("| op | per step |\n|---|---|\n");
  for (const auto& [n, name] : rows) std::printf("| %s | %.2f |\n", name.c_str(), n);
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench_decode", argc, argv, [](const Args& a, BenchModel& b) {
    const ModelConfig& c = b.model->cfg;
    b.model->set_attention(parse_attention(a.str("attention", "eager")));
    const int64_t P = a.num("prompt", 128), T = a.num("new", 256), reps = a.num("reps", 2);
    const auto ns = a.nums("n", "64,128");
    const double bw = measure_copy_bandwidth_gbps(b.device, b.device.is_cuda() ? int64_t(2) << 30 : int64_t(256) << 20);
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
      for (int64_t t = 1; t < T; ++t) floor_s += (W + double(N) * (P + t) * c.n_layer * 2 * c.n_kv_head * c.head_dim * es) / (bw * 1e9);
      std::vector<std::vector<int32_t>> prompts(N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < P; ++i)
          prompts[n].push_back(static_cast<int32_t>(splitmix64(uint64_t(n) * 1000003u + i) % std::min<int64_t>(c.n_vocab, 150000)));
      for (const auto& mode_name : a.strs("modes", b.device.is_cuda() && built_with_cuda() ? "eager,static,cuda_graph" : "eager,static")) {
        SamplingParams sp;
        sp.greedy = true;
        sp.max_new_tokens = T;
        sp.decode = parse_decode_mode(mode_name);
        sp.pad_id = 0;
        sp.decoder = std::make_shared<StaticDecodeState>();  // as in training: kept across rollouts
        std::vector<double> secs;
        int64_t first_captures = 0, later_captures = 0;
        // Run 0 warms up (allocator, cuBLAS) and captures the graphs.
        for (int64_t r = 0; r <= reps; ++r) {
          Rollout out = generate(b.model, prompts, 1, sp);
          if (r == 0) first_captures = out.graph_captures;
          if (r > 0) {
            secs.push_back(out.decode_seconds);
            later_captures += out.graph_captures;
          }
        }
        std::sort(secs.begin(), secs.end());
        const double s = secs[secs.size() / 2], steps = double(T - 1);
        std::printf("| %lld | %s | %.0f | %.2f | %.2f | %.0f%% | %lld / %lld |\n", (long long)N, mode_name.c_str(), N * T / s,
                    1e3 * s / steps, 1e3 * floor_s / steps, 100.0 * floor_s / s, (long long)first_captures, (long long)later_captures);
        std::fflush(stdout);
      }
      if (a.num("count-ops", 0) && N == ns.back()) {
        SamplingParams sp;
        sp.greedy = true;
        sp.max_new_tokens = T;
        sp.decode = DecodeMode::Static;  // the step a graph captures, run op by op
        print_op_counts(b, prompts, sp, T);
      }
    }
  });
}
