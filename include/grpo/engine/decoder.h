// decoder.h: the decode step of the rollout engine (sampler.h), behind one small interface. After
// generate() prefills the B prompts, a Decoder takes the prompt cache repeated to the N = B*G rows
// and then, once per token, turns the live rows' new ids into their next logits; when enough rows
// have finished it drops them (compaction). Two kinds:
//
//   EagerDecoder   the shapes follow the cache: one (n, 1) step over the n live rows, which attend
//                  every position so far; the cache and mask shrink by index_select. No wasted work.
//   StaticDecoder  fixed shapes for CUDA graphs: the step's inputs and outputs live in buffers kept
//                  across calls, attention spans the cache in buckets of decode_bucket positions,
//                  finished rows are compacted IN PLACE into the first rows, and the step runs over
//                  `rows` = N, then powers of two (the ladder: N = 128 gives 128, 64, ..., 1), so
//                  later rollouts meet the same (rows, attend) shapes. With cuda_graph each shape is
//                  captured once per run and replayed. Rows between the live count and the ladder
//                  size hold stale but finite data; their outputs are never read.
//
// The static buffers stay allocated between calls (KV cache: rows x capacity); they are made again,
// and every graph dropped, when a call needs more rows or positions, or when the model, its
// weights' storage or its attention kernel changed (in-place weight updates keep the graphs valid:
// they read the weights at replay). Tool answers are ids like any other (sampler.h); the holes
// before them are masked through `valid`.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "grpo/base/device.h"
#include "grpo/model/causal_lm.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// The buffers (and graphs) of static decoding, kept across generate() calls (a training run's rollouts).

struct StaticDecodeState {
  const void* model = nullptr;       // what the buffers and graphs were made for
  std::vector<const void*> weights;  // data_ptr of every parameter
  AttentionKernel attention = AttentionKernel::Eager;
  int64_t rows = 0, capacity = 0;  // capacity: a multiple of the decode bucket
  KVCache cache;                   // (rows, Hkv, capacity, hd) per layer, zero-initialised
  torch::Tensor key_mask;          // (rows, capacity) int64: 1 = a real (non-pad) key position
  torch::Tensor tok, pos;          // (rows, 1) int64: the step's input ids and positions
  torch::Tensor write_pos;         // (1,) int64: the cache position the step writes
  torch::Tensor logits;            // (rows, V) float32: the step's output
  struct Step {
    KVCache view;  // the cache's first `rows` rows
    CudaGraph graph;
    bool captured = false;
  };
  std::map<std::pair<int64_t, int64_t>, Step> steps;  // (rows, attend) -> its cache view and graph
  int64_t graph_captures = 0;                         // over the state's life
};

// ---------------------------------------------------------------------------------------------
// The interface generate() drives

struct DecodeCounters {
  int64_t decode_shapes = 0;   // (rows, attend) step shapes first met
  int64_t graph_captures = 0;  // graphs captured (one per new shape)
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Positions the prompt prefill's cache needs (the eager decoder decodes in it, so Tp + Tc).
  virtual int64_t prefill_capacity(int64_t Tp, int64_t Tc) const = 0;
  // Take over the prefilled cache of B prompts (length Tp), row b*G + g = prompt b (expand (N,));
  // prompt_mask (N, Tp) marks the real prompt positions.
  virtual void start(KVCache& prompt_cache, const torch::Tensor& expand, const torch::Tensor& prompt_mask) = 0;
  // The next logits (n, V) float32 of the n live rows, given their new ids and positions (n,).
  // valid (n,) bool, when defined: false = the id is a hole (a sequence waiting for a tool), whose
  // cache entry later steps must not attend.
  virtual torch::Tensor step(const torch::Tensor& tok, const torch::Tensor& pos, const torch::Tensor& valid, DecodeCounters& c) = 0;
  // Whether to drop the finished rows now, with n_done of the n live rows finished.
  virtual bool wants_compaction(int64_t n, int64_t n_done) const = 0;
  // Keep rows `keep` (ascending indices into the live rows).
  virtual void compact(const torch::Tensor& keep) = 0;
};

// Bytes the rollout's KV cache needs; throws Error with the numbers if it exceeds `budget_bytes`
// (0 = the free memory of the device: MemAvailable on CPU).
int64_t check_kv_budget(const ModelConfig& cfg, int64_t n_seq, int64_t capacity, torch::Dtype dtype, const torch::Device& device,
                        int64_t budget_bytes = 0);

// The decoder for `mode`: eager, or static / cuda_graph over `state` (a fresh one when null).
// N rows, prompts of Tp and completions of up to Tc positions; kv_cache_bytes gets what it holds.
std::unique_ptr<Decoder> make_decoder(CausalLM& model, DecodeMode mode, std::shared_ptr<StaticDecodeState> state, int64_t B, int64_t N,
                                      int64_t Tp, int64_t Tc, int64_t decode_bucket, int64_t& kv_cache_bytes);

}  // namespace grpo
