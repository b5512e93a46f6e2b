// chat_template.cpp: the chat template families of chat_template.h, each rendered as its Jinja
// template renders it (Qwen2.5's and Qwen3's tokenizer_config.json, Meta's Llama 3.0 / 3.1 / 3.2),
// and the family recognised from a model's template text. Tools and tool calls are not rendered yet.
#include "grpo/chat_template.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "grpo/common.h"

namespace grpo {

using json = nlohmann::json;

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::ChatML:
      return "chatml";
    case ChatFamily::Qwen3:
      return "qwen3";
    case ChatFamily::Llama3:
      return "llama3";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Rendering

namespace {

// Python's str.strip(chars) family over ASCII whitespace (Jinja's |trim) or one character.
std::string strip_chars(std::string_view s, std::string_view chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  while (left && b < e && chars.find(s[b]) != std::string_view::npos) ++b;
  while (right && e > b && chars.find(s[e - 1]) != std::string_view::npos) --e;
  return std::string(s.substr(b, e - b));
}
constexpr std::string_view kWhitespace = " \t\n\r\v\f";

struct Pieces {
  std::vector<ChatPiece> out;
  void marker(const char* token) { out.push_back({ChatPiece::Marker, token}); }
  void text(std::string s) {
    if (!s.empty()) out.push_back({ChatPiece::Text, std::move(s)});
  }
  void content(std::string s, bool is_question) {
    if (s.empty()) return;
    out.push_back({is_question ? ChatPiece::Question : ChatPiece::Text, std::move(s)});
  }
};

size_t last_user_index(const std::vector<ChatMessage>& messages) {
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") return i;
  return messages.size();
}

// Qwen2.5: every turn <|im_start|>{role}\n{content}<|im_end|>\n, its default system turn first when the
// conversation opens with another role.
void render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages, size_t question, Pieces& p) {
  auto turn = [&](const std::string& role, const std::string& content, bool is_question) {
    p.marker("<|im_start|>");
    p.text(role + "\n");
    p.content(content, is_question);
    p.marker("<|im_end|>");
    p.text("\n");
  };
  if (!t.default_system.empty() && (messages.empty() || messages[0].role != "system")) turn("system", t.default_system, false);
  for (size_t i = 0; i < messages.size(); ++i) turn(messages[i].role, messages[i].content, i == question);
}

}  // namespace

Qwen3Turn split_qwen3_turn(const std::string& content) {
  const size_t close = content.find("</think>");
  if (close == std::string::npos) return {"", content};
  // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n'), content.split('</think>')[-1].lstrip('\n')
  std::string before = strip_chars(std::string_view(content).substr(0, close), "\n", false, true);
  const size_t open = before.rfind("<think>");
  return {strip_chars(open == std::string::npos ? before : before.substr(open + 7), "\n", true, false),
          strip_chars(std::string_view(content).substr(content.rfind("</think>") + 8), "\n", true, false)};
}

namespace {

// Qwen3: as ChatML without a default system turn; an assistant turn's "<think>..</think>" is split off
// its content and kept only for turns after the last user query.
void render_qwen3(const std::vector<ChatMessage>& messages, size_t question, Pieces& p) {
  const size_t last_query = question < messages.size() ? question : messages.size() - 1;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    p.marker("<|im_start|>");
    p.text(m.role + "\n");
    if (m.role != "assistant") {
      p.content(m.content, i == question);
    } else {
      const auto [reasoning, content] = split_qwen3_turn(m.content);
      if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
        p.marker("<think>");
        p.text("\n" + strip_chars(reasoning, "\n", true, true) + "\n");
        p.marker("</think>");
        p.text("\n\n" + strip_chars(content, "\n", true, false));
      } else {
        p.text(content);
      }
    }
    p.marker("<|im_end|>");
    p.text("\n");
  }
}

// Llama 3: <|begin_of_text|>, then <|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|> per
// turn; 3.1+ templates always open with the dated system turn.
void render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages, size_t question, Pieces& p) {
  auto turn = [&](const std::string& role, const std::string& content, bool is_question) {
    p.marker("<|start_header_id|>");
    p.text(role);
    p.marker("<|end_header_id|>");
    p.text("\n\n");
    p.content(content, is_question);
    p.marker("<|eot_id|>");
  };
  p.marker("<|begin_of_text|>");
  size_t first = 0;
  if (!t.llama_date.empty()) {
    std::string system;
    if (!messages.empty() && messages[0].role == "system") system = strip_chars(messages[0].content, kWhitespace, true, true), first = 1;
    turn("system", "Cutting Knowledge Date: December 2023\nToday Date: " + t.llama_date + "\n\n" + system, false);
  }
  for (size_t i = first; i < messages.size(); ++i)
    turn(messages[i].role, strip_chars(messages[i].content, kWhitespace, true, true), i == question);
}

}  // namespace

std::vector<ChatPiece> ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  const size_t question = last_user_index(messages);
  Pieces p;
  switch (family) {
    case ChatFamily::ChatML:
      render_chatml(*this, messages, question, p);
      break;
    case ChatFamily::Qwen3:
      render_qwen3(messages, question, p);
      break;
    case ChatFamily::Llama3:
      render_llama3(*this, messages, question, p);
      break;
  }
  if (add_generation_prompt) {
    if (family == ChatFamily::Llama3) {
      p.marker("<|start_header_id|>");
      p.text("assistant");
      p.marker("<|end_header_id|>");
      p.text("\n\n");
    } else {
      p.marker("<|im_start|>");
      p.text("assistant\n");
      if (family == ChatFamily::Qwen3 && !enable_thinking) {
        p.marker("<think>");
        p.text("\n\n");
        p.marker("</think>");
        p.text("\n\n");
      }
    }
  }
  return p.out;
}

std::string ChatTemplate::render_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  for (const ChatPiece& piece : render(messages, add_generation_prompt)) out += piece.text;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recognising a template

namespace {

bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

// Python's strftime("%d %b %Y") in the C locale, today.
std::string today() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
  return buf;
}

}  // namespace

ChatTemplate chat_template_from_text(const std::optional<std::string>& text, const std::string& source, const ChatSettings& settings) {
  ChatTemplate t;
  t.source = text ? source : "built-in ChatML (" + source + ")";
  ChatTemplateChoice family = settings.choice;
  if (family == ChatTemplateChoice::Auto) {
    if (!text) {
      family = ChatTemplateChoice::ChatML;
    } else if (contains(*text, "<|start_header_id|>")) {
      family = ChatTemplateChoice::Llama3;
    } else if (contains(*text, "<|im_start|>") && contains(*text, "<think>")) {
      family = ChatTemplateChoice::Qwen3;
    } else if (contains(*text, "<|im_start|>")) {
      family = ChatTemplateChoice::ChatML;
    } else {
      throw Error(source +
                  ": the chat template fits none of the known families (chatml: Qwen2.5, qwen3, llama3); "
                  "set config key chat_template (auto|chatml|qwen3|llama3) to the family that renders this model's prompts");
    }
  }
  switch (family) {
    case ChatTemplateChoice::Llama3:
      t.family = ChatFamily::Llama3;
      // 3.1 fixes the date unless the caller passes date_string; 3.2+ asks transformers for today's.
      if (text && contains(*text, "Cutting Knowledge Date")) t.llama_date = contains(*text, "strftime_now") ? today() : "26 Jul 2024";
      break;
    case ChatTemplateChoice::Qwen3:
      t.family = ChatFamily::Qwen3;
      break;
    default:
      t.family = ChatFamily::ChatML;
      if (text && contains(*text, kQwenDefaultSystemPrompt)) t.default_system = kQwenDefaultSystemPrompt;
  }
  if (settings.enable_thinking) {
    const bool has_switch = t.family == ChatFamily::Qwen3 && (!text || contains(*text, "enable_thinking"));
    if (!has_switch)
      throw Error("config key enable_thinking: " + t.source + " has no thinking switch (its family is " + chat_family_name(t.family) +
                  "; only qwen3 templates read enable_thinking)");
    t.enable_thinking = *settings.enable_thinking;
  }
  return t;
}

ChatTemplate load_chat_template(const std::string& model_dir, const ChatSettings& settings) {
  const std::string config_path = model_dir + "/tokenizer_config.json", jinja_path = model_dir + "/chat_template.jinja";
  std::optional<std::string> text;
  std::string source = model_dir + ": no chat template";
  if (file_exists(config_path)) {
    const json j = parse_json(read_file(config_path), config_path);
    if (j.is_object() && j.contains("chat_template") && !j["chat_template"].is_null()) {
      const json& ct = j["chat_template"];
      source = config_path + ": field \"chat_template\"";
      if (ct.is_string()) {
        text = ct.get<std::string>();
      } else if (ct.is_array()) {  // named templates: [{"name": "default", "template": "..."}, ...]
        for (const json& named : ct)
          if (named.is_object() && named.value("name", json()) == "default" && named.value("template", json()).is_string())
            text = named["template"].get<std::string>();
        if (!text) throw Error(source + ": a list of named templates without a \"default\" one");
      } else {
        throw Error(source + ": expected a string or a list of named templates, found " + json_text(ct));
      }
    }
  }
  if (!text && file_exists(jinja_path)) text = read_file(jinja_path), source = jinja_path;
  return chat_template_from_text(text, source, settings);
}

}  // namespace grpo
