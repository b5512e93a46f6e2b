// zero.h: AdamW with its state sharded across the data-parallel ranks (ZeRO stages 1 and 2,
// `zero_stage`), over the same c10d process group as the gradients. Reference: DeepSpeed's ZeRO
// (Rajbhandari et al., 2020) and PyTorch's ZeroRedundancyOptimizer.
//
// The trainable tensors, laid end to end in their order, are one flat vector of P elements; rank r
// owns elements [r S, min(P, (r+1) S)), S = ceil(P / W), and keeps for them alone the fp32 master
// weights and the two AdamW moments (16 bytes a parameter become 16 / W, plus the model's own copy).
// A step:
//   1. stage 1: each micro-batch's gradients are added to one flat fp32 buffer (P values), which
//      is all-reduced once per step, the rank keeping its share; stage 2: after each micro-batch
//      its gradients are summed over the ranks bucket by bucket, each part arriving only at the rank
//      that owns it (a reduce per owner, gloo having no reduce-scatter), so a rank holds its share's
//      sum (P / W values) and one bucket, never the whole gradient in fp32;
//   3. the gradient norm is global: the shares' squared norms summed over the ranks; clipping
//      scales every share by max_norm / (norm + 1e-6) when that is below 1 (clip_grad_norm_'s rule);
//   4. AdamW (torch.optim.AdamW's formula, decoupled weight decay, bias-corrected moments) updates
//      the share of the masters; the updated shares are all-gathered into every rank's model.
// Deliberate departures: backward still produces each micro-batch's whole gradient in the model's
// dtype (no per-layer freeing, no overlap of the reduction with backward); a share is a range of the
// flat vector, so a tensor may straddle two ranks.
//
// Checkpoints: each rank writes optimizer/shard-<r>-of-<W>.safetensors (its masters and moments,
// "lo"/"hi" in the metadata) and rank 0 writes optimizer/index.json (P, W, the tensors' names and
// sizes, the step count, each shard's checksum); a run resumes at any world size and any stage:
// load_full / load_range re-shard by reading only the ranges they need.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "grpo/engine/distributed.h"

namespace grpo {

// Stage 2 reduces the gradients in buckets of at most this many fp32 values (run_plan.cpp counts one).
inline constexpr int64_t kZeroBucket = int64_t(1) << 24;

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

// The flat layout of a list of tensors over W ranks.
struct FlatLayout {
  std::vector<int64_t> offsets, numels;  // each tensor's place in the flat vector
  int64_t total = 0;                     // P
  int world = 1;
  int64_t shard = 0;  // S = ceil(P / W)
  FlatLayout() = default;
  FlatLayout(const std::vector<torch::Tensor>& tensors, int world_size);
  int64_t lo(int rank) const { return std::min(total, rank * shard); }
  int64_t hi(int rank) const { return std::min(total, (rank + 1) * shard); }
};

// The optimizer state of a range [lo, hi) of the flat vector, fp32 on the CPU or the device.
struct FlatState {
  torch::Tensor master, exp_avg, exp_avg_sq;  // (hi - lo,)
  int64_t step = 0;                           // AdamW steps taken (the bias corrections' t)
};

class ShardedAdamW {
 public:
  ShardedAdamW(std::vector<torch::Tensor> params, std::vector<std::string> names, AdamWSettings s, std::shared_ptr<Dist> dist, int stage);

  // Adds each parameter's .grad to the flat fp32 gradient and clears it (after each micro-batch).
  void accumulate();
  // Reduce, clip by the global norm, AdamW with lr on this rank's share, all-gather into the
  // parameters. Nothing changes when the norm is not finite; returns the norm.
  struct Outcome {
    double grad_norm = NAN;
    bool applied = false;
  };
  Outcome step(double lr, double max_norm);
  void zero_grad() { grad_ = torch::Tensor(); }

  int stage() const { return stage_; }
  const FlatLayout& layout() const { return layout_; }
  int64_t state_bytes() const;  // this rank's masters and moments
  FlatState& state() { return state_; }
  const FlatState& state() const { return state_; }
  const std::vector<std::string>& names() const { return names_; }
  // The whole flat vector of the current parameters (fp32, CPU): a fresh run's masters.
  torch::Tensor flat_params() const;

 private:
  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;
  AdamWSettings s_;
  std::shared_ptr<Dist> dist_;
  int stage_;
  FlatLayout layout_;
  void reduce_into_share();
  FlatState state_;     // this rank's range
  torch::Tensor grad_;  // fp32 between accumulate and step: stage 1 the whole (P,), stage 2 the share (S_r,)
};

// ---------------------------------------------------------------------------------------------
// Checkpoints (checkpoint.cpp calls these)

// Writes this rank's shard into the directory `dir` (made when missing); returns its file's checksum.
std::string save_optimizer_shard(const ShardedAdamW& opt, const std::string& dir, int rank);
// Rank 0: the index naming every shard and its checksum (gathered from the ranks).
void save_optimizer_index(const ShardedAdamW& opt, const std::string& dir, const std::vector<std::string>& checksums);
// True when <dir> holds a sharded optimizer state (optimizer/index.json).
bool has_sharded_optimizer(const std::string& dir);
// The range [lo, hi) of a sharded checkpoint's state, read from the shards that hold it; every file
// checked (present, its checksum, its tensors' sizes, the index's layout equal to `names`/`numels`).
FlatState load_optimizer_range(const std::string& dir, const std::vector<std::string>& names, const std::vector<int64_t>& numels,
                               int64_t lo, int64_t hi);

}  // namespace grpo
