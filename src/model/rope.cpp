// rope.cpp: rotary position embeddings (RoFormer), step for step as transformers'
// modeling_rope_utils computes them; declared in causal_lm.h.
#include <cmath>

#include "grpo/model/causal_lm.h"

namespace grpo {

namespace {

// yarn: frequency i keeps its own inverse frequency (extrapolation) below the dimension `low`, where
// the original context turns it more than beta_fast times, is divided by the factor (interpolation)
// above `high` (fewer than beta_slow turns), and ramps linearly between; the bounds in double as
// Python computes them, the ramp in fp32 as torch does. base (d/2,) = theta^(2i/d), inv_freq = 1 / base.
torch::Tensor yarn_inv_freq(const RopeScaling& rs, const torch::Tensor& base, const torch::Tensor& inv_freq, int64_t d, double theta) {
  auto correction_dim = [&](double turns) {
    return double(d) * std::log(double(rs.original_max_position_embeddings) / (turns * 2 * M_PI)) / (2 * std::log(theta));
  };
  double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
  if (rs.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(d - 1));
  if (low == high) high += 0.001;                                                         // transformers' guard against a zero-width ramp
  auto ramp = ((torch::arange(d / 2, base.options()) - low) / (high - low)).clamp(0, 1);  // (d/2,)
  auto extrapolation = 1 - ramp;
  auto inv_inter = 1.0 / (rs.factor * base);
  return inv_inter * (1 - extrapolation) + inv_freq * extrapolation;
}

// Inverse frequencies (d/2,) in fp32 over the rotary width d, with the config's scaling
// (_compute_default / _linear_scaling / _llama3_parameters / _longrope_parameters /
// _yarn_parameters). longrope's long factors apply when the forward's longest position + 1 passes
// the original context, chosen on the device (no host sync: a captured decode step stays valid).
torch::Tensor rope_inv_freq(const Rope& rope, int64_t d, const torch::Tensor& position_ids) {
  auto opts32 = torch::TensorOptions().dtype(torch::kFloat32).device(position_ids.device());
  auto base = torch::pow(rope.theta, torch::arange(0, d, 2, opts32.dtype(torch::kInt64)).to(torch::kFloat32) / double(d));  // (d/2,)
  const RopeScaling& rs = rope.scaling;
  if (rs.type == RopeType::LongRope) {
    auto shortf = torch::tensor(rs.short_factor, opts32.dtype(torch::kFloat64)).to(torch::kFloat32);
    auto longf = torch::tensor(rs.long_factor, opts32.dtype(torch::kFloat64)).to(torch::kFloat32);
    auto is_long = (position_ids.max() + 1).gt(rs.original_max_position_embeddings);  // () bool, on the device
    return 1.0 / (torch::where(is_long, longf, shortf) * base);
  }
  auto inv_freq = 1.0 / base;
  if (rs.type == RopeType::Linear) return inv_freq / rs.factor;
  if (rs.type == RopeType::Yarn) return yarn_inv_freq(rs, base, inv_freq, d, rope.theta);
  if (rs.type != RopeType::Llama3) return inv_freq;
  const double old_len = double(rs.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / rs.low_freq_factor, high_freq_wavelen = old_len / rs.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
  auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
  auto medium = wavelen.ge(high_freq_wavelen).logical_and(wavelen.le(low_freq_wavelen));
  return torch::where(medium, smoothed, scaled);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> rope_tables(const Rope& rope, int64_t rotary_dim, const torch::Tensor& position_ids,
                                                    torch::ScalarType dtype) {
  auto inv_freq = rope_inv_freq(rope, rotary_dim, position_ids);           // (d/2,)
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // (N, T, d/2)
  auto emb = torch::cat({freqs, freqs}, -1);                               // (N, T, d)
  auto cos = emb.cos(), sin = emb.sin();
  if (rope.scaling.attention_factor != 1.0) {  // longrope's and yarn's; x 1 would change nothing
    cos = cos * rope.scaling.attention_factor;
    sin = sin * rope.scaling.attention_factor;
  }
  const int64_t h = rotary_dim / 2;
  sin.narrow(-1, 0, h).neg_();
  return {cos.to(dtype).unsqueeze(2), sin.to(dtype).unsqueeze(2)};
}

// HF: x * cos + rotate_half(x) * sin, rotate_half(x1, x2) = (-x2, x1) over the rotary dims' halves.
// Here the sign lives in the table (sin = (-sin, +sin), see rope_tables) and each half adds its
// product in place: the same products, in 3 kernels instead of HF's 5, on any strides (q and k
// are read straight out of the packed q/k/v GEMM output). x (N, T, heads, hd), tables (N, T, 1, d).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin) {
  const int64_t d = cos.size(-1), h = d / 2;
  torch::Tensor out, turned;
  if (d == x.size(-1)) {
    out = turned = x * cos;
  } else {  // partial rotary: the dims past d pass unchanged
    out = x.clone(at::MemoryFormat::Contiguous);
    turned = out.narrow(-1, 0, d);
    turned.mul_(cos);
  }
  turned.narrow(-1, 0, h).addcmul_(x.narrow(-1, h, h), signed_sin.narrow(-1, 0, h));
  turned.narrow(-1, h, h).addcmul_(x.narrow(-1, 0, h), signed_sin.narrow(-1, h, h));
  return out;
}

}  // namespace grpo
