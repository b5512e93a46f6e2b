// model_config.cpp: config.json read into ModelConfig (the fields every family shares here, a
// family's own in src/model/families/), and what a config implies: parameters, tensors, each
// layer's window and RoPE. Declared in causal_lm.h.
#include <cmath>

#include "grpo/base/common.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/family.h"

namespace grpo {

using json = nlohmann::json;

namespace {

std::vector<double> factor_list(const json& rs, const char* key, const std::string& where, int64_t n) {
  const json& f = rs.contains(key) ? rs[key] : json();
  if (!f.is_array() || static_cast<int64_t>(f.size()) != n)
    throw Error(where + ": \"" + key + "\": expected a list of " + std::to_string(n) + " numbers (the rotary dims / 2), found " +
                json_text(f));
  std::vector<double> out;
  for (const json& x : f) {
    if (!x.is_number() || x.get<double>() <= 0) throw Error(where + ": \"" + key + "\": expected positive numbers, found " + json_text(x));
    out.push_back(x.get<double>());
  }
  return out;
}

// The pretraining context of longrope and yarn, as transformers'
// standardize_rope_params settles it: the config's top-level original_max_position_embeddings where
// given (Phi-3), else the object's, else max_position_embeddings. A null factor is the ratio of the two.
void parse_original_context(const json& j, const json& rs, const std::string& where, const ModelConfig& c, RopeScaling& out) {
  const bool top = j.contains("original_max_position_embeddings") && !j["original_max_position_embeddings"].is_null();
  out.original_max_position_embeddings = top ? config_int(j, "original_max_position_embeddings", where)
                                             : config_int(rs, "original_max_position_embeddings", where, c.max_position_embeddings);
  if (out.original_max_position_embeddings < 1) throw Error(where + ": original_max_position_embeddings must be >= 1");
  out.factor = config_number(rs, "factor", where, double(c.max_position_embeddings) / double(out.original_max_position_embeddings));
}

// longrope's fields (transformers' _compute_longrope_parameters).
void parse_longrope(const json& j, const json& rs, const std::string& where, const ModelConfig& c, RopeScaling& out) {
  const int64_t half = (c.rotary_dim > 0 ? c.rotary_dim : c.head_dim) / 2;
  out.type = RopeType::LongRope;
  out.short_factor = factor_list(rs, "short_factor", where, half);
  out.long_factor = factor_list(rs, "long_factor", where, half);
  parse_original_context(j, rs, where, c, out);
  const double dflt =
      out.factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(out.factor) / std::log(double(out.original_max_position_embeddings)));
  out.attention_factor = config_number(rs, "attention_factor", where, dflt);
}

// yarn's fields (transformers' _compute_yarn_parameters): beta_fast and beta_slow default to 32 and 1
// where absent or 0 (its `or`); the attention factor, where not given, is the paper's
// 0.1 ln(factor) + 1, or with both mscale and mscale_all_dim set (DeepSeek) the ratio of the two.
void parse_yarn(const json& j, const json& rs, const std::string& where, const ModelConfig& c, RopeScaling& out) {
  out.type = RopeType::Yarn;
  parse_original_context(j, rs, where, c, out);
  const double factor = out.factor;
  auto mscale = [factor](double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
  const double m = config_number(rs, "mscale", where, 0.0), m_all = config_number(rs, "mscale_all_dim", where, 0.0);
  out.attention_factor = config_number(rs, "attention_factor", where, m != 0 && m_all != 0 ? mscale(m) / mscale(m_all) : mscale(1.0));
  if (out.attention_factor <= 0) throw Error(where + ": \"attention_factor\" must be > 0, found " + json_text(rs["attention_factor"]));
  out.beta_fast = config_number(rs, "beta_fast", where, 0.0);
  out.beta_slow = config_number(rs, "beta_slow", where, 0.0);
  if (out.beta_fast == 0) out.beta_fast = 32.0;
  if (out.beta_slow == 0) out.beta_slow = 1.0;
  if (out.beta_fast <= 0 || out.beta_slow <= 0)
    throw Error(where + ": \"beta_fast\" and \"beta_slow\" must be > 0, found " + json_text(out.beta_fast) + " and " +
                json_text(out.beta_slow));
  out.truncate = config_bool(rs, "truncate", where, true);
}

// The scaling object of "rope_scaling" (type or rope_type) or "rope_parameters" (rope_type).
RopeScaling parse_rope_scaling(const json& j, const json& rs, const std::string& path, const std::string& field, const ModelConfig& c) {
  const std::string where = path + ": field \"" + field + "\"";
  if (!rs.is_object()) throw Error(where + ": expected an object, found " + json_text(rs));
  json type = rs.contains("rope_type") ? rs["rope_type"] : rs.value("type", json("default"));
  if (c.model_type == "phi3" && (type == "su" || type == "yarn")) type = "longrope";  // Phi-3's old names (transformers does the same)
  RopeScaling out;
  if (type == "default") return out;
  if (type == "linear") {
    out.type = RopeType::Linear;
    out.factor = config_number(rs, "factor", where);
  } else if (type == "llama3") {
    out.type = RopeType::Llama3;
    out.factor = config_number(rs, "factor", where);
    out.low_freq_factor = config_number(rs, "low_freq_factor", where);
    out.high_freq_factor = config_number(rs, "high_freq_factor", where);
    out.original_max_position_embeddings = config_int(rs, "original_max_position_embeddings", where);
    if (out.high_freq_factor <= out.low_freq_factor)
      throw Error(where + ": high_freq_factor (" + json_text(rs["high_freq_factor"]) + ") must exceed low_freq_factor (" +
                  json_text(rs["low_freq_factor"]) + ")");
  } else if (type == "longrope") {
    parse_longrope(j, rs, where, c, out);
  } else if (type == "yarn") {
    parse_yarn(j, rs, where, c, out);
  } else {
    throw Error(where + ": " + (rs.contains("rope_type") ? "rope_type " : "type ") + json_text(type) +
                " is not supported (default, linear, llama3, longrope or yarn)");
  }
  if (out.factor <= 0) throw Error(where + ": \"factor\" must be > 0, found " + json_text(rs["factor"]));
  return out;
}

// A RoPE object of "rope_parameters" (transformers >= 5: rope_theta and the scaling's fields);
// the top-level "rope_theta", where given, must agree.
Rope parse_rope_object(const json& j, const json& rp, const std::string& path, const std::string& field, const ModelConfig& c) {
  if (!rp.is_object()) throw Error(path + ": field \"" + field + "\": expected an object, found " + json_text(rp));
  Rope r;
  r.theta = config_number(rp, "rope_theta", path + " (" + field + ")", c.rope_theta);
  r.scaling = parse_rope_scaling(j, rp, path, field, c);
  return r;
}

// RoPE: "rope_theta" and "rope_scaling" (transformers < 5), or "rope_parameters", one object or one
// per layer type ("full_attention", "sliding_attention": Gemma 3); the sliding layers' own goes to
// local_rope. Reading only the old keys would silently fall back to 10000 and no scaling.
void parse_rope(const json& j, const std::string& path, ModelConfig& c) {
  c.rope_theta = config_number(j, "rope_theta", path, 10000.0);
  const json rp = j.contains("rope_parameters") ? j["rope_parameters"] : json();
  if (!rp.is_null()) {
    if (!rp.is_object()) throw Error(path + ": field \"rope_parameters\": expected an object, found " + json_text(rp));
    const bool per_type = rp.contains("full_attention") || rp.contains("sliding_attention");
    const Rope global = parse_rope_object(j, per_type ? rp.value("full_attention", json::object()) : rp, path,
                                          per_type ? "rope_parameters.full_attention" : "rope_parameters", c);
    if (j.contains("rope_theta") && !j["rope_theta"].is_null() && global.theta != c.rope_theta)
      throw Error(path + ": \"rope_theta\" (" + json_text(j["rope_theta"]) + ") and \"rope_parameters\".\"rope_theta\" (" +
                  json_text(global.theta) + ") disagree");
    c.rope_theta = global.theta;
    c.rope_scaling = global.scaling;
    if (per_type && rp.contains("sliding_attention"))
      c.local_rope = parse_rope_object(j, rp["sliding_attention"], path, "rope_parameters.sliding_attention", c);
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    c.rope_scaling = parse_rope_scaling(j, j["rope_scaling"], path, "rope_scaling", c);
}

// The rotary width: partial_rotary_factor x head_dim (top level, or in rope_parameters), even.
void parse_rotary_dim(const json& j, const std::string& path, ModelConfig& c) {
  const json& rp = j.contains("rope_parameters") && j["rope_parameters"].is_object() ? j["rope_parameters"] : json::object();
  const double f = config_number(j, "partial_rotary_factor", path, config_number(rp, "partial_rotary_factor", path, 1.0));
  if (f <= 0 || f > 1) throw Error(path + ": field \"partial_rotary_factor\": expected a number in (0, 1], found " + json_text(f));
  c.rotary_dim = static_cast<int64_t>(double(c.head_dim) * f);
  if (c.rotary_dim % 2 != 0)
    throw Error(path + ": the rotary width (head_dim " + std::to_string(c.head_dim) + " x partial_rotary_factor) must be even, found " +
                std::to_string(c.rotary_dim));
}

// Which layers slide: "layer_types" (one "full_attention" or "sliding_attention" a layer) over
// what the family set; a sliding layer needs the family's window.
void parse_layer_types(const json& j, const std::string& path, ModelConfig& c) {
  if (!j.contains("layer_types") || j["layer_types"].is_null()) return;
  const json& t = j["layer_types"];
  const std::string where = path + ": field \"layer_types\"";
  if (!t.is_array() || static_cast<int64_t>(t.size()) != c.n_layer)
    throw Error(where + ": expected a list of num_hidden_layers (" + std::to_string(c.n_layer) + ") layer types, found " + json_text(t));
  c.sliding_layers.clear();
  for (const json& x : t) {
    if (x != "full_attention" && x != "sliding_attention")
      throw Error(where + ": expected \"full_attention\" or \"sliding_attention\" for each layer, found " + json_text(x));
    c.sliding_layers.push_back(x == "sliding_attention");
  }
  const bool any = std::find(c.sliding_layers.begin(), c.sliding_layers.end(), true) != c.sliding_layers.end();
  if (any && c.sliding_window == 0)
    throw Error(where + ": \"sliding_attention\" layers, but the " + c.model_type +
                " family has no sliding window here (\"sliding_window\")");
}

// The MLP's activation: "hidden_activation" (Gemma) or "hidden_act".
Activation parse_activation(const json& j, const std::string& path) {
  const char* key = j.contains("hidden_activation") && !j["hidden_activation"].is_null() ? "hidden_activation" : "hidden_act";
  if (!j.contains(key) || j[key].is_null() || j[key] == "silu") return Activation::Silu;
  if (j[key] == "gelu_pytorch_tanh") return Activation::GeluTanh;
  throw Error(path + ": field \"" + key + "\": expected \"silu\" or \"gelu_pytorch_tanh\", found " + json_text(j[key]));
}

// Features we do not implement must not be ignored silently.
void refuse_unsupported(const json& j, const std::string& path, const ModelConfig& c) {
  if (config_bool(j, "use_sliding_window", path, false))
    throw Error(path + ": field \"use_sliding_window\": true is not supported (Qwen2's window above max_window_layers)");
  if (config_bool(j, "mlp_bias", path, false)) throw Error(path + ": field \"mlp_bias\": true is not supported");
  if (config_bool(j, "use_bidirectional_attention", path, false))
    throw Error(path + ": field \"use_bidirectional_attention\": true is not supported (a causal language model is trained here)");
  // Soft-capping where the family does not apply it: transformers' Llama or Qwen would ignore the
  // logits' cap, and its Gemma 3 ignores the attention scores' (Gemma 2 had it).
  const std::pair<const char*, double> caps[] = {{"final_logit_softcapping", c.final_softcap}, {"attn_logit_softcapping", 0.0}};
  for (const auto& [k, taken] : caps)
    if (j.contains(k) && !j[k].is_null() && taken == 0)
      throw Error(path + ": field \"" + std::string(k) + "\": soft-capping is not part of model_type " + json_text(c.model_type) +
                  " (expected null), found " + json_text(j[k]));
}

}  // namespace

ModelConfig ModelConfig::from_json(const std::string& text, const std::string& path) {
  json j = parse_json(text, path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  ModelConfig c;
  c.raw = j;
  const ModelFamily& family = find_model_family(j, path);
  c.model_type = family.model_type;
  c.n_vocab = config_int(j, "vocab_size", path);
  c.n_embd = config_int(j, "hidden_size", path);
  c.n_ff = config_int(j, "intermediate_size", path);
  c.n_layer = config_int(j, "num_hidden_layers", path);
  c.n_head = config_int(j, "num_attention_heads", path);
  c.n_kv_head = config_int(j, "num_key_value_heads", path, c.n_head);
  if (c.n_vocab == 0 || c.n_embd == 0 || c.n_ff == 0 || c.n_layer == 0 || c.n_head == 0 || c.n_kv_head == 0)
    throw Error(path + ": vocab_size, hidden_size, intermediate_size, num_hidden_layers and the head counts must be > 0");
  if (c.n_head % c.n_kv_head != 0)
    throw Error(path + ": num_attention_heads (" + std::to_string(c.n_head) + ") must be a multiple of num_key_value_heads (" +
                std::to_string(c.n_kv_head) + ")");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = config_int(j, "head_dim", path);
  } else {
    if (c.n_embd % c.n_head != 0)
      throw Error(path + ": hidden_size (" + std::to_string(c.n_embd) + ") is not divisible by num_attention_heads (" +
                  std::to_string(c.n_head) + ") and no head_dim is given");
    c.head_dim = c.n_embd / c.n_head;
  }
  c.rms_norm_eps = config_number(j, "rms_norm_eps", path, 1e-6);
  c.max_position_embeddings = config_int(j, "max_position_embeddings", path, 32768);
  parse_rotary_dim(j, path, c);
  parse_rope(j, path, c);
  c.tie_word_embeddings = config_bool(j, "tie_word_embeddings", path, false);
  c.hidden_act = parse_activation(j, path);
  family.configure(j, path, c);  // biases, norms, windows, scales: src/model/families/
  refuse_unsupported(j, path, c);
  parse_layer_types(j, path, c);
  return c;
}

ModelConfig ModelConfig::from_dir(const std::string& dir) {
  if (file_exists(dir))
    throw Error(dir + ": is a file; expected a model directory (config.json, model.safetensors, tokenizer.json)" +
                (ends_with(dir, ".json") || ends_with(dir, ".safetensors") ? "; pass the directory that holds it" : ""));
  if (!dir_exists(dir)) throw Error(dir + ": model directory does not exist");
  const std::string path = dir + "/config.json";
  if (!file_exists(path)) throw Error(dir + ": no config.json (expected a Hugging Face model directory)");
  return from_json(read_file(path), path);
}

int64_t ModelConfig::window_of(int64_t layer) const {
  if (sliding_window == 0) return 0;
  return sliding_layers.empty() || sliding_layers.at(static_cast<size_t>(layer)) ? sliding_window : 0;
}

bool ModelConfig::has_window() const {
  for (int64_t l = 0; l < n_layer; ++l)
    if (window_of(l) > 0) return true;
  return false;
}

bool ModelConfig::sparse(int64_t layer) const {
  return n_experts > 0 && (moe_layers.empty() || moe_layers.at(static_cast<size_t>(layer)));
}

Rope ModelConfig::rope_of(int64_t layer) const {
  if (local_rope && window_of(layer) > 0) return *local_rope;
  return Rope{rope_theta, rope_scaling};
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ModelConfig::expected_tensors() const {
  const int64_t q = n_head * head_dim, kv = n_kv_head * head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"model.embed_tokens.weight", {n_vocab, n_embd}}};
  auto projection = [&](const std::string& name, int64_t rows, int64_t cols, bool bias) {
    out.push_back({name + ".weight", {rows, cols}});
    if (bias) out.push_back({name + ".bias", {rows}});
  };
  for (int64_t i = 0; i < n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (fused_projections) {
      projection(p + "self_attn.qkv_proj", q + 2 * kv, n_embd, attention_bias);
    } else {
      projection(p + "self_attn.q_proj", q, n_embd, attention_bias);
      projection(p + "self_attn.k_proj", kv, n_embd, attention_bias);
      projection(p + "self_attn.v_proj", kv, n_embd, attention_bias);
    }
    projection(p + "self_attn.o_proj", n_embd, q, o_proj_bias);
    if (qk_norm != QkNorm::None) {
      out.push_back({p + "self_attn.q_norm.weight", {qk_norm == QkNorm::Whole ? q : head_dim}});
      out.push_back({p + "self_attn.k_norm.weight", {qk_norm == QkNorm::Whole ? kv : head_dim}});
    }
    if (sparse(i)) {
      const bool mixtral = expert_names == ExpertNames::Mixtral;
      const std::string block = p + (mixtral ? "block_sparse_moe." : "mlp.");
      out.push_back({block + "gate.weight", {n_experts, n_embd}});
      for (int64_t e = 0; e < n_experts; ++e) {
        const std::string x = block + "experts." + std::to_string(e) + ".";
        projection(x + (mixtral ? "w1" : "gate_proj"), n_ff_expert, n_embd, false);
        projection(x + (mixtral ? "w3" : "up_proj"), n_ff_expert, n_embd, false);
        projection(x + (mixtral ? "w2" : "down_proj"), n_embd, n_ff_expert, false);
      }
    } else if (fused_projections) {
      projection(p + "mlp.gate_up_proj", 2 * n_ff, n_embd, false);
      projection(p + "mlp.down_proj", n_embd, n_ff, false);
    } else {
      projection(p + "mlp.gate_proj", n_ff, n_embd, false);
      projection(p + "mlp.up_proj", n_ff, n_embd, false);
      projection(p + "mlp.down_proj", n_embd, n_ff, false);
    }
    // The norms in state-dict order: Pre has input and post_attention (before the MLP), Post
    // post_attention and post_feedforward, Sandwich all four.
    if (norm_placement != NormPlacement::Post) out.push_back({p + "input_layernorm.weight", {n_embd}});
    out.push_back({p + "post_attention_layernorm.weight", {n_embd}});
    if (norm_placement == NormPlacement::Sandwich) out.push_back({p + "pre_feedforward_layernorm.weight", {n_embd}});
    if (norm_placement != NormPlacement::Pre) out.push_back({p + "post_feedforward_layernorm.weight", {n_embd}});
  }
  out.push_back({"model.norm.weight", {n_embd}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {n_vocab, n_embd}});
  return out;
}

int64_t ModelConfig::n_params() const {
  int64_t n = 0;
  for (const auto& [name, shape] : expected_tensors()) {
    int64_t size = 1;
    for (int64_t d : shape) size *= d;
    n += size;
  }
  return n;
}

}  // namespace grpo
