// decoder.cpp: the eager and static decoders; see decoder.h.
#include "grpo/engine/decoder.h"

#include <fstream>

#include "grpo/base/common.h"
#include "grpo/engine/sampler.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Memory check

int64_t check_kv_budget(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype, const torch::Device& device,
                        int64_t budget_bytes) {
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
                std::to_string(capacity) + " positions x " + std::to_string(cfg.n_layer) + " layers" +
                (cfg.has_window() ? " (sliding-window layers: their window)" : "") + " x 2 x " + std::to_string(cfg.n_kv_head) +
                " KV heads x " + std::to_string(cfg.head_dim) + " x " + std::to_string(torch::elementSize(dtype)) + " B) but only " +
                std::to_string(budget_bytes >> 20) + " MiB are available; lower prompts_per_step, group_size or max_new_tokens");
  return need;
}

// ---------------------------------------------------------------------------------------------
// Static decoding (see decoder.h)

namespace {

// Rows the static step runs for n live sequences of a call with N: N itself, then powers of two.
int64_t ladder_rows(int64_t n, int64_t N) {
  int64_t r = 1;
  while (r < n) r *= 2;
  return std::min(r, N);
}

std::vector<const void*> weight_pointers(CausalLM& model) {
  std::vector<const void*> out;
  for (const auto& t : model->parameters()) out.push_back(t.data_ptr());
  return out;
}

// Make `d` hold buffers for at least `rows` sequences x `capacity` positions of `model`, keeping
// what it has (and its graphs) when they fit.
void fit(StaticDecodeState& d, CausalLM& model, int64_t rows, int64_t capacity) {
  auto weights = weight_pointers(model);
  const bool same_model = d.model == model.get() && d.weights == weights && d.attention == model->attention;
  if (same_model && d.rows >= rows && d.capacity >= capacity) return;
  if (same_model) {
    rows = std::max(rows, d.rows);
    capacity = std::max(capacity, d.capacity);
  }
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
void compact_in_place(StaticDecodeState& d, const torch::Tensor& keep) {
  const int64_t m = keep.size(0);
  for (auto* list : {&d.cache.k, &d.cache.v})
    for (auto& t : *list) t.narrow(0, 0, m).copy_(t.index_select(0, keep));
  d.key_mask.narrow(0, 0, m).copy_(d.key_mask.index_select(0, keep));
}

// One decode step over the decoder's first `rows` rows, attending `attend` cache positions: the
// inputs are already in d.tok / d.pos / d.write_pos, the output lands in d.logits. With `graph`,
// a shape met for the first time is captured, and every step replays its graph.
void decode_step(StaticDecodeState& d, CausalLM& model, int64_t rows, int64_t attend, bool graph, DecodeCounters& r) {
  auto [it, fresh] = d.steps.try_emplace({rows, attend});
  StaticDecodeState::Step& s = it->second;
  if (fresh) {
    ++r.decode_shapes;
    s.view.capacity = d.capacity;
    for (int64_t l = 0; l < model->cfg.n_layer; ++l) {
      s.view.k.push_back(d.cache.k[l].narrow(0, 0, rows));
      s.view.v.push_back(d.cache.v[l].narrow(0, 0, rows));
    }
  }
  auto step = [&] {
    auto h = model->forward_decode_static(d.tok.narrow(0, 0, rows), d.key_mask.narrow(0, 0, rows), d.pos.narrow(0, 0, rows), d.write_pos,
                                          s.view, attend);           // (rows, 1, D)
    d.logits.narrow(0, 0, rows).copy_(model->logits(h.squeeze(1)));  // (rows, V)
  };
  if (!graph) return step();
  if (!s.captured) {
    // Later captures need one warm-up only (cuBLAS handles and workspaces already exist).
    s.graph.capture(d.write_pos.device(), step, d.graph_captures == 0 ? 2 : 1);
    s.captured = true;
    ++d.graph_captures;
    ++r.graph_captures;
  }
  s.graph.replay();
}

// ---------------------------------------------------------------------------------------------
// The two decoders

class EagerDecoder : public Decoder {
 public:
  EagerDecoder(CausalLM& model, int64_t Tc) : model_(model), Tc_(Tc) {}
  int64_t prefill_capacity(int64_t Tp, int64_t Tc) const override { return Tp + Tc; }
  void start(KVCache& prompt_cache, const torch::Tensor& expand, const torch::Tensor& prompt_mask) override {
    cache_ = std::move(prompt_cache);
    cache_.select_rows(expand);
    const int64_t N = prompt_mask.size(0);
    full_mask_ = torch::cat({prompt_mask, torch::ones({N, Tc_}, prompt_mask.options())}, 1);  // (n, Tp + Tc)
  }
  torch::Tensor step(const torch::Tensor& tok, const torch::Tensor& pos, const torch::Tensor& valid, DecodeCounters&) override {
    if (valid.defined()) full_mask_.select(1, cache_.length).copy_(valid);
    auto h = model_->forward_hidden(tok.unsqueeze(1), full_mask_.narrow(1, 0, cache_.length + 1), pos.unsqueeze(1), &cache_);
    return model_->logits(h.squeeze(1)).to(torch::kFloat32);  // (n, V)
  }
  // Drops rows once a quarter are done: each compaction copies the whole cache.
  bool wants_compaction(int64_t n, int64_t n_done) const override { return n_done * 4 >= n; }
  void compact(const torch::Tensor& keep) override {
    cache_.select_rows(keep);
    full_mask_ = full_mask_.index_select(0, keep);
  }

 private:
  CausalLM& model_;
  int64_t Tc_;
  KVCache cache_;
  torch::Tensor full_mask_;
};

class StaticDecoder : public Decoder {
 public:
  StaticDecoder(CausalLM& model, std::shared_ptr<StaticDecodeState> state, int64_t N, int64_t bucket, bool graph)
      : model_(model), d_(std::move(state)), N_(N), rows_(N), bucket_(bucket), graph_(graph) {}
  int64_t prefill_capacity(int64_t Tp, int64_t) const override { return Tp; }
  void start(KVCache& prompt_cache, const torch::Tensor& expand, const torch::Tensor& prompt_mask) override {
    // Positions past Tp keep an earlier call's K/V: the step masks every position after its own.
    // A sliding-window layer's prompt cache holds min(Tp, window) slots, position p in slot p mod
    // slots: the same slots of this cache's ring (its window, or more than Tp).
    const int64_t Tp = prompt_mask.size(1);
    for (int64_t l = 0; l < model_->cfg.n_layer; ++l) {
      const int64_t kept = prompt_cache.k[l].size(2);
      d_->cache.k[l].narrow(0, 0, N_).narrow(2, 0, kept).copy_(prompt_cache.k[l].index_select(0, expand));
      d_->cache.v[l].narrow(0, 0, N_).narrow(2, 0, kept).copy_(prompt_cache.v[l].index_select(0, expand));
    }
    d_->cache.length = Tp;
    auto key_mask = d_->key_mask.narrow(0, 0, N_);  // (N, capacity)
    key_mask.fill_(1);
    key_mask.narrow(1, 0, Tp).copy_(prompt_mask);
    prompt_cache = KVCache();
  }
  torch::Tensor step(const torch::Tensor& tok, const torch::Tensor& pos, const torch::Tensor& valid, DecodeCounters& c) override {
    StaticDecodeState& d = *d_;
    const int64_t n = tok.size(0);
    if (valid.defined()) d.key_mask.narrow(0, 0, n).select(1, d.cache.length).copy_(valid);
    const int64_t attend = std::min(d.capacity, (d.cache.length / bucket_ + 1) * bucket_);
    d.tok.narrow(0, 0, n).copy_(tok.unsqueeze(1));
    d.pos.narrow(0, 0, n).copy_(pos.unsqueeze(1));
    d.write_pos.fill_(d.cache.length);
    decode_step(d, model_, rows_, attend, graph_, c);
    d.cache.length += 1;
    return d.logits.narrow(0, 0, n);  // (n, V)
  }
  // Compacts when the ladder steps down, so that the step meets few shapes.
  bool wants_compaction(int64_t n, int64_t n_done) const override { return ladder_rows(n - n_done, N_) < rows_; }
  void compact(const torch::Tensor& keep) override {
    compact_in_place(*d_, keep);
    rows_ = ladder_rows(keep.size(0), N_);
  }

 private:
  CausalLM& model_;
  std::shared_ptr<StaticDecodeState> d_;
  int64_t N_, rows_, bucket_;  // rows_: the ladder size the step runs (>= the live rows)
  bool graph_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(CausalLM& model, DecodeMode mode, std::shared_ptr<StaticDecodeState> state, int64_t B, int64_t N,
                                      int64_t Tp, int64_t Tc, int64_t decode_bucket, int64_t& kv_cache_bytes) {
  const auto w = model->output_weight();
  const ModelConfig& cfg = model->cfg;
  check_decode_mode(mode, w.device());
  if (mode == DecodeMode::CudaGraph && cfg.n_experts > 0)
    throw Error("decode_mode cuda_graph: a mixture-of-experts model (" + cfg.model_type +
                ") routes on the host each step, which a captured graph cannot; use decode_mode static");
  TORCH_CHECK(decode_bucket >= 1, "decode_bucket must be >= 1");
  if (mode == DecodeMode::Eager) {
    kv_cache_bytes = check_kv_budget(cfg, N + B, Tp + Tc, w.scalar_type(), w.device());
    return std::make_unique<EagerDecoder>(model, Tc);
  }
  if (!state) state = std::make_shared<StaticDecodeState>();
  fit(*state, model, N, (Tp + Tc + decode_bucket - 1) / decode_bucket * decode_bucket);
  kv_cache_bytes =
      KVCache::bytes_needed(cfg, state->rows, state->capacity, w.scalar_type()) + check_kv_budget(cfg, B, Tp, w.scalar_type(), w.device());
  return std::make_unique<StaticDecoder>(model, std::move(state), N, decode_bucket, mode == DecodeMode::CudaGraph);
}

}  // namespace grpo
