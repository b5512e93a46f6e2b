// chat_template.h: prompts rendered the way the model's own chat_template renders them, for the
// template families users meet (transformers' apply_chat_template is the referee):
//
//   chatml  Qwen2.5:  <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//           (Qwen2.5's template inserts its default system message when the conversation has none)
//   qwen3   Qwen3:    ChatML; earlier assistant turns lose their <think> blocks; the generation
//           prompt ends "<think>\n\n</think>\n\n" when enable_thinking is false (default true)
//   llama3  Llama 3:  <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>
//           ... <|start_header_id|>assistant<|end_header_id|>\n\n; Llama 3.1+ templates open with a
//           system turn "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n{system}"
//
// The family is recognised from the template text (tokenizer_config.json "chat_template", or
// chat_template.jinja); a model without one gets plain ChatML. A template that fits no family is an
// error naming the families and the key that picks one, never a silently different prompt.
//
// Departure, on purpose: the template's markers (<|im_start|>, <think>, ...) are inserted by id and
// message contents are encoded as plain text, so a question holding "<|im_end|>" cannot leave its
// turn (transformers would parse it as the special token).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace grpo {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// The system message Qwen2.5's chat template inserts when the conversation has none.
inline constexpr const char* kQwenDefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

enum class ChatFamily { ChatML, Qwen3, Llama3 };
// Config key `chat_template`: auto (recognised from the model's template) or a family by name.
enum class ChatTemplateChoice { Auto, ChatML, Qwen3, Llama3 };
const char* chat_family_name(ChatFamily f);

// A rendered prompt: template markers (special tokens, inserted by id) and text, in order. Text pieces
// that touch are encoded together, as transformers encodes the rendered string between its added
// tokens. `question` marks the last user turn's content, the part a too-long prompt shortens.
struct ChatPiece {
  enum Kind { Marker, Text, Question } kind;
  std::string text;
};

struct ChatTemplate {
  ChatFamily family = ChatFamily::ChatML;
  std::string default_system;              // chatml: inserted when there is no system message ("" = none)
  bool enable_thinking = true;             // qwen3's switch
  std::string llama_date;                  // llama3.1+: the "Today Date" line ("" = a Llama 3.0 template)
  std::string source = "built-in ChatML";  // where it came from, for messages

  std::vector<ChatPiece> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // The rendered text, as apply_chat_template(tokenize=False) writes it.
  std::string render_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
};

// Qwen3's reading of an assistant turn: the reasoning between the last "<think>" before the first
// "</think>" and it, '\n'-stripped, and the content after the last "</think>", left '\n'-stripped.
// Without "</think>": no reasoning, the content as given.
struct Qwen3Turn {
  std::string reasoning, content;
};
Qwen3Turn split_qwen3_turn(const std::string& content);

// How a tool's settings pick the template (config keys chat_template, enable_thinking).
struct ChatSettings {
  ChatTemplateChoice choice = ChatTemplateChoice::Auto;
  std::optional<bool> enable_thinking;  // unset: the template's default
};

// The template of `model_dir` (tokenizer_config.json's chat_template, else chat_template.jinja)
// under `settings`. Errors name the file and the key: an unrecognised template, a malformed
// tokenizer_config.json, enable_thinking for a family without the switch.
ChatTemplate load_chat_template(const std::string& model_dir, const ChatSettings& settings = {});
// The same from a template's text; `source` names it in errors.
ChatTemplate chat_template_from_text(const std::optional<std::string>& text, const std::string& source, const ChatSettings& settings = {});

}  // namespace grpo
