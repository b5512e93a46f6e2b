// lora.cpp: LoRA adapters on the Qwen2 projections, and PEFT's files; see lora.h.
#include "grpo/model/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/model/model_io.h"

namespace fs = std::filesystem;

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Targets

std::vector<std::string> resolve_lora_targets(const ModelConfig& mc, const std::vector<std::string>& targets) {
  auto has = [&](const std::string& t) { return std::find(targets.begin(), targets.end(), t) != targets.end(); };
  // A fused module stands for its parts: all of them or none (PEFT adapts modules, not rows).
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {{"qkv_proj", {"q_proj", "k_proj", "v_proj"}},
                                                                                {"gate_up_proj", {"gate_proj", "up_proj"}}};
  for (const auto& [fused, parts] : groups) {
    const auto named = std::count_if(parts.begin(), parts.end(), has);
    std::string listed;
    for (const auto& p : parts) listed += (listed.empty() ? "" : ", ") + p;
    if (!mc.fused_projections && has(fused))
      throw Error("lora_target_modules: " + fused + " is a fused projection; this " + mc.model_type + " model has " + listed + " apart");
    if (mc.fused_projections && named != 0 && named != static_cast<int64_t>(parts.size()))
      throw Error("lora_target_modules: this " + mc.model_type + " model computes " + listed + " in one " + fused +
                  ": name all of them, or " + fused);
  }
  std::vector<std::string> out;  // the targets' order, each module once
  for (const auto& t : targets) {
    // A mixture-of-experts model: the attention only. PEFT maps MLP names onto transformers' 3-D
    // expert tensors, so an adapter on a dense layer's MLP would not load there as it was trained.
    if (mc.n_experts > 0 && t != "q_proj" && t != "k_proj" && t != "v_proj" && t != "o_proj") continue;
    std::string module = t;
    for (const auto& [fused, parts] : groups)
      if (mc.fused_projections && std::find(parts.begin(), parts.end(), t) != parts.end()) module = fused;
    if (std::find(out.begin(), out.end(), module) == out.end()) out.push_back(module);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The adapters on the model

namespace {

// Every targeted projection of the decoder layers: (module name, layer).
std::vector<std::pair<std::string, LinearImpl*>> targeted(CausalLM& model, const std::vector<std::string>& targets) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model->named_modules()) {
    auto* lin = dynamic_cast<LinearImpl*>(item.value().get());
    const std::string& name = item.key();
    // Experts keep their weights: PEFT's LoRA (over transformers' 3-D expert tensors) cannot load adapters on them.
    if (!lin || !starts_with(name, "model.layers.") || name.find(".experts.") != std::string::npos) continue;
    if (std::find(targets.begin(), targets.end(), name.substr(name.rfind('.') + 1)) != targets.end()) out.emplace_back(name, lin);
  }
  return out;
}

std::vector<std::pair<std::string, LinearImpl*>> adapted(CausalLM& model) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model->named_modules())
    if (auto* lin = dynamic_cast<LinearImpl*>(item.value().get()); lin && lin->lora_A.defined()) out.emplace_back(item.key(), lin);
  return out;
}

void attach(LinearImpl& lin, torch::Tensor A, torch::Tensor B, const LoraConfig& cfg) {
  lin.lora_A = lin.register_parameter("lora_A", std::move(A));  // (r, in)
  lin.lora_B = lin.register_parameter("lora_B", std::move(B));  // (out, r)
  lin.lora_scaling = cfg.alpha / double(cfg.rank);
  lin.lora_dropout = cfg.dropout;
  lin.lora_on = true;
}

}  // namespace

void add_lora(CausalLM& model, const LoraConfig& cfg, uint64_t seed) {
  TORCH_CHECK(cfg.rank > 0, "add_lora: rank must be > 0");
  if (has_lora(model)) throw Error("add_lora: the model already has an adapter");
  for (const auto& t : cfg.targets) {
    const auto& fused = lora_fused_target_names();
    if (std::find(lora_target_names().begin(), lora_target_names().end(), t) == lora_target_names().end() &&
        std::find(fused.begin(), fused.end(), t) == fused.end())
      throw Error("lora_target_modules: unknown projection '" + t +
                  "'; expected some of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, qkv_proj, gate_up_proj");
  }
  auto layers = targeted(model, resolve_lora_targets(model->cfg, cfg.targets));
  if (layers.empty()) throw Error("lora_target_modules: no projection of the model matches");
  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard ng;
  for (auto& [name, lin] : layers) {
    const int64_t in = lin->weight.size(1), out = lin->weight.size(0);
    const double bound = 1.0 / std::sqrt(double(in));  // kaiming_uniform_(a = sqrt 5)
    auto A = torch::empty({cfg.rank, in}, torch::kFloat32).uniform_(-bound, bound, gen).to(lin->weight.device());
    auto B = torch::zeros({out, cfg.rank}, torch::TensorOptions().dtype(torch::kFloat32).device(lin->weight.device()));
    attach(*lin, A, B, cfg);
  }
  for (auto& item : model->named_parameters()) item.value().set_requires_grad(is_lora_name(item.key()));
}

bool has_lora(CausalLM& model) {
  return !adapted(model).empty();
}

void set_lora_enabled(CausalLM& model, bool on) {
  for (auto& [name, lin] : adapted(model)) lin->lora_on = on;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(CausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : model->named_parameters())
    if (is_lora_name(item.key())) out.emplace_back(item.key(), item.value());
  return out;
}

void merge_lora(CausalLM& model) {
  torch::NoGradGuard ng;
  for (auto& [name, lin] : adapted(model)) {
    auto delta = torch::matmul(lin->lora_B, lin->lora_A) * lin->lora_scaling;  // (out, in) fp32
    lin->weight.copy_((lin->weight.to(torch::kFloat32) + delta).to(lin->weight.scalar_type()));
    lin->lora_A = lin->lora_B = torch::Tensor();
    lin->unregister_lora();
  }
  for (auto& p : model->parameters()) p.set_requires_grad(true);
}

int64_t lora_param_count(const ModelConfig& mc, const LoraConfig& cfg) {
  if (cfg.rank <= 0) return 0;
  const int64_t q = mc.n_head * mc.head_dim, kv = mc.n_kv_head * mc.head_dim, D = mc.n_embd, F = mc.n_ff;
  const std::map<std::string, int64_t> in_plus_out = {{"q_proj", D + q},    {"k_proj", D + kv},           {"v_proj", D + kv},
                                                      {"o_proj", q + D},    {"gate_proj", D + F},         {"up_proj", D + F},
                                                      {"down_proj", F + D}, {"qkv_proj", D + q + 2 * kv}, {"gate_up_proj", D + 2 * F}};
  int64_t per_layer = 0;
  for (const auto& t : resolve_lora_targets(mc, cfg.targets)) per_layer += cfg.rank * in_plus_out.at(t);
  return per_layer * mc.n_layer;
}

// ---------------------------------------------------------------------------------------------
// PEFT's files

namespace {

const char* kPeftPrefix = "base_model.model.";

// "model.layers.0.self_attn.q_proj.lora_A" -> "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
std::string peft_key(const std::string& name) {
  return kPeftPrefix + name + ".weight";
}

}  // namespace

bool is_lora_adapter_dir(const std::string& dir) {
  return file_exists(dir + "/adapter_config.json");
}

void save_lora_adapter(CausalLM& model, const std::string& dir, const LoraConfig& cfg, const std::string& base_model) {
  auto params = lora_parameters(model);
  if (params.empty()) throw Error("save_lora_adapter: the model has no adapter");
  fs::create_directories(dir);
  json c = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"r", cfg.rank},
            {"lora_alpha", cfg.alpha},
            {"lora_dropout", cfg.dropout},
            {"target_modules", resolve_lora_targets(model->cfg, cfg.targets)},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"use_rslora", false},
            {"use_dora", false},
            {"modules_to_save", nullptr},
            {"layers_to_transform", nullptr},
            {"layers_pattern", nullptr},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()},
            {"revision", nullptr},
            {"base_model_name_or_path", base_model}};
  write_file_atomic(dir + "/adapter_config.json", json_text(c, 2) + "\n");
  for (auto& [name, t] : params) name = peft_key(name);
  write_tensors(dir + "/adapter_model.safetensors", params, torch::kFloat32);
}

LoraConfig read_lora_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  json j = json::parse(read_file(path), nullptr, false);
  if (!j.is_object()) throw Error(path + ": not a JSON object");
  auto field = [&](const char* k) -> const json& {
    if (!j.contains(k)) throw Error(path + ": field '" + std::string(k) + "' missing");
    return j[k];
  };
  if (field("peft_type") != "LORA") throw Error(path + ": field 'peft_type': expected \"LORA\", found " + j["peft_type"].dump());
  for (const char* k : {"use_dora", "use_rslora"})
    if (j.value(k, false)) throw Error(path + ": field '" + std::string(k) + "': true is not supported (expected false)");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (j.contains(k) && j[k].is_object() && !j[k].empty())
      throw Error(path + ": field '" + std::string(k) + "': per-module ranks or alphas are not supported");
  if (j.value("bias", std::string("none")) != "none") throw Error(path + ": field 'bias': expected \"none\", found " + j["bias"].dump());
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty())
    throw Error(path + ": field 'modules_to_save': extra trained modules are not supported");
  LoraConfig c;
  if (!field("r").is_number_integer() || j["r"].get<int64_t>() < 1)
    throw Error(path + ": field 'r': expected an integer >= 1, found " + j["r"].dump());
  c.rank = j["r"].get<int64_t>();
  if (!field("lora_alpha").is_number()) throw Error(path + ": field 'lora_alpha': expected a number, found " + j["lora_alpha"].dump());
  c.alpha = j["lora_alpha"].get<double>();
  c.dropout = j.value("lora_dropout", 0.0);
  const json& t = field("target_modules");
  c.targets.clear();
  if (t.is_string()) {
    throw Error(path + ": field 'target_modules': a regular expression is not supported; expected a list of projection names");
  } else if (t.is_array()) {
    for (const auto& x : t) c.targets.push_back(x.get<std::string>());
  } else {
    throw Error(path + ": field 'target_modules': expected a list of projection names, found " + t.dump());
  }
  std::sort(c.targets.begin(), c.targets.end());  // PEFT writes a set, in any order
  return c;
}

LoraConfig load_lora_adapter(CausalLM& model, const std::string& dir) {
  LoraConfig c = read_lora_config(dir);
  const std::string path = dir + "/adapter_model.safetensors";
  if (!file_exists(path)) throw Error(dir + ": missing adapter_model.safetensors");
  auto f = SafetensorsFile::open(path);
  if (!has_lora(model)) add_lora(model, c, 0);
  torch::NoGradGuard ng;
  size_t used = 0;
  for (auto& [name, p] : lora_parameters(model)) {
    const std::string key = peft_key(name);
    const TensorInfo* t = f->find(key);
    if (!t) throw Error(path + ": tensor '" + key + "' missing (the adapter's target_modules and the model must agree)");
    if (t->numel() != p.numel() || t->shape.size() != 2 || t->shape[0] != p.size(0) || t->shape[1] != p.size(1))
      throw Error(path + ": tensor '" + key + "' has " + std::to_string(t->numel()) + " values, the model's adapter needs " +
                  std::to_string(p.size(0)) + " x " + std::to_string(p.size(1)));
    if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16)
      throw Error(path + ": tensor '" + key + "': dtype must be F32, BF16 or F16");
    p.copy_(tensor_in_file(*f, *t, p.sizes()));
    ++used;
  }
  if (used != f->tensors().size())
    throw Error(path + ": holds " + std::to_string(f->tensors().size()) + " tensors, the model's adapter " + std::to_string(used) +
                " (an adapter for other modules or another model?)");
  return c;
}

}  // namespace grpo
