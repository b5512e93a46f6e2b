// grpo_generate: sample from (or score with) a Hugging Face Qwen2/Llama model directory.
//   grpo_generate <model_dir> --prompt "text" [-n G] [--greedy] [...]      chat-rendered unless --raw
//   grpo_generate <model_dir> --prompts-file F.jsonl                       one {"prompt": ...} or string per line
//   grpo_generate <model_dir> --prompt-ids 1,2,3[;4,5] --max-new-tokens N --greedy --print-ids
//   grpo_generate <model_dir> --score-ids 1,2,3,...   log-prob of each id after the first (%.6f)
// Completions go to stdout (with --print-ids: the ids, one line per sequence in input order);
// everything else, including `prefill_tokens_per_s=... decode_tokens_per_s=...`, to stderr.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/base/safetensors.h"
#include "grpo/bin/cli.h"
#include "grpo/config/config.h"
#include "grpo/engine/dataset.h"
#include "grpo/engine/sampler.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"
#include "grpo/run/trainer_state.h"
#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;

namespace {

std::vector<int32_t> parse_ids(const std::string& s, const std::string& what) {
  std::vector<int32_t> ids;
  for (const auto& part : split(s, ',')) {
    std::string t(trim(part));
    char* end = nullptr;
    long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 0) throw Error(what + ": expected comma-separated non-negative ids, found " + quote(t));
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

// --score-ids: the log-prob of each id after the first given its prefix (and, with --logits-out,
// the (T, V) fp32 logits as safetensors "logits").
void score(CausalLM& model, const torch::Device& dev, const std::string& score_ids, const std::string& logits_out) {
  auto ids = parse_ids(score_ids, "--score-ids");
  if (ids.size() < 2) throw Error("--score-ids: need at least two ids");
  for (int32_t id : ids)
    if (id >= model->cfg.n_vocab)
      throw Error("--score-ids: id " + std::to_string(id) + " >= vocab_size " + std::to_string(model->cfg.n_vocab));
  torch::NoGradGuard ng;
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0).to(dev);
  auto logits = model->forward(x).to(torch::kFloat32)[0].to(torch::kCPU).contiguous();  // (T, V)
  if (!logits_out.empty())
    write_safetensors(
        logits_out,
        {{"logits", DType::F32, {logits.size(0), logits.size(1)}, logits.data_ptr(), static_cast<size_t>(logits.numel()) * sizeof(float)}});
  auto lp = torch::log_softmax(logits, -1);
  for (size_t i = 0; i + 1 < ids.size(); ++i) std::printf("%s%.6f", i ? "," : "", lp[i][ids[i + 1]].item<float>());
  std::printf("\n");
}

void check_ids_below(const std::vector<std::vector<int32_t>>& prompts, int64_t n_vocab) {
  for (const auto& p : prompts)
    for (int32_t id : p)
      if (id >= n_vocab) throw Error("prompt id " + std::to_string(id) + " >= vocab_size " + std::to_string(n_vocab));
}

// The prompts as ids: --prompt-ids as given, text (--prompt, --prompts-file) chat-rendered unless
// --raw; `tok` is loaded for text prompts.
std::vector<std::vector<int32_t>> read_prompts(const std::string& model_dir, const std::string& prompt, const std::string& prompts_file,
                                               const std::string& prompt_ids, bool raw, const std::string& system_prompt,
                                               const ChatSettings& chat, std::unique_ptr<Tokenizer>& tok) {
  std::vector<std::vector<int32_t>> prompts;
  if (!prompt_ids.empty()) {
    for (const auto& p : split(prompt_ids, ';')) prompts.push_back(parse_ids(p, "--prompt-ids"));
  } else {
    tok = load_tokenizer(model_dir);
    std::vector<std::string> texts;
    if (!prompt.empty()) texts.push_back(prompt);
    std::ifstream in(prompts_file);
    if (!prompts_file.empty() && !in) throw Error(prompts_file + ": cannot open");
    size_t lineno = 0;
    for (std::string line; !prompts_file.empty() && std::getline(in, line);) {
      ++lineno;
      if (trim(line).empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_string())
        texts.push_back(j.get<std::string>());
      else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string())
        texts.push_back(j["prompt"]);
      else if (j.is_object() && j.contains("question") && j["question"].is_string())
        texts.push_back(j["question"]);
      else
        throw Error(prompts_file + ":" + std::to_string(lineno) + ": expected a JSON string or an object with \"prompt\" or \"question\"");
    }
    if (texts.empty()) throw Error(prompts_file + ": no prompts");
    SpecialIds special = load_special_ids(model_dir, *tok, chat);
    for (const auto& t : texts) {
      std::vector<int32_t> ids;
      if (raw && special.add_bos) ids.push_back(*special.bos);  // what HF's tokenizer(text) gives
      auto body = raw ? tok->encode(t) : tokenize_prompt(*tok, special.chat, system_prompt, t, 1 << 20).ids;
      ids.insert(ids.end(), body.begin(), body.end());
      prompts.push_back(std::move(ids));
    }
  }
  return prompts;
}

// Each completion on its own line: ids (--print-ids, or no tokenizer), the text alone for one
// completion, else JSON-quoted text.
void print_completions(const Rollout& r, const Tokenizer* tok, bool print_ids) {
  const auto completions = completion_token_ids(r);
  for (const auto& out : completions) {
    if (print_ids || !tok) {
      for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? "," : "", out[i]);
      std::printf("\n");
    } else {
      std::string text = tok->decode(out, /*skip_special=*/true);
      if (completions.size() == 1)
        std::printf("%s\n", text.c_str());
      else
        std::printf("%s\n", json_text(nlohmann::json(text)).c_str());
    }
  }
}

// The option combinations CLI11 cannot check alone.
void check_options(const std::string& prompt, const std::string& prompts_file, const std::string& prompt_ids, const std::string& score_ids,
                   const std::string& logits_out, int64_t G, const SamplingParams& sp) {
  int sources = !prompt.empty() + !prompts_file.empty() + !prompt_ids.empty() + !score_ids.empty();
  if (!logits_out.empty() && score_ids.empty()) throw Error("--logits-out needs --score-ids");
  if (sources != 1) throw Error("give exactly one of --prompt, --prompts-file, --prompt-ids, --score-ids");
  if (G < 1) throw Error("-n: expected >= 1, found " + std::to_string(G));
  if (!(sp.temperature > 0)) throw Error("--temperature: expected > 0");
  if (!(sp.top_p > 0 && sp.top_p <= 1)) throw Error("--top-p: expected a value in (0, 1]");
}

// The sampling settings (SamplingParams' fields).
void add_sampling_options(CLI::App& app, SamplingParams& sp) {
  app.add_option("--max-new-tokens", sp.max_new_tokens, "completion length cap")->capture_default_str()->check(integer_in(1, 1 << 20));
  app.add_flag("--greedy", sp.greedy, "greedy decoding");
  app.add_option("--temperature", sp.temperature, "sampling temperature")->capture_default_str()->check(above_zero());
  app.add_option("--top-p", sp.top_p, "nucleus mass, in (0, 1]")->capture_default_str()->check(number_in(1e-9, 1.0));
  app.add_option("--top-k", sp.top_k, "top-k (0 = off)")->capture_default_str()->check(integer_in(0, INT_MAX));
  app.add_option("--min-p", sp.min_p, "min-p (0 = off)")->capture_default_str()->check(number_in(0.0, 1.0));
  app.add_option("--repetition-penalty", sp.repetition_penalty, "repetition penalty (1 = off)")->capture_default_str()->check(above_zero());
  app.add_option("--seed", sp.seed, "sampling seed")->capture_default_str();
}

// A grpo_train checkpoint generates with the settings it was trained with (system prompt, chat
// template and kwargs, max_new_tokens, temperature) unless a flag says otherwise; says so on stderr.
ChatSettings checkpoint_defaults(const CLI::App& app, const std::string& model_dir, std::string& system_prompt, const ChatOptions& chat,
                                 SamplingParams& sp) {
  TrainConfig trained;
  const std::string from = apply_checkpoint_config(trained, model_dir);
  if (from.empty()) return chat.settings();
  if (app.count("--system") == 0) system_prompt = trained.system_prompt;
  if (app.count("--max-new-tokens") == 0) sp.max_new_tokens = trained.max_new_tokens;
  if (app.count("--temperature") == 0) sp.temperature = trained.temperature;
  const bool chat_flags = app.count("--chat-template") + app.count("--chat-template-kwargs") + app.count("--enable-thinking") > 0;
  std::fprintf(stderr, "settings from %s: system prompt %s, max_new_tokens %lld, temperature %s%s\n", from.c_str(),
               quote(system_prompt, 60).c_str(), (long long)sp.max_new_tokens, format_double(sp.temperature).c_str(),
               chat_flags ? "" : ", its chat template settings");
  return chat_flags ? chat.settings() : chat_settings(trained);
}

// Where and how the model runs.
void add_runtime_options(CLI::App& app, std::string& dtype, std::string& device, std::string& decode, std::string& attention) {
  app.add_option("--dtype", dtype, "auto | float32 | bfloat16 | float16")->capture_default_str();
  app.add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--decode-mode", decode, "eager | static | cuda_graph")->capture_default_str();
  app.add_option("--attention", attention, "eager | sdpa (LibTorch >= 2.0)")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_generate: sample from or score with a Hugging Face Qwen2, Qwen3 or Llama model"};
  add_version_flag(app, "grpo_generate");
  std::string model_dir, prompt, prompts_file, prompt_ids, score_ids, dtype = "auto", device = "auto", decode = "eager",
                                                                      attention = "eager";
  std::string system_prompt = kDefaultSystemPrompt, logits_out;
  bool raw = false, print_ids = false, ignore_eos = false, no_stream = false;
  SamplingParams sp;
  int64_t G = 1;
  app.add_option("model_dir", model_dir, "Hugging Face model directory")->required();
  std::string adapter;
  app.add_option("--adapter", adapter, "a LoRA adapter directory (PEFT's files, e.g. a LoRA run's checkpoint-N) over model_dir");
  app.add_option("--prompt", prompt, "prompt text (rendered by the model's chat template unless --raw)");
  ChatOptions chat;
  chat.add_to(app);
  app.add_option("--prompts-file", prompts_file, "JSONL: one string or {\"prompt\"|\"question\": ...} per line");
  app.add_option("--prompt-ids", prompt_ids, "token ids: 1,2,3 or several prompts 1,2;3,4");
  app.add_option("--score-ids", score_ids, "print the log-prob of each id after the first, given its prefix");
  app.add_option("--logits-out", logits_out, "with --score-ids: also write the (T, V) fp32 logits as safetensors \"logits\"");
  app.add_flag("--raw", raw, "do not chat-render text prompts");
  app.add_option("--system", system_prompt, "system prompt for chat rendering");
  app.add_option("-n", G, "samples per prompt")->capture_default_str()->check(integer_in(1, 65536));
  add_sampling_options(app, sp);
  app.add_flag("--ignore-eos", ignore_eos, "do not stop at EOS ids");
  app.add_flag("--print-ids", print_ids, "print completion ids instead of text");
  app.add_flag("--no-stream", no_stream, "do not stream a single completion");
  add_runtime_options(app, dtype, device, decode, attention);
  GRPO_CLI_PARSE(app, argc, argv);
  init_runtime();

  try {
    model_dir = resolve_model_path(model_dir);
    check_options(prompt, prompts_file, prompt_ids, score_ids, logits_out, G, sp);
    sp.decode = parse_decode_mode(decode);
    const DeviceSetting device_setting = parse_device_setting(device, "--device");
    check_decode_mode(sp.decode, resolve_device(device_setting));
    Policy policy = load_policy(model_dir, device_setting, parse_precision(dtype, "--dtype"), parse_attention(attention), adapter);
    auto& model = policy.model;
    const torch::Device dev = policy.device;
    std::fprintf(stderr, "loaded %s: %.1f M params, %s, %s, %.2f s\n", model_dir.c_str(), model->cfg.n_params() / 1e6,
                 c10::toString(policy.dtype), dev.str().c_str(), policy.load_seconds);

    if (!score_ids.empty()) {
      score(model, dev, score_ids, logits_out);
      return 0;
    }
    // ---- prompts
    std::unique_ptr<Tokenizer> tok;
    const ChatSettings chat_settings_used = checkpoint_defaults(app, model_dir, system_prompt, chat, sp);
    auto prompts = read_prompts(model_dir, prompt, prompts_file, prompt_ids, raw, system_prompt, chat_settings_used, tok);
    check_ids_below(prompts, model->cfg.n_vocab);
    // ---- generation parameters from the model dir (stop ids, allowed vocabulary, pad)
    if (tok || file_exists(model_dir + "/tokenizer.json") || file_exists(model_dir + "/tokenizer.model")) {
      if (!tok) tok = load_tokenizer(model_dir);
      apply_model_limits(sp, *tok, load_special_ids(model_dir, *tok, chat_settings_used), model->cfg.n_vocab);
      if (ignore_eos) sp.stop_ids.clear();
    }
    // A single text completion streams as it is generated, whole UTF-8 characters at a time.
    const bool stream = tok && !print_ids && !no_stream && prompts.size() == 1 && G == 1;
    std::unique_ptr<IncrementalDecoder> dec;
    if (stream) {
      dec = std::make_unique<IncrementalDecoder>(*tok, /*skip_special=*/true);
      sp.on_token = [&](int64_t, int64_t id) {
        std::fputs(dec->push(static_cast<int32_t>(id)).c_str(), stdout);
        std::fflush(stdout);
      };
    }
    Rollout r = generate(model, prompts, G, sp);
    if (stream) std::printf("%s\n", dec->flush().c_str());
    if (!stream) print_completions(r, tok.get(), print_ids);
    std::fflush(stdout);
    std::fprintf(stderr, "prefill_tokens=%lld decode_tokens=%lld prefill_tokens_per_s=%.1f decode_tokens_per_s=%.1f kv_cache_mb=%.1f\n",
                 (long long)r.prefill_tokens, (long long)r.decode_tokens, r.prefill_tokens / std::max(r.prefill_seconds, 1e-9),
                 r.decode_tokens / std::max(r.decode_seconds, 1e-9), r.kv_cache_bytes / 1048576.0);
  } catch (const std::exception& e) {
    return tool_error("grpo_generate", e);
  }
  return 0;
}
