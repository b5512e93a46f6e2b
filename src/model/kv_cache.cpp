// kv_cache.cpp: the KV cache of decoding, with sliding-window layers kept as rings; see causal_lm.h.
#include "grpo/model/causal_lm.h"

namespace grpo {

int64_t KVCache::slots(const ModelConfig& cfg, int64_t layer, int64_t capacity) {
  const int64_t W = cfg.window_of(layer);
  return W > 0 ? std::min(W, capacity) : capacity;
}

KVCache KVCache::allocate(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::TensorOptions opts) {
  KVCache c;
  c.capacity = capacity;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const int64_t C = slots(cfg, l, capacity);
    c.k.push_back(torch::zeros({n_seq, cfg.n_kv_head, C, cfg.head_dim}, opts));
    c.v.push_back(torch::zeros({n_seq, cfg.n_kv_head, C, cfg.head_dim}, opts));
  }
  return c;
}

KVCache KVCache::growing(int64_t n_layer) {
  KVCache c;
  c.grow = true;
  c.k.resize(n_layer);
  c.v.resize(n_layer);
  return c;
}

int64_t KVCache::bytes_needed(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype) {
  int64_t positions = 0;
  for (int64_t l = 0; l < cfg.n_layer; ++l) positions += slots(cfg, l, capacity);
  return 2 * positions * n_seq * cfg.n_kv_head * cfg.head_dim * static_cast<int64_t>(torch::elementSize(dtype));
}

bool KVCache::ring(int64_t layer) const {
  return !grow && k[layer].size(2) < capacity;
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, torch::Tensor new_k, torch::Tensor new_v) {
  auto &K = k[layer], &V = v[layer];  // (N, Hkv, slots, hd), or the joined past when growing
  if (write_pos.defined()) {          // static decode step: the position comes from a device tensor
    if (ring(layer)) {
      const auto slot = write_pos.remainder(K.size(2));  // (1,)
      K.index_copy_(2, slot, new_k);
      V.index_copy_(2, slot, new_v);
      return {K, V};  // (N, Hkv, S = slots, hd)
    }
    K.index_copy_(2, write_pos, new_k);
    V.index_copy_(2, write_pos, new_v);
    return {K.narrow(2, 0, attend), V.narrow(2, 0, attend)};  // (N, Hkv, S = attend, hd)
  }
  if (grow) {
    if (K.defined()) {
      new_k = torch::cat({K, new_k}, 2);  // (N, Hkv, S, hd)
      new_v = torch::cat({V, new_v}, 2);
    }
    K = new_k;
    V = new_v;
    return {K, V};
  }
  const int64_t past = length, T = new_k.size(2), C = K.size(2);
  if (past + T <= C) {
    K.narrow(2, past, T).copy_(new_k);
    V.narrow(2, past, T).copy_(new_v);
    return {K.narrow(2, 0, past + T), V.narrow(2, 0, past + T)};  // (N, Hkv, S, hd)
  }
  TORCH_CHECK(ring(layer), "KV cache overflow: ", past + T, " > capacity ", capacity);
  // A ring past its end (position p lives in slot p mod slots). One new position (decoding)
  // overwrites the oldest, which its window no longer holds, and attention reads the ring; more
  // (a prefill longer than the window) are read after the kept slots, then the newest overwrite.
  if (T == 1) {
    K.narrow(2, past % C, 1).copy_(new_k);
    V.narrow(2, past % C, 1).copy_(new_v);
    return {K, V};  // (N, Hkv, S = slots, hd)
  }
  std::pair<torch::Tensor, torch::Tensor> read = {new_k, new_v};
  if (past > 0)
    read = {torch::cat({K.narrow(2, 0, std::min(past, C)), new_k}, 2), torch::cat({V.narrow(2, 0, std::min(past, C)), new_v}, 2)};
  const int64_t m = std::min(T, C);
  auto slot = torch::arange(past + T - m, past + T, torch::TensorOptions().dtype(torch::kInt64).device(K.device())).remainder(C);  // (m,)
  K.index_copy_(2, slot, new_k.narrow(2, T - m, m));
  V.index_copy_(2, slot, new_v.narrow(2, T - m, m));
  return read;  // (N, Hkv, S, hd)
}

torch::Tensor KVCache::key_positions(int64_t layer, int64_t T, const torch::Device& device) const {
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  // Slot s of a ring holds the newest position p <= last with p mod C = s (negative: none yet).
  auto ring_positions = [&](const torch::Tensor& last, int64_t C) {
    auto s = torch::arange(C, i64);                                     // (C,)
    return s + torch::div(last - s, C, /*rounding_mode=*/"floor") * C;  // (C,)
  };
  if (write_pos.defined()) return ring(layer) ? ring_positions(write_pos, k[layer].size(2)) : torch::arange(attend, i64);
  const int64_t past = length;
  if (grow || past + T <= k[layer].size(2)) return torch::arange(past + T, i64);
  const int64_t C = k[layer].size(2), kept = std::min(past, C);
  if (T == 1) return ring_positions(torch::full({1}, past, i64), C);
  auto kept_pos = ring_positions(torch::full({1}, past - 1, i64), C).narrow(0, 0, kept);  // (kept,)
  return torch::cat({kept_pos, torch::arange(past, past + T, i64)});                      // (S = kept + T,)
}

void KVCache::select_rows(const torch::Tensor& index) {
  for (auto& t : k) t = t.index_select(0, index);
  for (auto& t : v) t = t.index_select(0, index);
}

}  // namespace grpo
