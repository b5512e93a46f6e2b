// sampler.cpp: the rollout engine; see sampler.h for the design.
#include "grpo/engine/sampler.h"

#include <chrono>
#include <fstream>
#include <limits>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/engine/dataset.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Counter-based randomness

namespace {

constexpr int64_t kMask32 = 0xFFFFFFFFll;

bool has_tools(const SamplingParams& p) {
  return static_cast<bool>(p.tools.run);
}

// Shifts as exact integer arithmetic (LibTorch 1.13's C++ API has no tensor shift operators);
// floor division is an arithmetic right shift, also for negative keys.
torch::Tensor shr(const torch::Tensor& x, int k) {
  return torch::div(x, int64_t(1) << k, "floor");
}
torch::Tensor shl(const torch::Tensor& x, int k) {
  return x * (int64_t(1) << k);
}

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
  auto cdf = probs.to(torch::kFloat32).cumsum(-1);   // (N, V)
  auto total = cdf.narrow(-1, cdf.size(-1) - 1, 1);  // (N, 1)
  auto target = (u.to(torch::kFloat32).unsqueeze(-1) * total);
  target = torch::minimum(target, torch::nextafter(total, torch::zeros_like(total)));
  auto ids = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(-1);
  return ids.clamp_max(probs.size(-1) - 1);
}

DecodeMode parse_decode_mode(const std::string& s) {
  return parse_choice<DecodeMode>(s, "decode_mode");
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

int64_t completion_width(int64_t max_new_tokens, int64_t tool_turns, int64_t max_reply_ids, int64_t sync_every) {
  return max_new_tokens + tool_turns * (max_reply_ids + sync_every);
}

int64_t completion_width(const SamplingParams& p) {
  return completion_width(p.max_new_tokens, has_tools(p) ? p.tools.max_turns : 0, p.tools.max_reply_ids, p.sync_every);
}

namespace {

// The values of `x` (N, Tc) inside each sequence's completion mask.
std::vector<std::vector<int32_t>> inside_mask(const Rollout& r, const torch::Tensor& x) {
  auto ids = x.to(torch::kCPU).contiguous(), mask = r.completion_mask.to(torch::kCPU).contiguous();
  auto ia = ids.accessor<int64_t, 2>(), ma = mask.accessor<int64_t, 2>();
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(ids.size(0)));
  for (int64_t n = 0; n < ids.size(0); ++n)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (ma[n][t]) out[n].push_back(static_cast<int32_t>(ia[n][t]));
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> completion_token_ids(const Rollout& r) {
  return inside_mask(r, r.completion_ids);
}

std::vector<std::vector<int32_t>> completion_own_flags(const Rollout& r) {
  return inside_mask(r, r.own_mask());
}

// ---------------------------------------------------------------------------------------------
// The rollout

namespace {

// The state of the N sequences as they grow. Rows are compacted as sequences finish: `active` maps
// a live row to its sequence; the per-row tensors below hold the live rows only.
struct DecodeRows {
  torch::Tensor active;    // (n,) sequence index of each live row
  torch::Tensor pos;       // (n,) the next position
  torch::Tensor done;      // (n,) bool
  torch::Tensor tok;       // (n,) the last id
  torch::Tensor seen;      // (n, V) bool, repetition penalty only
  torch::Tensor uniforms;  // (N, Tc) the counter-based draws (sampling only)
  torch::Tensor valid;     // (n,) bool, with tools: the last id is not a hole (see sampler.h)
  // With tools: (N, Tc) the ids to force (-1 = sample); (n,) the model's ids so far, and whether
  // the current turn wrote the call-end id; per sequence, the column its current turn began at.
  torch::Tensor forced, n_model, call_open;
  std::vector<int64_t> turn_start;
};

DecodeRows start_rows(const Rollout& r, const SamplingParams& p, const std::vector<uint64_t>& prompt_keys, int64_t B, int64_t G,
                      int64_t V) {
  const auto i64 = r.prompt_mask.options();
  const int64_t N = B * G;
  DecodeRows s;
  std::vector<int64_t> key_values(N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g)
      key_values[b * G + g] = static_cast<int64_t>(sequence_seed(p.seed, prompt_keys.empty() ? b : prompt_keys[b], g));
  auto keys = torch::tensor(key_values, torch::kInt64).to(i64.device());  // (N,)
  if (!p.greedy) s.uniforms = counter_uniform_table(keys, p.max_new_tokens);
  s.active = torch::arange(N, i64);
  s.pos = r.prompt_mask.sum(1);
  s.done = torch::zeros({N}, i64.dtype(torch::kBool));
  if (p.repetition_penalty != 1.0)
    s.seen = torch::zeros({N, V}, i64.dtype(torch::kBool)).scatter(1, r.prompt_ids, r.prompt_mask.to(torch::kBool));
  if (has_tools(p)) {
    s.forced = torch::full({N, completion_width(p)}, -1, i64);
    s.n_model = torch::zeros({N}, i64);
    s.call_open = torch::zeros({N}, i64.dtype(torch::kBool));
    s.turn_start.assign(static_cast<size_t>(N), 0);
  }
  return s;
}

// Choose position t's id of every live row from its logits (n, V), and record it.
void choose_tokens(torch::Tensor logits, int64_t t, const SamplingParams& p, const torch::Tensor& stop, DecodeRows& s, Rollout& r) {
  const int64_t V = logits.size(1);
  if (p.n_allowed > 0 && p.n_allowed < V) logits.narrow(1, p.n_allowed, V - p.n_allowed).fill_(-std::numeric_limits<float>::infinity());
  if (s.seen.defined()) logits = apply_repetition_penalty(logits, s.seen, p.repetition_penalty);
  torch::Tensor tok, lp;
  if (p.greedy) {
    tok = logits.argmax(-1);
    lp = torch::log_softmax(logits / p.temperature, -1).gather(1, tok.unsqueeze(1)).squeeze(1);
  } else {
    auto probs = sampling_probs(logits, p);
    // The k-th draw of a sequence is its k-th model id, wherever tool answers and holes put it.
    auto u = s.n_model.defined()
                 ? s.uniforms.index_select(0, s.active).gather(1, s.n_model.clamp_max(p.max_new_tokens - 1).unsqueeze(1)).squeeze(1)
                 : s.uniforms.select(1, t).index_select(0, s.active);
    tok = draw_from(probs, u);
    lp = probs.gather(1, tok.unsqueeze(1)).squeeze(1).log();
  }
  auto live = s.done.logical_not();
  auto own = live;  // (n,) the model's own ids (with tools, not a forced tool answer)
  if (has_tools(p)) {
    auto f = s.forced.index({s.active, t});  // (n,)
    own = live.logical_and(f < 0);
    tok = torch::where(f >= 0, f, tok);
    lp = torch::where(own, lp, torch::zeros_like(lp));
    r.loss_mask.index_put_({s.active, t}, own.to(torch::kInt64));
    s.n_model = s.n_model + own.to(torch::kInt64);
    s.valid = live;
  }
  auto stops = own.logical_and((tok.unsqueeze(1) == stop.unsqueeze(0)).any(1));  // (n,) the model chose a stop id
  if (has_tools(p)) {
    // A turn cut by the model's budget ends the sequence, call or not.
    auto out_of_budget = live.logical_and(s.n_model >= p.max_new_tokens).logical_and(stops.logical_not());
    s.call_open = s.call_open.logical_or(own.logical_and(tok == p.tools.call_end_id)).logical_and(out_of_budget.logical_not());
    stops = stops.logical_or(out_of_budget);
  }
  tok = torch::where(live, tok, torch::full_like(tok, p.pad_id));
  r.completion_ids.index_put_({s.active, t}, tok);
  r.completion_mask.index_put_({s.active, t}, live.to(torch::kInt64));
  r.logprobs.index_put_({s.active, t}, torch::where(live, lp, torch::zeros_like(lp)));
  if (p.on_token) {
    auto a = s.active.to(torch::kCPU), k = tok.to(torch::kCPU), l = live.to(torch::kCPU);
    for (int64_t i = 0; i < a.size(0); ++i)
      if (l[i].item<bool>()) p.on_token(a[i].item<int64_t>(), k[i].item<int64_t>());
  }
  s.done = s.done.logical_or(stops);
  s.tok = tok;
}

// With tools, at a host look after column t: the sequences that stopped right after a call get
// their turns to the hook together; those it answers are resumed with the answer forced from
// column t + 1 (see sampler.h).
void serve_tool_calls(int64_t t, const SamplingParams& p, DecodeRows& s, Rollout& r) {
  auto waiting = s.done.logical_and(s.call_open).nonzero().squeeze(1);  // (k,) live rows
  if (waiting.size(0) == 0) return;
  s.call_open.index_put_({waiting}, false);
  auto seqs_dev = s.active.index_select(0, waiting);
  auto seqs = seqs_dev.to(torch::kCPU), rows = waiting.to(torch::kCPU);
  auto ids = r.completion_ids.index_select(0, seqs_dev).narrow(1, 0, t + 1).to(torch::kCPU).contiguous();
  auto own = r.loss_mask.index_select(0, seqs_dev).narrow(1, 0, t + 1).to(torch::kCPU).contiguous();
  auto ia = ids.accessor<int64_t, 2>(), oa = own.accessor<int64_t, 2>();
  std::vector<int64_t> asked, asked_rows;
  std::vector<std::vector<int32_t>> turns;
  for (int64_t i = 0; i < seqs.size(0); ++i) {
    const int64_t n = seqs[i].item<int64_t>();
    if (r.tool_turns[n] >= p.tools.max_turns) continue;  // a call past the limit ends the sequence
    std::vector<int32_t> turn;
    for (int64_t c = s.turn_start[n]; c <= t; ++c)
      if (oa[i][c]) turn.push_back(static_cast<int32_t>(ia[i][c]));
    asked.push_back(n);
    asked_rows.push_back(rows[i].item<int64_t>());
    turns.push_back(std::move(turn));
  }
  if (asked.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  auto answers = p.tools.run(asked, turns);
  r.tool_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  TORCH_CHECK(answers.size() == asked.size(), "tools.run: one answer per sequence");
  const int64_t width = s.forced.size(1);
  std::vector<int64_t> resumed;
  for (size_t i = 0; i < asked.size(); ++i) {
    const auto& a = answers[i];
    const int64_t n = asked[i], len = static_cast<int64_t>(a.size());
    TORCH_CHECK(len <= p.tools.max_reply_ids, "tools.run: an answer of ", len, " ids, above max_reply_ids = ", p.tools.max_reply_ids);
    if (len == 0 || t + 1 + len >= width) continue;  // (the width reserves room, so only an empty answer ends it)
    std::vector<int64_t> a64(a.begin(), a.end());
    s.forced[n].narrow(0, t + 1, len).copy_(torch::tensor(a64, torch::kInt64));
    s.turn_start[n] = t + 1 + len;
    ++r.tool_turns[n];
    resumed.push_back(asked_rows[i]);
  }
  if (!resumed.empty()) s.done.index_put_({torch::tensor(resumed, torch::kInt64).to(s.done.device())}, false);
}

// Every sync_every steps the host looks: false when every row is done; drops finished rows when
// the decoder wants it.
bool keep_going(int64_t t, const SamplingParams& p, Decoder& dec, DecodeRows& s, Rollout& r) {
  if ((t + 1) % p.sync_every != 0) return true;
  if (has_tools(p)) serve_tool_calls(t, p, s, r);
  const int64_t n = s.active.size(0), n_done = s.done.sum().item<int64_t>();
  if (n_done == n) return false;
  if (!dec.wants_compaction(n, n_done)) return true;
  auto keep = s.done.logical_not().nonzero().squeeze(1);
  ++r.compactions;
  dec.compact(keep);
  for (torch::Tensor* x : {&s.active, &s.pos, &s.done, &s.tok}) *x = x->index_select(0, keep);
  for (torch::Tensor* x : {&s.seen, &s.valid, &s.n_model, &s.call_open})
    if (x->defined()) *x = x->index_select(0, keep);
  return true;
}

// A sequence stopped if its last id is a stop id the model chose (a tool answer's <|im_end|> is not).
void set_finish_reasons(Rollout& r, const torch::Tensor& stop) {
  const auto& own = r.own_mask();  // (N, Tc)
  auto col = torch::arange(1, own.size(1) + 1, own.options());
  auto last = (r.completion_mask * col).argmax(1, /*keepdim=*/true);  // (N, 1) the last attended column
  auto last_id = r.completion_ids.gather(1, last), last_own = own.gather(1, last).to(torch::kBool);
  auto stopped = (last_id == stop.view({1, -1})).any(1).logical_and(last_own.squeeze(1)).to(torch::kCPU);
  auto acc = stopped.accessor<bool, 1>();
  for (int64_t n = 0; n < stopped.size(0); ++n) r.finish.push_back(acc[n] ? FinishReason::Stop : FinishReason::Length);
}

}  // namespace

Rollout generate(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts, int64_t G, const SamplingParams& p,
                 const std::vector<uint64_t>& prompt_keys) {
  TORCH_CHECK(!prompts.empty() && G >= 1, "generate: need at least one prompt and G >= 1");
  TORCH_CHECK(prompt_keys.empty() || prompt_keys.size() == prompts.size(), "generate: one prompt key per prompt");
  for (const auto& pr : prompts) TORCH_CHECK(!pr.empty(), "generate: empty prompt");
  torch::NoGradGuard no_grad;
  model->eval();
  const auto w = model->output_weight();
  const auto device = w.device();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  const ModelConfig& cfg = model->cfg;
  const int64_t B = static_cast<int64_t>(prompts.size()), N = B * G, Tc = completion_width(p);
  Rollout r;
  PromptBatch pb = collate_prompts(prompts, p.pad_id);
  const int64_t Tp = pb.input_ids.size(1);
  for (auto len : pb.lengths) r.prefill_tokens += len;
  auto dec = make_decoder(model, p.decode, p.decoder, B, N, Tp, Tc, p.decode_bucket, r.kv_cache_bytes);

  // ---- prefill the B prompts once, then give each of its G samples a copy of its cache
  auto t0 = std::chrono::steady_clock::now();
  auto ids_b = pb.input_ids.to(device), mask_b = pb.attention_mask.to(device);  // (B, Tp)
  KVCache cache = KVCache::allocate(cfg, B, dec->prefill_capacity(Tp, Tc), w.options());
  auto hidden = model->forward_hidden(ids_b, mask_b, positions_from_mask(mask_b), &cache);  // (B, Tp, D)
  auto logits = model->logits(hidden.select(1, Tp - 1)).to(torch::kFloat32);                // (B, V)
  auto expand = torch::arange(B, i64).repeat_interleave(G);                                 // (N,)
  logits = logits.index_select(0, expand);                                                  // (N, V)
  r.prompt_ids = ids_b.index_select(0, expand);
  r.prompt_mask = mask_b.index_select(0, expand);
  dec->start(cache, expand, r.prompt_mask);
  r.prefill_seconds = seconds_since(t0, device);

  // ---- decode: choose -> (every sync_every steps: stop or compact) -> one step of the live rows
  t0 = std::chrono::steady_clock::now();
  DecodeRows s = start_rows(r, p, prompt_keys, B, G, cfg.n_vocab);
  r.completion_ids = torch::full({N, Tc}, p.pad_id, i64);
  r.completion_mask = torch::zeros({N, Tc}, i64);
  r.logprobs = torch::zeros({N, Tc}, i64.dtype(torch::kFloat32));
  if (has_tools(p)) {
    r.loss_mask = torch::zeros({N, Tc}, i64);
    r.tool_turns.assign(static_cast<size_t>(N), 0);
  }
  auto stop = torch::tensor(p.stop_ids.empty() ? std::vector<int64_t>{-1} : p.stop_ids, torch::kInt64).to(device);
  DecodeCounters counters;
  for (int64_t t = 0; t < Tc; ++t) {
    choose_tokens(logits, t, p, stop, s, r);
    if (t + 1 == Tc) break;
    if (s.seen.defined()) s.seen.scatter_(1, s.tok.unsqueeze(1), true);
    if (!keep_going(t, p, *dec, s, r)) break;
    logits = dec->step(s.tok, s.pos, s.valid, counters);  // (n, V)
    s.pos = s.valid.defined() ? s.pos + s.valid.to(torch::kInt64) : s.pos + 1;
  }
  r.decode_shapes = counters.decode_shapes;
  r.graph_captures = counters.graph_captures;
  r.decode_seconds = seconds_since(t0, device);
  r.decode_tokens = r.own_mask().sum().item<int64_t>();
  set_finish_reasons(r, stop);
  return r;
}

}  // namespace grpo
