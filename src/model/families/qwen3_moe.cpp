// qwen3_moe.cpp: Qwen3-MoE (Qwen3MoeForCausalLM, e.g. Qwen3-30B-A3B): Qwen3's attention (per-head
// q/k norms, attention_bias) with mixture-of-experts MLPs: num_experts experts of
// moe_intermediate_size, num_experts_per_tok a token, norm_topk_prob (default false); a layer l is
// sparse when (l + 1) is a multiple of decoder_sparse_step (default 1) and l is not in
// mlp_only_layers (those keep a dense MLP of intermediate_size).
#include "grpo/base/common.h"
#include "grpo/model/family.h"

namespace grpo {

extern const ModelFamily kQwen3Family;

namespace {

void configure_qwen3_moe(const nlohmann::json& j, const std::string& path, ModelConfig& c) {
  kQwen3Family.configure(j, path, c);
  config_moe(j, path, c, "moe_intermediate_size", false);
  const int64_t step = config_int(j, "decoder_sparse_step", path, 1);
  if (step < 1) throw Error(path + ": field \"decoder_sparse_step\": expected an integer >= 1, found " + std::to_string(step));
  std::vector<bool> dense(static_cast<size_t>(c.n_layer), false);
  const nlohmann::json only =
      j.contains("mlp_only_layers") && !j["mlp_only_layers"].is_null() ? j["mlp_only_layers"] : nlohmann::json::array();
  if (!only.is_array()) throw Error(path + ": field \"mlp_only_layers\": expected a list of layer indices, found " + json_text(only));
  for (const nlohmann::json& l : only) {
    if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= c.n_layer)
      throw Error(path + ": field \"mlp_only_layers\": expected layer indices below num_hidden_layers (" + std::to_string(c.n_layer) +
                  "), found " + json_text(l));
    dense[static_cast<size_t>(l.get<int64_t>())] = true;
  }
  c.moe_layers.clear();
  for (int64_t l = 0; l < c.n_layer; ++l) c.moe_layers.push_back(!dense[static_cast<size_t>(l)] && (l + 1) % step == 0);
}

}  // namespace

extern const ModelFamily kQwen3MoeFamily = {"qwen3_moe", "Qwen3MoeForCausalLM", configure_qwen3_moe};

}  // namespace grpo
