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

// Unit norm scales, zero biases, normal(0, std) elsewhere, drawn from `gen` (an undefined generator:
// ATen's default one of each parameter's device).
void fill_init(CausalLM& model, double std, const at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    torch::Tensor& p = item.value();
    if (ends_with(item.key(), "norm.weight"))
      p.fill_(model->cfg.norm_unit_offset ? 0.0 : 1.0);  // a unit scale either way (Gemma stores 1 + w)
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
