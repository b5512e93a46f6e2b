// moe.cpp: the mixture-of-experts block (MoEImpl, declared in causal_lm.h), as transformers'
// Qwen3MoeSparseMoeBlock / OlmoeSparseMoeBlock / MixtralSparseMoeBlock compute it:
//   p = softmax(x G^T) in fp32 (E,),  (w, e) = top_k(p),  w /= sum(w) where norm_topk_prob,
//   y = sum over the k chosen experts of w_j expert_{e_j}(x), w rounded to x's dtype,
// the experts' terms added per token in expert order (index_add_). Each expert runs once, on the
// rows routed to it (rows sorted by expert: one GEMM per expert), not once per token.
#include "grpo/model/causal_lm.h"

namespace grpo {

MoEImpl::MoEImpl(const ModelConfig& cfg, torch::TensorOptions opts) : top_k(cfg.n_experts_per_tok), norm_topk(cfg.norm_topk_prob) {
  gate = register_module("gate", Linear(cfg.n_embd, cfg.n_experts, false, opts));
  auto list = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < cfg.n_experts; ++e) {
    experts.push_back(MLP(cfg, cfg.n_ff_expert, opts, /*expert=*/true));
    list->push_back(experts.back());
  }
}

std::pair<torch::Tensor, torch::Tensor> MoEImpl::route(const torch::Tensor& x) const {
  auto logits = torch::nn::functional::linear(x, gate->weight);  // (M, E)
  auto probs = torch::softmax(logits, -1, torch::kFloat32);      // (M, E) fp32
  auto [w, ids] = probs.topk(top_k, -1);                         // (M, k)
  if (norm_topk) w = w / w.sum(-1, /*keepdim=*/true);
  return {w.to(x.scalar_type()), ids};
}

torch::Tensor MoEImpl::forward(const torch::Tensor& x, bool no_graph) {
  const int64_t D = x.size(-1);
  auto rows = x.reshape({-1, D});  // (M, D)
  auto [w, ids] = route(rows);     // (M, k)
  const int64_t k = ids.size(1);
  auto out = torch::zeros_like(rows);
  // The (token, slot) pairs sorted by expert; how many each expert has, read on the host once (a
  // sync: CUDA-graph decoding refuses MoE models, decoder.cpp).
  auto order = ids.flatten().argsort();                                                                                 // (M k,)
  auto counts = torch::bincount(ids.flatten(), {}, static_cast<int64_t>(experts.size())).to(torch::kCPU).contiguous();  // (E,)
  const int64_t* count = counts.data_ptr<int64_t>();
  auto weights = w.flatten();  // (M k,)
  int64_t start = 0;
  for (size_t e = 0; e < experts.size(); ++e) {
    const int64_t n = count[e];
    if (n == 0) continue;
    auto pairs = order.narrow(0, start, n);  // (n,) indices into the (M k) pairs
    start += n;
    auto token = pairs.div(k, "floor");                                                                                  // (n,)
    auto y = experts[e]->forward(rows.index_select(0, token), no_graph) * weights.index_select(0, pairs).unsqueeze(-1);  // (n, D)
    out.index_add_(0, token, y);
  }
  return out.view(x.sizes());
}

}  // namespace grpo
