// grpo_tokenize: encode / decode JSONL with the project's tokenizers.
//   encode (default): each stdin line is a JSON string -> a JSON array of ids (no BOS/EOS added;
//                     special-token strings in the text are matched as special tokens)
//   --decode        : each stdin line is a JSON array of ids -> a JSON string
//   --chat          : each stdin line is {"user": ..., "system": ...} (the trainer's prompt, tokenize_prompt)
//                     or {"messages": [{"role", "content"}, ...]} -> {"text": ..., "ids": [...]}, rendered
//                     with the generation prompt by the model's chat template (chat_template.h; a
//                     directory's tokenizer_config.json or chat_template.jinja; --chat-template and
//                     --chat-template-kwargs, --enable-thinking as the config keys); messages pass
//                     every key to the template (assistant "tool_calls", role "tool" results, ...);
//                     "tools" (a list as the config's `tools`) becomes the template's `tools`; ids:
//                     special tokens matched in the template's text, never in a message's
//   --bench         : stderr gets `tokens=<n> seconds=<s> tokens_per_s=<r>` for the encode loop
// A bad line is reported with its line number; the program exits 1 after the lines before it.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/bin/cli.h"
#include "grpo/chat/tool_calls.h"
#include "grpo/engine/dataset.h"
#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool chat_input_ok(const json& v) {
  if (!v.is_object()) return false;
  if (v.contains("messages")) {
    if (!v["messages"].is_array() || v["messages"].empty()) return false;
    for (const json& m : v["messages"])
      if (!m.is_object() || !m.value("role", json()).is_string()) return false;
    return true;
  }
  return v.contains("user") && v["user"].is_string() && (!v.contains("system") || v["system"].is_string());
}

// A --chat line as the trainer renders it: {"user", "system"} as tokenize_prompt makes it a
// conversation (prompt_messages); a message list as given, every key passed to the template
// (tool_calls, tool_call_id, name, ...), with "tools" as the template's `tools`.
json render_chat_line(const json& v, const std::string& raw, const Tokenizer& tok, const ChatTemplate& chat) {
  const ordered_json line = ordered_json::parse(raw);  // keys in their given order, as tojson writes them
  ordered_json messages = ordered_json::array();
  if (line.contains("messages")) {
    messages = line["messages"];
  } else {
    for (const ChatMessage& m : prompt_messages(v.value("system", std::string()), v["user"].get<std::string>()))
      messages.push_back(ordered_json::object({{"role", m.role}, {"content", m.content}}));
  }
  const ordered_json tools = line.contains("tools") ? tools_json(parse_tools(line["tools"], "tools")) : ordered_json();
  const jinja::Text text = chat.render(messages, tools, /*add_generation_prompt=*/true, last_user_message(messages));
  return {{"text", text.s}, {"ids", tokenize_rendered(tok, text, 1 << 30).ids}};
}

// Every line of stdin parsed first, so that a bad line is found before any work; output stops at
// it (`failure` names it, "" when every line is good).
std::vector<json> parse_inputs(bool decode, bool chat, std::string& failure, std::vector<std::string>& raw) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(std::cin, line);) lines.push_back(std::move(line));
  std::vector<json> inputs;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string where = "stdin:" + std::to_string(i + 1);
    json v;
    try {
      v = json::parse(lines[i]);
    } catch (const json::exception& e) {
      failure = where + ": invalid JSON (" + e.what() + ")";
      break;
    }
    if (chat && !chat_input_ok(v)) {
      failure = where +
                ": expected {\"user\": string, \"system\": string (optional)} or {\"messages\": [{\"role\": string, \"content\": string}, "
                "...]}, found " +
                json_text(v);
      break;
    }
    if (!decode && !chat && !v.is_string()) {
      failure = where + ": expected a JSON string, found " + std::string(v.type_name());
      break;
    }
    if (decode && !v.is_array()) {
      failure = where + ": expected a JSON array of ids, found " + std::string(v.type_name());
      break;
    }
    inputs.push_back(std::move(v));
    raw.push_back(lines[i]);
  }
  return inputs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpo_tokenize: JSONL encode/decode with a tokenizer.json, tokenizer.model or model dir"};
  add_version_flag(app, "grpo_tokenize");
  std::string path;
  bool decode = false, chat = false, bench = false, skip_special = false, no_special = false;
  int threads = 1;
  app.add_option("--tokenizer", path, "tokenizer.json, tokenizer.model or a model directory")->required();
  app.add_flag("--decode", decode, "decode arrays of ids instead of encoding strings");
  app.add_flag("--chat", chat, "render {\"user\", \"system\"} or {\"messages\"} objects as the trainer renders prompts");
  ChatOptions chat_options;
  chat_options.add_to(app);
  app.add_flag("--skip-special", skip_special, "decode: drop special tokens");
  app.add_flag("--no-special", no_special, "encode: treat special-token strings as plain text");
  app.add_flag("--bench", bench, "print encode throughput to stderr");
  app.add_option("--threads", threads, "encode threads (0 = all cores)")->capture_default_str()->check(integer_in(0, 1024));
  GRPO_CLI_PARSE(app, argc, argv);

  try {
    path = resolve_model_path(path);
    auto tok = load_tokenizer(path);
    std::string failure;
    std::vector<std::string> raw;
    const std::vector<json> inputs = parse_inputs(decode, chat, failure, raw);
    if (chat) {
      const std::string dir = dir_exists(path) ? path : fs::path(path).parent_path().string();
      const ChatTemplate tmpl = load_chat_template(dir.empty() ? "." : dir, chat_options.settings());
      for (size_t i = 0; i < inputs.size(); ++i) std::cout << json_text(render_chat_line(inputs[i], raw[i], *tok, tmpl)) << "\n";
    } else if (decode) {
      for (size_t i = 0; i < inputs.size(); ++i) {
        std::vector<int32_t> ids;
        for (const auto& x : inputs[i]) {
          if (!x.is_number_integer()) throw Error("stdin:" + std::to_string(i + 1) + ": expected integer ids, found " + json_text(x));
          ids.push_back(x.get<int32_t>());
        }
        std::string text;
        try {
          text = tok->decode(ids, skip_special);
        } catch (const Error& e) {
          throw Error("stdin:" + std::to_string(i + 1) + ": " + e.what());
        }
        std::cout << json_text(json(text)) << "\n";
      }
    } else {
      std::vector<std::string> texts;
      for (const auto& v : inputs) texts.push_back(v.get<std::string>());
      auto t0 = std::chrono::steady_clock::now();
      auto ids = tok->encode_batch(texts, !no_special, threads);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      size_t n_tokens = 0;
      for (const auto& v : ids) {
        n_tokens += v.size();
        std::cout << json_text(json(v)) << "\n";
      }
      if (bench) std::fprintf(stderr, "tokens=%zu seconds=%.6f tokens_per_s=%.1f\n", n_tokens, secs, n_tokens / std::max(secs, 1e-9));
    }
    std::cout.flush();
    if (!failure.empty()) throw Error(failure);
  } catch (const std::exception& e) {
    return tool_error("grpo_tokenize", e);
  }
  return 0;
}
