// chat_template.h: prompts rendered by the model's own chat template, run by the Jinja engine
// (jinja.h) as transformers' apply_chat_template runs it: tokenizer_config.json's `chat_template`
// (a string, or named templates with `default` and `tool_use`), else chat_template.jinja, with the
// model's special tokens (bos_token, eos_token, ...) and `chat_template_kwargs` (enable_thinking,
// date_string, ...) as variables, `tools` as the tools' JSON schemas and `add_generation_prompt`.
// A model without a template gets the built-in ChatML one (kBuiltinChatML: Qwen2.5's template,
// tools included, without its default system turn). The config key `chat_template` may name a
// .jinja file instead, or `chatml` for the built-in one.
//
// Departure, on purpose (transformers' apply_chat_template(..., sanitize_control_tokens=True) makes
// the same choice): a message's text is data, not markup. The engine labels every character that
// came from a message or a tool, and the tokenizer matches special tokens only in the template's own
// text, so a question holding "<|im_end|>" cannot leave its turn.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/jinja/jinja.h"

namespace grpo {

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
};

// The system message Qwen2.5's chat template inserts when the conversation has none (and the
// built-in template when tools are shown).
inline constexpr const char* kQwenDefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
// The built-in ChatML template (models with no template of their own).
extern const char* const kBuiltinChatML;

// Provenance labels of rendered text (jinja::Span::label): message and tool text, and the last user
// turn's content (the question, the part a too-long prompt shortens).
inline constexpr int kDataLabel = 1;
inline constexpr int kQuestionLabel = 2;

// How a run's settings pick and feed the template (config keys chat_template, chat_template_kwargs,
// enable_thinking).
struct ChatSettings {
  std::string chat_template = "auto";                                // auto | chatml | path to a .jinja file
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();  // variables for the template
};

class ChatTemplate {
 public:
  // The built-in ChatML template.
  ChatTemplate();
  // `text` (and a `tool_use` variant, "" for none) from `source` (named in errors), with the model's
  // special tokens ({"bos_token": "<s>", ...}) and the run's kwargs. Parses now: a template that
  // does not parse is an error here, before anything loads.
  ChatTemplate(const std::string& text, const std::string& tool_text, const std::string& source, nlohmann::ordered_json special_tokens,
               nlohmann::ordered_json kwargs);

  // The conversation rendered (messages: {"role", "content", "tool_calls"?} objects; tools: their
  // schemas, null or [] for none). Message text is labelled kDataLabel, the content of message
  // `question` (npos: none) kQuestionLabel.
  jinja::Text render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools, bool add_generation_prompt,
                     size_t question) const;
  // Plain messages, the last user turn the question; `tools` as above.
  jinja::Text render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& tools = nullptr) const;
  std::string render_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // What a rollout forces after a model turn that called tools and ended with the token `end_token`:
  // the template's rendering of the tools' results up to the next generation prompt (found by
  // rendering a conversation without and with the results and taking what follows the turn's end).
  jinja::Text tool_response_text(const std::vector<std::string>& results, const nlohmann::ordered_json& tools,
                                 const std::string& end_token) const;

  const std::string& source() const { return source_; }
  bool builtin() const { return source_.rfind("built-in", 0) == 0; }
  const nlohmann::ordered_json& kwargs() const { return kwargs_; }
  // Whether the template's text names `variable` as a whole word (a kwarg it never reads is a mistake to report).
  bool mentions(const std::string& variable) const;
  // "tokenizer_config.json: field chat_template (enable_thinking=false)": for plans and reports.
  std::string describe() const;

 private:
  std::shared_ptr<const jinja::Template> tmpl_, tool_tmpl_;
  std::string text_, source_;
  nlohmann::ordered_json special_tokens_, kwargs_;
};

// The index of the last user message (the question), npos when there is none.
size_t last_user_message(const nlohmann::ordered_json& messages);

// The template of `model_dir` under `settings`: settings.chat_template as a .jinja path, or
// tokenizer_config.json's chat_template, else chat_template.jinja, else the built-in one. Errors name
// the file and key: a template that does not parse, a malformed tokenizer_config.json, a kwarg the
// template never reads, a .jinja path that does not exist.
ChatTemplate load_chat_template(const std::string& model_dir, const ChatSettings& settings = {});

}  // namespace grpo
