// model_io.cpp: a Qwen2 model directory read and written (config.json, *.safetensors, sharded or
// not, in Hugging Face's names), and fresh models initialised; the graph itself is causal_lm.cpp's.
// Declared in model_io.h.
#include "grpo/model/model_io.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "grpo/base/common.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/family.h"
#include "grpo/model/lora.h"

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Config

namespace {

int64_t int_field(const json& j, const char* key, const std::string& path, std::optional<int64_t> def = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    throw Error(path + ": missing field \"" + key + "\"");
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
    throw Error(path + ": field \"" + key + "\": expected a non-negative integer, found " + json_text(j[key]));
  return j[key].get<int64_t>();
}

double num_field(const json& j, const char* key, const std::string& path, std::optional<double> def = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    throw Error(path + ": missing field \"" + key + "\"");
  }
  if (!j[key].is_number()) throw Error(path + ": field \"" + key + "\": expected a number, found " + json_text(j[key]));
  return j[key].get<double>();
}

// The scaling object of "rope_scaling" (type or rope_type) or "rope_parameters" (rope_type).
RopeScaling parse_rope_scaling(const json& rs, const std::string& path, const std::string& field) {
  const std::string where = path + ": field \"" + field + "\"";
  if (!rs.is_object()) throw Error(where + ": expected an object, found " + json_text(rs));
  const json type = rs.contains("rope_type") ? rs["rope_type"] : rs.value("type", json("default"));
  RopeScaling out;
  if (type == "default") return out;
  if (type == "linear") {
    out.type = RopeType::Linear;
    out.factor = num_field(rs, "factor", where);
  } else if (type == "llama3") {
    out.type = RopeType::Llama3;
    out.factor = num_field(rs, "factor", where);
    out.low_freq_factor = num_field(rs, "low_freq_factor", where);
    out.high_freq_factor = num_field(rs, "high_freq_factor", where);
    out.original_max_position_embeddings = int_field(rs, "original_max_position_embeddings", where);
    if (out.high_freq_factor <= out.low_freq_factor)
      throw Error(where + ": high_freq_factor (" + json_text(rs["high_freq_factor"]) + ") must exceed low_freq_factor (" +
                  json_text(rs["low_freq_factor"]) + ")");
  } else {
    throw Error(where + ": " + (rs.contains("rope_type") ? "rope_type " : "type ") + json_text(type) +
                " is not supported (default, linear or llama3)");
  }
  if (out.factor <= 0) throw Error(where + ": \"factor\" must be > 0, found " + json_text(rs["factor"]));
  return out;
}

}  // namespace

ModelConfig ModelConfig::from_json(const std::string& text, const std::string& path) {
  json j = parse_json(text, path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  ModelConfig c;
  c.raw = j;
  const ModelFamily& family = find_model_family(j.value("model_type", json()), path);
  c.model_type = family.model_type;
  c.n_vocab = int_field(j, "vocab_size", path);
  c.n_embd = int_field(j, "hidden_size", path);
  c.n_ff = int_field(j, "intermediate_size", path);
  c.n_layer = int_field(j, "num_hidden_layers", path);
  c.n_head = int_field(j, "num_attention_heads", path);
  c.n_kv_head = int_field(j, "num_key_value_heads", path, c.n_head);
  if (c.n_vocab == 0 || c.n_embd == 0 || c.n_ff == 0 || c.n_layer == 0 || c.n_head == 0 || c.n_kv_head == 0)
    throw Error(path + ": vocab_size, hidden_size, intermediate_size, num_hidden_layers and the head counts must be > 0");
  if (c.n_head % c.n_kv_head != 0)
    throw Error(path + ": num_attention_heads (" + std::to_string(c.n_head) + ") must be a multiple of num_key_value_heads (" +
                std::to_string(c.n_kv_head) + ")");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = int_field(j, "head_dim", path);
  } else {
    if (c.n_embd % c.n_head != 0)
      throw Error(path + ": hidden_size (" + std::to_string(c.n_embd) + ") is not divisible by num_attention_heads (" +
                  std::to_string(c.n_head) + ") and no head_dim is given");
    c.head_dim = c.n_embd / c.n_head;
  }
  if (c.head_dim % 2 != 0) throw Error(path + ": head_dim must be even for rotary embeddings, found " + std::to_string(c.head_dim));
  c.rms_norm_eps = num_field(j, "rms_norm_eps", path, 1e-6);
  c.rope_theta = num_field(j, "rope_theta", path, 10000.0);
  // transformers >= 5 writes RoPE settings as "rope_parameters": {"rope_theta", "rope_type", the
  // scaling's fields} and no top-level "rope_theta"; reading only the old keys would silently fall
  // back to 10000 and no scaling.
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) throw Error(path + ": field \"rope_parameters\": expected an object, found " + json_text(rp));
    const double theta = num_field(rp, "rope_theta", path + " (rope_parameters)", c.rope_theta);
    if (j.contains("rope_theta") && !j["rope_theta"].is_null() && theta != c.rope_theta)
      throw Error(path + ": \"rope_theta\" (" + json_text(j["rope_theta"]) + ") and \"rope_parameters\".\"rope_theta\" (" +
                  json_text(rp["rope_theta"]) + ") disagree");
    c.rope_theta = theta;
    c.rope_scaling = parse_rope_scaling(rp, path, "rope_parameters");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    c.rope_scaling = parse_rope_scaling(j["rope_scaling"], path, "rope_scaling");
  c.max_position_embeddings = int_field(j, "max_position_embeddings", path, 32768);
  c.tie_word_embeddings = config_bool(j, "tie_word_embeddings", path, false);
  family.configure(j, path, c);  // biases, q/k norms, norm placement: src/model/families/
  // Features we do not implement must not be ignored silently.
  if (j.contains("layer_types") && j["layer_types"].is_array())
    for (const json& t : j["layer_types"])
      if (t != "full_attention")
        throw Error(path + ": field \"layer_types\": " + json_text(t) + " is not supported (only \"full_attention\")");
  if (config_bool(j, "use_sliding_window", path, false))
    throw Error(path + ": field \"use_sliding_window\": true is not supported (sliding-window attention)");
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw Error(path + ": field \"hidden_act\": expected \"silu\", found " + json_text(j["hidden_act"]));
  if (config_bool(j, "mlp_bias", path, false)) throw Error(path + ": field \"mlp_bias\": true is not supported");
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

int64_t ModelConfig::n_params() const {
  const int64_t q = n_head * head_dim, kv = n_kv_head * head_dim;
  const int64_t attn = n_embd * q + 2 * n_embd * kv + q * n_embd + (attention_bias ? q + 2 * kv : 0) + (o_proj_bias ? n_embd : 0);
  const int64_t qk_norms = qk_norm == QkNorm::Whole ? q + kv : qk_norm == QkNorm::PerHead ? 2 * head_dim : 0;
  const int64_t layer = attn + 3 * n_embd * n_ff + 2 * n_embd + qk_norms;
  return n_vocab * n_embd * (tie_word_embeddings ? 1 : 2) + n_layer * layer + n_embd;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ModelConfig::expected_tensors() const {
  const int64_t q = n_head * head_dim, kv = n_kv_head * head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"model.embed_tokens.weight", {n_vocab, n_embd}}};
  for (int64_t i = 0; i < n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "self_attn.q_proj.weight", {q, n_embd}});
    out.push_back({p + "self_attn.k_proj.weight", {kv, n_embd}});
    out.push_back({p + "self_attn.v_proj.weight", {kv, n_embd}});
    out.push_back({p + "self_attn.o_proj.weight", {n_embd, q}});
    if (attention_bias) {
      out.push_back({p + "self_attn.q_proj.bias", {q}});
      out.push_back({p + "self_attn.k_proj.bias", {kv}});
      out.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    if (o_proj_bias) out.push_back({p + "self_attn.o_proj.bias", {n_embd}});
    if (qk_norm != QkNorm::None) {
      out.push_back({p + "self_attn.q_norm.weight", {qk_norm == QkNorm::Whole ? q : head_dim}});
      out.push_back({p + "self_attn.k_norm.weight", {qk_norm == QkNorm::Whole ? kv : head_dim}});
    }
    out.push_back({p + "mlp.gate_proj.weight", {n_ff, n_embd}});
    out.push_back({p + "mlp.up_proj.weight", {n_ff, n_embd}});
    out.push_back({p + "mlp.down_proj.weight", {n_embd, n_ff}});
    if (norm_placement == NormPlacement::Pre) out.push_back({p + "input_layernorm.weight", {n_embd}});
    out.push_back({p + "post_attention_layernorm.weight", {n_embd}});
    if (norm_placement == NormPlacement::Post) out.push_back({p + "post_feedforward_layernorm.weight", {n_embd}});
  }
  out.push_back({"model.norm.weight", {n_embd}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {n_vocab, n_embd}});
  return out;
}

std::string check_weights(const std::string& dir, const ModelConfig& mc) {
  const WeightStore ws = WeightStore::open_dir(dir);
  auto shape_text = [](const std::vector<int64_t>& s) {
    std::string t = "[";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
  };
  const auto expected = mc.expected_tensors();
  for (const auto& [name, shape] : expected) {
    const WeightStore::Ref r = ws.find(name);
    if (!r.file) throw Error(dir + ": weights: no tensor " + quote(name) + ", which config.json implies (" + shape_text(shape) + ")");
    if (r.info->shape != shape)
      throw Error(r.file->path() + ": tensor " + quote(name) + " has shape " + shape_text(r.info->shape) + ", config.json implies " +
                  shape_text(shape));
  }
  char gb[32];
  std::snprintf(gb, sizeof gb, "%.2f GB", ws.total_bytes() / 1e9);
  return "weights: the " + std::to_string(expected.size()) + " tensors config.json implies are there with its shapes (" + gb +
         ", headers read); not checked: their values and dtypes, and that the tokenizer's ids mean what the weights learned";
}

// ---------------------------------------------------------------------------------------------
// Loading and saving

namespace {

torch::Dtype torch_dtype_of(DType d) {
  switch (d) {
    case DType::F32:
      return torch::kFloat32;
    case DType::F16:
      return torch::kFloat16;
    case DType::BF16:
      return torch::kBFloat16;
    case DType::F64:
      return torch::kFloat64;
    case DType::I64:
      return torch::kInt64;
    case DType::I32:
      return torch::kInt32;
    case DType::I16:
      return torch::kInt16;
    case DType::I8:
      return torch::kInt8;
    case DType::U8:
      return torch::kUInt8;
    case DType::BOOL:
      return torch::kBool;
  }
  return torch::kFloat32;
}

DType st_dtype_of(torch::Dtype d) {
  if (d == torch::kFloat32) return DType::F32;
  if (d == torch::kFloat16) return DType::F16;
  if (d == torch::kBFloat16) return DType::BF16;
  if (d == torch::kFloat64) return DType::F64;
  throw Error("save: unsupported dtype for a checkpoint");
}

std::string shape_str(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string join_list(const std::vector<std::string>& v, size_t max = 8) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max) out += ", ... (" + std::to_string(v.size()) + " in all)";
  return out;
}

}  // namespace

CausalLM load_causal_lm(const std::string& dir, torch::Dtype dtype, torch::Device device, LoadStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  ModelConfig cfg = ModelConfig::from_dir(dir);
  WeightStore store = WeightStore::open_dir(dir);
  CausalLM model(cfg, torch::TensorOptions().dtype(dtype).device(device));
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing;
  std::set<std::string> used;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    auto ref = store.find(name);
    if (!ref.file && name == "model.embed_tokens.weight" && cfg.tie_word_embeddings) ref = store.find("lm_head.weight");
    if (!ref.file) {
      missing.push_back(name);
      continue;
    }
    const TensorInfo& info = *ref.info;
    std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    if (info.shape != want)
      throw Error(ref.file->path() + ": tensor '" + info.name + "' has shape " + shape_str(info.shape) + ", the model (" + dir +
                  "/config.json) expects " + shape_str(param.sizes()) + " for '" + name + "'");
    if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16 && info.dtype != DType::F64)
      throw Error(ref.file->path() + ": tensor '" + info.name + "' has dtype " + dtype_name(info.dtype) +
                  ", expected a floating-point dtype (F32, F16, BF16)");
    param.copy_(tensor_in_file(*ref.file, info, want));
    ref.file->release(info);
    used.insert(info.name);
  }
  if (!missing.empty())
    throw Error(dir + ": checkpoint lacks " + std::to_string(missing.size()) + " tensor(s) the model needs: " + join_list(missing));
  std::vector<std::string> unexpected;
  for (const auto& n : store.names())
    if (!used.count(n) && !(cfg.tie_word_embeddings && n == "lm_head.weight")) unexpected.push_back(n);
  if (!unexpected.empty())
    throw Error(dir + ": checkpoint has " + std::to_string(unexpected.size()) + " tensor(s) the " + cfg.model_type +
                " model does not use: " + join_list(unexpected));
  if (stats) {
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats->checkpoint_bytes = store.total_bytes();
  }
  return model;
}

namespace {

// Unit norms, zero biases, normal(0, std) elsewhere, drawn from `gen` (an undefined generator:
// ATen's default one of each parameter's device).
void fill_init(CausalLM& model, double std, const at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    torch::Tensor& p = item.value();
    if (ends_with(item.key(), "norm.weight"))
      p.fill_(1.0);
    else if (ends_with(item.key(), ".bias"))
      p.zero_();
    else
      p.normal_(0.0, std, gen);
  }
}

}  // namespace

CausalLM init_causal_lm(const ModelConfig& cfg, uint64_t seed, double std) {
  CausalLM model(cfg, torch::TensorOptions().dtype(torch::kFloat32));
  fill_init(model, std, at::detail::createCPUGenerator(seed));
  return model;
}

CausalLM random_causal_lm(const ModelConfig& cfg, uint64_t seed, torch::TensorOptions opts, double std) {
  CausalLM model(cfg, opts);
  torch::manual_seed(seed);
  fill_init(model, std, at::Generator());
  return model;
}

bool is_lora_name(const std::string& name) {
  return ends_with(name, ".lora_A") || ends_with(name, ".lora_B");
}

void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors, torch::Dtype dtype) {
  std::vector<torch::Tensor> keep;  // CPU copies alive until written
  std::vector<TensorBytes> bytes;
  for (const auto& [name, x] : tensors) {
    keep.push_back(x.detach().to(torch::kCPU, dtype).contiguous());
    const auto& t = keep.back();
    bytes.push_back({name, st_dtype_of(dtype), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr(),
                     static_cast<size_t>(t.numel()) * t.element_size()});
  }
  write_safetensors(path, bytes);
}

torch::Tensor tensor_in_file(const SafetensorsFile& f, const TensorInfo& t, c10::IntArrayRef sizes) {
  return torch::from_blob(const_cast<uint8_t*>(f.data(t)), sizes, torch::TensorOptions().dtype(torch_dtype_of(t.dtype)));
}

void save_causal_lm(CausalLM& model, const std::string& dir, torch::Dtype dtype) {
  if (!dir_exists(dir) && ::mkdir(dir.c_str(), 0755) != 0 && !dir_exists(dir)) throw Error(dir + ": cannot create directory");
  json cfg = model->cfg.raw;
  // transformers < 5 reads "torch_dtype", >= 5 writes and reads "dtype": both, so neither sees a stale one.
  cfg["torch_dtype"] = cfg["dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat16 ? "float16" : "float32";
  write_file_atomic(dir + "/config.json", json_text(cfg, 2) + "\n");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& item : model->named_parameters())
    if (!is_lora_name(item.key())) tensors.emplace_back(item.key(), item.value());  // an adapter is saved as such (lora.h), or merged first
  write_tensors(dir + "/model.safetensors", tensors, dtype);
}

Policy load_policy(const std::string& model_dir, const DeviceSetting& device, Precision dtype, AttentionKernel attention,
                   const std::string& adapter) {
  Policy p;
  p.device = resolve_device(device);
  p.dtype = resolve_dtype(dtype, p.device);
  check_attention(attention);
  LoadStats ls;
  p.model = load_causal_lm(model_dir, p.dtype, p.device, &ls);
  if (!adapter.empty()) load_lora_adapter(p.model, adapter);
  p.model->set_attention(attention);
  p.load_seconds = ls.seconds;
  return p;
}

void copy_model_side_files(const std::string& from_dir, const std::string& to_dir) {
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "tokenizer.model", "special_tokens_map.json",
                        "generation_config.json", "vocab.json", "merges.txt"})
    if (file_exists(from_dir + "/" + f))
      std::filesystem::copy_file(from_dir + "/" + f, to_dir + "/" + f, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace grpo
