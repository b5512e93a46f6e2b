// sampler.cpp: the rollout engine; see sampler.h for the design.
#include "grpo/sampler.h"

#include <chrono>
#include <fstream>
#include <limits>

#include "grpo/common.h"
#include "grpo/dataset.h"
#include "grpo/device.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Counter-based randomness

namespace {

constexpr int64_t kMask32 = 0xFFFFFFFFll;

// Shifts as exact integer arithmetic (LibTorch 1.13's C++ API has no tensor shift operators);
// floor division is an arithmetic right shift, also for negative keys.
torch::Tensor shr(const torch::Tensor& x, int k) { return torch::div(x, int64_t(1) << k, "floor"); }
torch::Tensor shl(const torch::Tensor& x, int k) { return x * (int64_t(1) << k); }

// x * c mod 2^32 for x in [0, 2^32), in int64 arithmetic that never overflows (c split in halves).
torch::Tensor mul32(const torch::Tensor& x, uint32_t c) {
  const int64_t lo = c & 0xFFFF, hi = c >> 16;
  return (x * lo + shl((x * hi).bitwise_and(0xFFFF), 16)).bitwise_and(kMask32);
}

// MurmurHash3's 32-bit finaliser on int64 tensors holding 32-bit values.
torch::Tensor fmix32(torch::Tensor h) {
  h = h.bitwise_xor(shr(h, 16));
  h = mul32(h, 0x85EBCA6Bu);
  h = h.bitwise_xor(shr(h, 13));
  h = mul32(h, 0xC2B2AE35u);
  return h.bitwise_xor(shr(h, 16));
}

}  // namespace

uint64_t sequence_seed(uint64_t seed, uint64_t prompt_key, int64_t sample) {
  return splitmix64(splitmix64(seed) ^ splitmix64(prompt_key * 0x100000001B3ull + static_cast<uint64_t>(sample)));
}

torch::Tensor counter_uniform(const torch::Tensor& keys, int64_t step) {
  auto lo = keys.bitwise_and(kMask32), hi = shr(keys, 32).bitwise_and(kMask32);
  auto s = mul32(torch::full_like(keys, step & kMask32), 0x9E3779B9u);
  auto h1 = fmix32(lo.bitwise_xor(fmix32(hi.bitwise_xor(s))));
  auto h2 = fmix32(h1.bitwise_xor(0x68E31DA4));
  return shr(h1, 8).to(torch::kFloat64) * std::ldexp(1.0, -24) + shr(h2, 8).to(torch::kFloat64) * std::ldexp(1.0, -48);
}

// ---------------------------------------------------------------------------------------------
// Filters and the draw

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen, double penalty) {
  return torch::where(seen, torch::where(logits > 0, logits / penalty, logits * penalty), logits);
}

torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingParams& p) {
  const double neg_inf = -std::numeric_limits<float>::infinity();
  auto x = logits.to(torch::kFloat32) / p.temperature;  // (N, V)
  const int64_t V = x.size(-1);
  if (p.top_k > 0 && p.top_k < V) {
    auto kth = std::get<0>(x.topk(p.top_k, -1)).narrow(-1, p.top_k - 1, 1);  // (N, 1)
    x = x.masked_fill(x < kth, neg_inf);
  }
  auto probs = torch::softmax(x, -1);
  if (p.top_p < 1.0) {
    // Keep the smallest set of most likely ids whose mass reaches top_p (HF TopPLogitsWarper).
    auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
    auto before = sorted.cumsum(-1) - sorted;  // mass strictly before each id
    auto remove_sorted = before >= p.top_p;
    auto remove = torch::zeros_like(remove_sorted).scatter(-1, idx, remove_sorted);
    probs = probs.masked_fill(remove, 0.0);
  }
  if (p.min_p > 0.0) {
    auto pmax = std::get<0>(probs.max(-1, /*keepdim=*/true));
    probs = probs.masked_fill(probs < p.min_p * pmax, 0.0);
  }
  return probs / probs.sum(-1, /*keepdim=*/true);
}

torch::Tensor draw_from(const torch::Tensor& probs, const torch::Tensor& u) {
  // Inverse CDF with a float32 running sum (monotone, so ids of probability zero add nothing and
  // searchsorted(right) never lands on them); the target stays strictly below the row total.
  auto cdf = probs.to(torch::kFloat32).cumsum(-1);                              // (N, V)
  auto total = cdf.narrow(-1, cdf.size(-1) - 1, 1);                               // (N, 1)
  auto target = (u.to(torch::kFloat32).unsqueeze(-1) * total);
  target = torch::minimum(target, torch::nextafter(total, torch::zeros_like(total)));
  auto ids = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(-1);
  return ids.clamp_max(probs.size(-1) - 1);
}

DecodeMode parse_decode_mode(const std::string& s) {
  if (s == "eager") return DecodeMode::Eager;
  if (s == "static") return DecodeMode::Static;
  if (s == "cuda_graph") return DecodeMode::CudaGraph;
  throw Error("decode_mode: expected eager, static or cuda_graph, found " + quote(s));
}

void check_decode_mode(DecodeMode mode, const torch::Device& device) {
  if (mode == DecodeMode::CudaGraph && !(device.is_cuda() && built_with_cuda()))
    throw Error("decode_mode cuda_graph needs a CUDA build of grpo_train and a CUDA device (model is on " + device.str() + ")");
}

void apply_model_limits(SamplingParams& sp, const Tokenizer& tok, const SpecialIds& special, int64_t n_vocab) {
  sp.stop_ids.assign(special.eos.begin(), special.eos.end());
  sp.pad_id = special.pad;
  sp.n_allowed = static_cast<int64_t>(std::min<size_t>(tok.vocab_size(), static_cast<size_t>(n_vocab)));
}

std::vector<std::vector<int32_t>> completion_token_ids(const Rollout& r) {
  auto ids = r.completion_ids.to(torch::kCPU).contiguous(), mask = r.completion_mask.to(torch::kCPU).contiguous();
  auto ia = ids.accessor<int64_t, 2>(), ma = mask.accessor<int64_t, 2>();
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(ids.size(0)));
  for (int64_t n = 0; n < ids.size(0); ++n)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (ma[n][t]) out[n].push_back(static_cast<int32_t>(ia[n][t]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Memory check

int64_t check_kv_budget(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype,
                        const torch::Device& device, int64_t budget_bytes) {
  const int64_t need = KVCache::bytes_needed(cfg, n_seq, capacity, dtype);
  if (budget_bytes == 0 && device.is_cpu()) {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (mi >> key >> kb >> unit)
      if (key == "MemAvailable:") {
        budget_bytes = kb * 1024;
        break;
      }
  }
  if (budget_bytes > 0 && need > budget_bytes)
    throw Error("rollout KV cache needs " + std::to_string(need >> 20) + " MiB (" + std::to_string(n_seq) + " sequences x " +
                std::to_string(capacity) + " positions x " + std::to_string(cfg.n_layer) + " layers x 2 x " +
                std::to_string(cfg.n_kv_head) + " KV heads x " + std::to_string(cfg.head_dim) + " x " +
                std::to_string(torch::elementSize(dtype)) + " B) but only " + std::to_string(budget_bytes >> 20) +
                " MiB are available; lower prompts_per_step, group_size or max_new_tokens");
  return need;
}

// ---------------------------------------------------------------------------------------------
// The rollout

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0, const torch::Device& device) {
  synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Rollout generate(Qwen2ForCausalLM& model, const std::vector<std::vector<int32_t>>& prompts, int64_t G,
                 const SamplingParams& p, const std::vector<uint64_t>& prompt_keys) {
  TORCH_CHECK(!prompts.empty() && G >= 1, "generate: need at least one prompt and G >= 1");
  TORCH_CHECK(prompt_keys.empty() || prompt_keys.size() == prompts.size(), "generate: one prompt key per prompt");
  for (const auto& pr : prompts) TORCH_CHECK(!pr.empty(), "generate: empty prompt");
  torch::NoGradGuard no_grad;
  model->eval();
  const auto w = model->output_weight();
  const auto device = w.device();
  const auto dtype = w.scalar_type();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  const ModelConfig& cfg = model->cfg;
  const int64_t B = static_cast<int64_t>(prompts.size()), N = B * G, V = cfg.n_vocab, Tc = p.max_new_tokens;
  const double neg_inf = -std::numeric_limits<float>::infinity();

  Rollout r;
  PromptBatch pb = collate_prompts(prompts, p.pad_id);
  const int64_t Tp = pb.input_ids.size(1), capacity = Tp + Tc;
  r.kv_cache_bytes = check_kv_budget(cfg, N + B, capacity, dtype, device);
  for (auto len : pb.lengths) r.prefill_tokens += len;

  // ---- prefill the B prompts once, then give each of its G samples a copy of its cache
  auto t0 = std::chrono::steady_clock::now();
  auto ids_b = pb.input_ids.to(device), mask_b = pb.attention_mask.to(device);  // (B, Tp)
  KVCache cache = KVCache::allocate(cfg, B, capacity, torch::TensorOptions().dtype(dtype).device(device));
  auto hidden = model->forward_hidden(ids_b, mask_b, positions_from_mask(mask_b), &cache);  // (B, Tp, D)
  auto logits = model->logits(hidden.select(1, Tp - 1)).to(torch::kFloat32);               // (B, V)
  auto expand = torch::arange(B, i64).repeat_interleave(G);                                 // (N,)
  cache.select_rows(expand);
  logits = logits.index_select(0, expand);                                                  // (N, V)
  r.prompt_ids = ids_b.index_select(0, expand);
  r.prompt_mask = mask_b.index_select(0, expand);
  r.prefill_seconds = seconds_since(t0, device);

  // ---- per-sequence state (rows are compacted as sequences finish; `active` maps row -> sequence)
  t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> key_values(N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g)
      key_values[b * G + g] = static_cast<int64_t>(sequence_seed(p.seed, prompt_keys.empty() ? b : prompt_keys[b], g));
  auto keys = torch::tensor(key_values, torch::kInt64).to(device);                   // (N,)
  auto active = torch::arange(N, i64);                                                // (n,)
  auto full_mask = torch::cat({r.prompt_mask, torch::ones({N, Tc}, i64)}, 1);         // (n, Tp + Tc)
  auto pos = r.prompt_mask.sum(1);                                                    // (n,) next position
  auto done = torch::zeros({N}, i64.dtype(torch::kBool));                             // (n,)
  torch::Tensor seen;
  if (p.repetition_penalty != 1.0)
    seen = torch::zeros({N, V}, i64.dtype(torch::kBool)).scatter(1, r.prompt_ids, r.prompt_mask.to(torch::kBool));
  r.completion_ids = torch::full({N, Tc}, p.pad_id, i64);
  r.completion_mask = torch::zeros({N, Tc}, i64);
  r.logprobs = torch::zeros({N, Tc}, i64.dtype(torch::kFloat32));
  auto stop = torch::tensor(p.stop_ids.empty() ? std::vector<int64_t>{-1} : p.stop_ids, torch::kInt64).to(device);

  // ---- static-shape decode: inputs in fixed buffers, the step (optionally a CUDA graph) reads them
  check_decode_mode(p.decode, device);
  TORCH_CHECK(p.decode_bucket >= 1, "decode_bucket must be >= 1");
  torch::Tensor tok_buf, pos_buf, write_pos = torch::zeros({1}, i64), logits_out;
  int64_t attend = 0;
  CudaGraph graph;
  auto decode_static = [&] {
    auto h = model->forward_decode_static(tok_buf, full_mask, pos_buf, write_pos, cache, attend);  // (n, 1, D)
    logits_out = model->logits(h.squeeze(1)).to(torch::kFloat32);                                // (n, V)
  };

  for (int64_t t = 0; t < Tc; ++t) {
    // ---- choose the next id of every active row
    if (p.n_allowed > 0 && p.n_allowed < V) logits.narrow(1, p.n_allowed, V - p.n_allowed).fill_(neg_inf);
    if (seen.defined()) logits = apply_repetition_penalty(logits, seen, p.repetition_penalty);
    torch::Tensor tok, lp;
    if (p.greedy) {
      tok = logits.argmax(-1);
      lp = torch::log_softmax(logits / p.temperature, -1).gather(1, tok.unsqueeze(1)).squeeze(1);
    } else {
      auto probs = sampling_probs(logits, p);
      tok = draw_from(probs, counter_uniform(keys.index_select(0, active), t));
      lp = probs.gather(1, tok.unsqueeze(1)).squeeze(1).log();
    }
    auto live = done.logical_not();
    tok = torch::where(live, tok, torch::full_like(tok, p.pad_id));
    r.completion_ids.index_put_({active, t}, tok);
    r.completion_mask.index_put_({active, t}, live.to(torch::kInt64));
    r.logprobs.index_put_({active, t}, torch::where(live, lp, torch::zeros_like(lp)));
    if (p.on_token) {
      auto a = active.to(torch::kCPU), k = tok.to(torch::kCPU), l = live.to(torch::kCPU);
      for (int64_t i = 0; i < a.size(0); ++i)
        if (l[i].item<bool>()) p.on_token(a[i].item<int64_t>(), k[i].item<int64_t>());
    }
    done = done.logical_or(live.logical_and((tok.unsqueeze(1) == stop.unsqueeze(0)).any(1)));
    if (t + 1 == Tc) break;
    if (seen.defined()) seen.scatter_(1, tok.unsqueeze(1), true);
    // ---- every few steps the host looks: stop when all are done, drop finished rows
    if ((t + 1) % p.sync_every == 0) {
      const int64_t n = active.size(0), n_done = done.sum().item<int64_t>();
      if (n_done == n) break;
      if (n_done * 4 >= n) {
        auto keep = done.logical_not().nonzero().squeeze(1);
        ++r.compactions;
        cache.select_rows(keep);
        active = active.index_select(0, keep);
        full_mask = full_mask.index_select(0, keep);
        pos = pos.index_select(0, keep);
        done = done.index_select(0, keep);
        tok = tok.index_select(0, keep);
        if (seen.defined()) seen = seen.index_select(0, keep);
      }
    }
    // ---- one decode step for the active rows
    if (p.decode == DecodeMode::Eager) {
      auto h = model->forward_hidden(tok.unsqueeze(1), full_mask.narrow(1, 0, cache.length + 1), pos.unsqueeze(1), &cache);
      logits = model->logits(h.squeeze(1)).to(torch::kFloat32);  // (n, V)
    } else {
      const int64_t n = tok.size(0);
      const int64_t bucket = std::min(capacity, (cache.length / p.decode_bucket + 1) * p.decode_bucket);
      // A new batch size means compacted rows: new cache tensors, so a captured graph is stale too.
      const bool resized = !tok_buf.defined() || tok_buf.size(0) != n;
      if (resized) tok_buf = torch::empty({n, 1}, i64), pos_buf = torch::empty({n, 1}, i64);
      const bool stale = resized || bucket != attend;
      attend = bucket;
      tok_buf.copy_(tok.unsqueeze(1));
      pos_buf.copy_(pos.unsqueeze(1));
      write_pos.fill_(cache.length);
      if (p.decode == DecodeMode::CudaGraph) {
        // Later captures need only one warm-up (cuBLAS handles and workspaces already exist).
        if (stale) graph.capture(device, decode_static, r.graph_captures == 0 ? 2 : 1), ++r.graph_captures;
        graph.replay();
      } else {
        decode_static();
      }
      logits = logits_out;
      cache.length += 1;
    }
    pos = pos + 1;
  }
  r.decode_seconds = seconds_since(t0, device);
  r.decode_tokens = r.completion_mask.sum().item<int64_t>();
  // A sequence stopped if a stop id is inside its mask.
  auto stopped = ((r.completion_ids.unsqueeze(2) == stop.view({1, 1, -1})).any(2).logical_and(r.completion_mask.to(torch::kBool)))
                     .any(1).to(torch::kCPU);
  auto acc = stopped.accessor<bool, 1>();
  for (int64_t n = 0; n < N; ++n) r.finish.push_back(acc[n] ? FinishReason::Stop : FinishReason::Length);
  return r;
}

}  // namespace grpo
