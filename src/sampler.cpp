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

namespace {

// The hash of (key, step) for int64 tensors `keys` and `steps` that broadcast against each other.
torch::Tensor hash_uniform(const torch::Tensor& keys, const torch::Tensor& steps) {
  auto lo = keys.bitwise_and(kMask32), hi = shr(keys, 32).bitwise_and(kMask32);
  auto s = mul32(steps.bitwise_and(kMask32), 0x9E3779B9u);
  auto h1 = fmix32(lo.bitwise_xor(fmix32(hi.bitwise_xor(s))));
  auto h2 = fmix32(h1.bitwise_xor(0x68E31DA4));
  return shr(h1, 8).to(torch::kFloat64) * std::ldexp(1.0, -24) + shr(h2, 8).to(torch::kFloat64) * std::ldexp(1.0, -48);
}

}  // namespace

torch::Tensor counter_uniform(const torch::Tensor& keys, int64_t step) {
  return hash_uniform(keys, torch::full_like(keys, step));
}

torch::Tensor counter_uniform_table(const torch::Tensor& keys, int64_t n_steps) {
  return hash_uniform(keys.unsqueeze(1), torch::arange(n_steps, keys.options()).unsqueeze(0));  // (N, n_steps)
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

DecodeMode parse_decode_mode(const std::string& s) { return parse_choice<DecodeMode>(s, "decode_mode"); }

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
// Static decode state (see sampler.h)

namespace {

// Rows the static step runs for n live sequences of a call with N: N itself, then powers of two.
int64_t ladder_rows(int64_t n, int64_t N) {
  int64_t r = 1;
  while (r < n) r *= 2;
  return std::min(r, N);
}

std::vector<const void*> weight_pointers(Qwen2ForCausalLM& model) {
  std::vector<const void*> out;
  for (const auto& t : model->parameters()) out.push_back(t.data_ptr());
  return out;
}

// Make `d` hold buffers for at least `rows` sequences x `capacity` positions of `model`, keeping
// what it has (and its graphs) when they fit.
void fit(StaticDecoder& d, Qwen2ForCausalLM& model, int64_t rows, int64_t capacity) {
  auto weights = weight_pointers(model);
  const bool same_model = d.model == model.get() && d.weights == weights && d.attention == model->attention;
  if (same_model && d.rows >= rows && d.capacity >= capacity) return;
  if (same_model) rows = std::max(rows, d.rows), capacity = std::max(capacity, d.capacity);
  // Free the old buffers first: the new ones may not fit beside them.
  d.steps.clear();
  d.cache = KVCache();
  d.key_mask = d.tok = d.pos = d.write_pos = d.logits = torch::Tensor();
  const auto w = model->output_weight();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(w.device());
  check_kv_budget(model->cfg, rows, capacity, w.scalar_type(), w.device());
  // Zeros, not empty: masked positions are multiplied by 0, and 0 * NaN would poison a row.
  d.cache = KVCache::allocate(model->cfg, rows, capacity, w.options());
  d.key_mask = torch::zeros({rows, capacity}, i64);
  d.tok = torch::zeros({rows, 1}, i64);
  d.pos = torch::zeros({rows, 1}, i64);
  d.write_pos = torch::zeros({1}, i64);
  d.logits = torch::zeros({rows, model->cfg.n_vocab}, i64.dtype(torch::kFloat32));
  d.model = model.get();
  d.weights = std::move(weights);
  d.attention = model->attention;
  d.rows = rows;
  d.capacity = capacity;
}

// Keep rows `keep` (ascending) of the live batch, moved to the front of every buffer.
void compact_in_place(StaticDecoder& d, const torch::Tensor& keep) {
  const int64_t m = keep.size(0);
  for (auto* list : {&d.cache.k, &d.cache.v})
    for (auto& t : *list) t.narrow(0, 0, m).copy_(t.index_select(0, keep));
  d.key_mask.narrow(0, 0, m).copy_(d.key_mask.index_select(0, keep));
}

// One decode step over the decoder's first `rows` rows, attending `attend` cache positions: the
// inputs are already in d.tok / d.pos / d.write_pos, the output lands in d.logits. With `graph`,
// a shape met for the first time is captured, and every step replays its graph.
void decode_step(StaticDecoder& d, Qwen2ForCausalLM& model, int64_t rows, int64_t attend, bool graph, Rollout& r) {
  auto [it, fresh] = d.steps.try_emplace({rows, attend});
  StaticDecoder::Step& s = it->second;
  if (fresh) {
    ++r.decode_shapes;
    s.view.capacity = d.capacity;
    for (int64_t l = 0; l < model->cfg.n_layer; ++l) {
      s.view.k.push_back(d.cache.k[l].narrow(0, 0, rows));
      s.view.v.push_back(d.cache.v[l].narrow(0, 0, rows));
    }
  }
  auto step = [&] {
    auto h = model->forward_decode_static(d.tok.narrow(0, 0, rows), d.key_mask.narrow(0, 0, rows),
                                          d.pos.narrow(0, 0, rows), d.write_pos, s.view, attend);  // (rows, 1, D)
    d.logits.narrow(0, 0, rows).copy_(model->logits(h.squeeze(1)));                              // (rows, V)
  };
  if (!graph) return step();
  if (!s.captured) {
    // Later captures need one warm-up only (cuBLAS handles and workspaces already exist).
    s.graph.capture(d.write_pos.device(), step, d.graph_captures == 0 ? 2 : 1);
    s.captured = true;
    ++d.graph_captures, ++r.graph_captures;
  }
  s.graph.replay();
}

}  // namespace

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
  for (auto len : pb.lengths) r.prefill_tokens += len;
  // Eager decodes in the prefill's cache (N rows after the copy); static shapes decode in the
  // decoder's buffers, and the prefill cache holds the prompts only.
  check_decode_mode(p.decode, device);
  TORCH_CHECK(p.decode_bucket >= 1, "decode_bucket must be >= 1");
  std::shared_ptr<StaticDecoder> dec;
  if (p.decode != DecodeMode::Eager) {
    dec = p.decoder ? p.decoder : std::make_shared<StaticDecoder>();
    fit(*dec, model, N, (capacity + p.decode_bucket - 1) / p.decode_bucket * p.decode_bucket);
    r.kv_cache_bytes = KVCache::bytes_needed(cfg, dec->rows, dec->capacity, dtype) + check_kv_budget(cfg, B, Tp, dtype, device);
  } else {
    r.kv_cache_bytes = check_kv_budget(cfg, N + B, capacity, dtype, device);
  }

  // ---- prefill the B prompts once, then give each of its G samples a copy of its cache
  auto t0 = std::chrono::steady_clock::now();
  auto ids_b = pb.input_ids.to(device), mask_b = pb.attention_mask.to(device);  // (B, Tp)
  KVCache cache = KVCache::allocate(cfg, B, dec ? Tp : capacity, torch::TensorOptions().dtype(dtype).device(device));
  auto hidden = model->forward_hidden(ids_b, mask_b, positions_from_mask(mask_b), &cache);  // (B, Tp, D)
  auto logits = model->logits(hidden.select(1, Tp - 1)).to(torch::kFloat32);               // (B, V)
  auto expand = torch::arange(B, i64).repeat_interleave(G);                                 // (N,)
  logits = logits.index_select(0, expand);                                                  // (N, V)
  r.prompt_ids = ids_b.index_select(0, expand);
  r.prompt_mask = mask_b.index_select(0, expand);
  if (dec) {
    // Positions past Tp keep an earlier call's K/V: the step masks every position after its own.
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      dec->cache.k[l].narrow(0, 0, N).narrow(2, 0, Tp).copy_(cache.k[l].index_select(0, expand));
      dec->cache.v[l].narrow(0, 0, N).narrow(2, 0, Tp).copy_(cache.v[l].index_select(0, expand));
    }
    dec->cache.length = Tp;
    auto key_mask = dec->key_mask.narrow(0, 0, N);  // (N, capacity)
    key_mask.fill_(1);
    key_mask.narrow(1, 0, Tp).copy_(r.prompt_mask);
    cache = KVCache();
  } else {
    cache.select_rows(expand);
  }
  r.prefill_seconds = seconds_since(t0, device);

  // ---- per-sequence state (rows are compacted as sequences finish; `active` maps row -> sequence)
  t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> key_values(N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g)
      key_values[b * G + g] = static_cast<int64_t>(sequence_seed(p.seed, prompt_keys.empty() ? b : prompt_keys[b], g));
  auto keys = torch::tensor(key_values, torch::kInt64).to(device);                   // (N,)
  torch::Tensor uniforms;                                                             // (N, Tc)
  if (!p.greedy) uniforms = counter_uniform_table(keys, Tc);
  auto active = torch::arange(N, i64);                                                // (n,)
  torch::Tensor full_mask;                                                            // (n, Tp + Tc), eager only
  if (!dec) full_mask = torch::cat({r.prompt_mask, torch::ones({N, Tc}, i64)}, 1);
  auto pos = r.prompt_mask.sum(1);                                                    // (n,) next position
  auto done = torch::zeros({N}, i64.dtype(torch::kBool));                             // (n,)
  torch::Tensor seen;
  if (p.repetition_penalty != 1.0)
    seen = torch::zeros({N, V}, i64.dtype(torch::kBool)).scatter(1, r.prompt_ids, r.prompt_mask.to(torch::kBool));
  r.completion_ids = torch::full({N, Tc}, p.pad_id, i64);
  r.completion_mask = torch::zeros({N, Tc}, i64);
  r.logprobs = torch::zeros({N, Tc}, i64.dtype(torch::kFloat32));
  auto stop = torch::tensor(p.stop_ids.empty() ? std::vector<int64_t>{-1} : p.stop_ids, torch::kInt64).to(device);

  int64_t rows = N;  // static shapes: the ladder size the step runs (>= the live rows)

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
      tok = draw_from(probs, uniforms.select(1, t).index_select(0, active));
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
      // Eager drops rows once a quarter are done; static shapes when the ladder steps down.
      const int64_t next_rows = dec ? ladder_rows(n - n_done, N) : 0;
      if (dec ? next_rows < rows : n_done * 4 >= n) {
        auto keep = done.logical_not().nonzero().squeeze(1);
        ++r.compactions;
        if (dec) {
          compact_in_place(*dec, keep);
          rows = next_rows;
        } else {
          cache.select_rows(keep);
          full_mask = full_mask.index_select(0, keep);
        }
        active = active.index_select(0, keep);
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
      const int64_t attend = std::min(dec->capacity, (dec->cache.length / p.decode_bucket + 1) * p.decode_bucket);
      dec->tok.narrow(0, 0, n).copy_(tok.unsqueeze(1));
      dec->pos.narrow(0, 0, n).copy_(pos.unsqueeze(1));
      dec->write_pos.fill_(dec->cache.length);
      decode_step(*dec, model, rows, attend, p.decode == DecodeMode::CudaGraph, r);
      logits = dec->logits.narrow(0, 0, n);  // (n, V)
      dec->cache.length += 1;
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
