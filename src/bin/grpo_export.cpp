// grpo_export: a LoRA run's adapter merged into its base model, written as a full Hugging Face model
// directory (config.json, model.safetensors, the tokenizer and generation files), which
// transformers, vLLM or grpo_eval load like any other.
//   grpo_export <base_model_dir> --adapter <checkpoint-N or any PEFT LoRA dir> --merge --out DIR [--dtype D]
// W <- W + (alpha / r) B A in fp32, rounded once to the saved dtype (default: the base's).
// Written to DIR.tmp-<pid> and renamed, so DIR is never half written.
#include <unistd.h>

#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/bin/cli.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"

using namespace grpo;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"grpo_export: merge a LoRA adapter into its base model and write a Hugging Face model directory"};
  add_version_flag(app, "grpo_export");
  std::string base, adapter, out, dtype = "auto";
  bool merge = false;
  app.add_option("base_model_dir", base, "the Hugging Face model the adapter was trained on")->required();
  app.add_option("--adapter", adapter, "LoRA adapter directory (adapter_config.json + adapter_model.safetensors)")->required();
  app.add_flag("--merge", merge, "merge the adapter into the weights (the only export there is; required to say so)");
  app.add_option("--out", out, "output directory (must not exist)")->required();
  app.add_option("--dtype", dtype, "auto (the base's) | float32 | bfloat16 | float16")->capture_default_str();
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();
  try {
    base = resolve_model_path(base);
    if (!merge) throw Error("--merge is required: grpo_export writes the merged model (the adapter alone is already PEFT's format)");
    if (fs::exists(out)) throw Error("--out " + out + ": already exists; choose a new directory");
    ModelConfig mc = ModelConfig::from_dir(base);
    const std::string base_dtype = mc.raw.value("torch_dtype", mc.raw.value("dtype", std::string("float32")));
    const torch::Dtype dt = parse_dtype(dtype == "auto" ? base_dtype : dtype, torch::kCPU);
    auto model = load_causal_lm(base, torch::kFloat32, torch::kCPU);  // merged in fp32, rounded once on save
    LoraConfig c = load_lora_adapter(model, adapter);
    merge_lora(model);
    const std::string tmp = out + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    save_causal_lm(model, tmp, dt);
    copy_model_side_files(base, tmp);
    fs::rename(tmp, out);
    std::printf("merged %s (LoRA r=%lld, alpha %g, %zu target modules) into %s -> %s (%s)\n", adapter.c_str(), (long long)c.rank, c.alpha,
                c.targets.size(), base.c_str(), out.c_str(), c10::toString(dt));
    return 0;
  } catch (const std::exception& e) {
    return tool_error("grpo_export", e);
  }
}
