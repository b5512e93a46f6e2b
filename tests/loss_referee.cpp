// loss_referee: our GRPO loss and its gradients on given inputs, for the TRL referee test
// (tests/interop/test_trl_loss.py). The same pieces as update_policy's micro-batch: advantages
// from the rewards (cfg.scale_rewards), the grouped (shared-prompt) log-probs at cfg.temperature, the
// truncation mask, the sampler correction, the high-entropy mask, policy_loss_config and
// compute_policy_loss; no optimizer.
//   loss_referee MODEL_DIR INPUTS.json OUT.safetensors [key=value ...]
// INPUTS: {"prompt_ids", "prompt_mask": (N, Tp), "completion_ids", "completion_mask": (N, Tc),
//          "rewards": (N,), "group_size": G, "truncated": (N,) 0/1,
//          optional "old_logps", "ref_logps", "sampler_logps": (N, Tc)}; rows b*G .. b*G+G-1 share prompt b.
// OUT: "loss" (1,), "logps" (N, Tc) and "grad.<name>" for every parameter (Hugging Face names).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/config/config.h"
#include "grpo/model/model_io.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_step.h"

using namespace grpo;
using json = nlohmann::json;

namespace {

torch::Tensor rows_of(const json& v, torch::Dtype dtype) {
  std::vector<double> flat;
  int64_t n = 0, t = 0;
  for (const auto& row : v) {
    ++n;
    t = static_cast<int64_t>(row.size());
    for (const auto& x : row) flat.push_back(x.get<double>());
  }
  return torch::tensor(flat, torch::kFloat64).view({n, t}).to(dtype);
}

torch::Tensor vec_of(const json& v, torch::Dtype dtype) {
  return torch::tensor(v.get<std::vector<double>>(), torch::kFloat64).to(dtype);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 4) throw Error("usage: loss_referee MODEL_DIR INPUTS.json OUT.safetensors [key=value ...]");
    TrainConfig cfg;
    cfg.model_path = argv[1];
    for (int i = 4; i < argc; ++i) apply_override(cfg, argv[i]);
    validate_config(cfg);
    std::ifstream f(argv[2]);
    const json in = json::parse(f);
    auto model = load_causal_lm(argv[1], torch::kFloat32, torch::kCPU);
    model->train();

    auto pid = rows_of(in["prompt_ids"], torch::kInt64), pmask = rows_of(in["prompt_mask"], torch::kInt64);
    auto cid = rows_of(in["completion_ids"], torch::kInt64), cmask_i = rows_of(in["completion_mask"], torch::kInt64);
    const int64_t N = cid.size(0), G = in["group_size"].get<int64_t>();
    TokenLogprobs lp = compute_logprobs_grouped(model, pid, pmask, cid, cmask_i, G, 0, N, cfg.temperature, /*with_entropy=*/true);
    auto cmask = cmask_i.to(torch::kFloat32);  // (N, Tc)
    if (cfg.mask_truncated_completions) cmask = cmask * (1.0 - vec_of(in["truncated"], torch::kFloat32)).unsqueeze(1);
    const int64_t n_tokens = static_cast<int64_t>(cmask.sum().item<double>());
    const PolicyLossConfig plc = policy_loss_config(cfg, N, n_tokens);
    auto old = in.contains("old_logps") ? rows_of(in["old_logps"], torch::kFloat32) : lp.logprobs.detach();
    auto ref = cfg.beta > 0 ? rows_of(in["ref_logps"], torch::kFloat32) : torch::Tensor();
    auto advantages =
        compute_advantages_grpo(vec_of(in["rewards"], torch::kFloat32).view({N / G, G}), cfg.scale_rewards).advantages.flatten();
    torch::Tensor pg_weight;
    if (cfg.vllm_importance_sampling_correction && in.contains("sampler_logps"))
      pg_weight = compute_sampler_correction(old, rows_of(in["sampler_logps"], torch::kFloat32), cmask, cfg.vllm_importance_sampling_mode,
                                             cfg.vllm_importance_sampling_clip_min, cfg.vllm_importance_sampling_clip_max)
                      .weight;
    if (cfg.top_entropy_quantile < 1) {
      auto keep = top_entropy_mask(lp.entropy, cmask, cfg.top_entropy_quantile);
      pg_weight = pg_weight.defined() ? pg_weight * keep : keep;
    }
    PolicyLoss pl = compute_policy_loss(lp.logprobs, old, advantages, cmask, plc, ref, lp.entropy, pg_weight);
    pl.loss.backward();

    std::vector<torch::Tensor> keep;  // the bytes stay alive until written
    std::vector<TensorBytes> out;
    auto add = [&](const std::string& name, torch::Tensor t) {
      keep.push_back(t.detach().to(torch::kFloat32).contiguous());
      const auto& k = keep.back();
      out.push_back({name, DType::F32, k.sizes().vec(), k.data_ptr(), size_t(k.numel()) * 4});
    };
    add("loss", pl.loss.reshape({1}));
    add("logps", lp.logprobs);
    for (const auto& item : model->named_parameters())
      add("grad." + item.key(), item.value().grad().defined() ? item.value().grad() : torch::zeros_like(item.value()));
    write_safetensors(argv[3], out);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loss_referee: error: %s\n", e.what());
    return 1;
  }
}
