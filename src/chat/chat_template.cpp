// chat_template.cpp: the model's chat template found, parsed once and run for every prompt
// (chat_template.h): the variables transformers gives a template, the provenance labels of message
// text, the tool-result text a rollout forces after a tool call, and the built-in ChatML template.
#include "grpo/chat/chat_template.h"

#include <cctype>

#include "grpo/base/common.h"

namespace grpo {

using ordered_json = nlohmann::ordered_json;

// Qwen2.5-Instruct's template (tools included) without the default system turn it adds to a
// conversation that has none; with tools it still opens with Qwen's default system text.
const char* const kBuiltinChatML = R"JINJA({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages and messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- elif messages and messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)JINJA";

ChatTemplate::ChatTemplate() : ChatTemplate(kBuiltinChatML, "", "built-in ChatML", ordered_json::object(), ordered_json::object()) {}

ChatTemplate::ChatTemplate(const std::string& text, const std::string& tool_text, const std::string& source, ordered_json special_tokens,
                           ordered_json kwargs)
    : tmpl_(std::make_shared<const jinja::Template>(text, source)),
      text_(text + tool_text),
      source_(source),
      special_tokens_(std::move(special_tokens)),
      kwargs_(std::move(kwargs)) {
  if (!tool_text.empty()) tool_tmpl_ = std::make_shared<const jinja::Template>(tool_text, source + " (tool_use)");
}

namespace {

// Where `token` starts in `s`, each time (none for an empty token).
std::vector<size_t> occurrences(const std::string& s, const std::string& token) {
  std::vector<size_t> out;
  for (size_t p = s.find(token); !token.empty() && p != std::string::npos; p = s.find(token, p + token.size())) out.push_back(p);
  return out;
}

// A message as the template sees it: keys in order, null values dropped (as transformers drops them),
// the role unlabelled, everything else labelled.
jinja::Value message_value(const ordered_json& m, bool is_question, const std::string& where) {
  if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
    throw Error(where + ": expected a message object with a string \"role\", found " + json_text(m));
  auto d = std::make_shared<jinja::Dict>();
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it.value().is_null()) continue;
    const int label = it.key() == "role" ? 0 : (is_question && it.key() == "content") ? kQuestionLabel : kDataLabel;
    d->items.emplace_back(it.key(), jinja::from_json(it.value(), label));
  }
  return jinja::Value::make_dict(std::move(d));
}

}  // namespace

jinja::Text ChatTemplate::render(const ordered_json& messages, const ordered_json& tools, bool add_generation_prompt,
                                 size_t question) const {
  std::vector<jinja::Value> list;
  for (size_t i = 0; i < messages.size(); ++i)
    list.push_back(message_value(messages[i], i == question, source_ + ": message " + std::to_string(i + 1)));
  const bool has_tools = tools.is_array() && !tools.empty();
  jinja::Vars vars;
  vars.emplace_back("messages", jinja::Value::make_list(std::move(list)));
  vars.emplace_back("tools", has_tools ? jinja::from_json(tools, kDataLabel) : jinja::Value::none());
  vars.emplace_back("documents", jinja::Value::none());
  vars.emplace_back("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it) vars.emplace_back(it.key(), jinja::from_json(it.value()));
  for (auto it = kwargs_.begin(); it != kwargs_.end(); ++it) vars.emplace_back(it.key(), jinja::from_json(it.value()));
  return (has_tools && tool_tmpl_ ? *tool_tmpl_ : *tmpl_).render(vars);
}

size_t last_user_message(const ordered_json& messages) {
  size_t question = std::string::npos;
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].is_object() && messages[i].value("role", "") == "user") question = i;
  return question;
}

jinja::Text ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt, const ordered_json& tools) const {
  ordered_json list = ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back(ordered_json::object({{"role", m.role}, {"content", m.content}}));
  return render(list, tools, add_generation_prompt, last_user_message(list));
}

std::string ChatTemplate::render_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return render(messages, add_generation_prompt).s;
}

jinja::Text ChatTemplate::tool_response_text(const std::vector<std::string>& results, const ordered_json& tools,
                                             const std::string& end_token) const {
  // A conversation whose last turn called one tool per result; the names are the tools', in order
  // (templates that print them, as Hermes's, get a real one).
  std::string name = "tool";
  if (tools.is_array() && !tools.empty() && tools[0].contains("function")) name = tools[0]["function"].value("name", name);
  ordered_json calls = ordered_json::array(), msgs = ordered_json::array();
  msgs.push_back({{"role", "user"}, {"content", "?"}});
  for (size_t k = 0; k < results.size(); ++k)
    calls.push_back({{"type", "function"},
                     {"id", "call" + std::string(5 - std::to_string(k).size(), '0') + std::to_string(k)},
                     {"function", {{"name", name}, {"arguments", ordered_json::object()}}}});
  msgs.push_back({{"role", "assistant"}, {"content", ""}, {"tool_calls", calls}});
  const jinja::Text before = render(msgs, tools, false, std::string::npos);
  for (size_t k = 0; k < results.size(); ++k)
    msgs.push_back({{"role", "tool"}, {"content", results[k]}, {"name", name}, {"tool_call_id", calls[k]["id"]}});
  const jinja::Text after = render(msgs, tools, true, std::string::npos);
  // The turn ends at the last end token of `before`: the same one, counted, in `after`.
  const size_t count = occurrences(before.s, end_token).size();
  const std::vector<size_t> ends = occurrences(after.s, end_token);
  if (count == 0 || ends.size() < count)
    throw Error(source_ + ": the chat template's tool-call turn does not end with " + quote(end_token) +
                ", the token that ended the model's turn; cannot tell where the tool results begin");
  return after.slice(ends[count - 1] + end_token.size(), after.s.size());
}

bool ChatTemplate::mentions(const std::string& variable) const {
  auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t p = text_.find(variable); p != std::string::npos; p = text_.find(variable, p + 1))
    if ((p == 0 || !ident(text_[p - 1])) && (p + variable.size() == text_.size() || !ident(text_[p + variable.size()]))) return true;
  return false;
}

std::string ChatTemplate::describe() const {
  std::string out = source_;
  if (!kwargs_.empty()) out += " with " + json_text(kwargs_);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Finding a model's template

namespace {

// tokenizer_config.json's named special tokens, each a string or {"content": ...}.
ordered_json special_tokens_of(const nlohmann::json& config) {
  ordered_json out = ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!config.contains(key)) continue;
    const auto& v = config[key];
    if (v.is_string()) out[key] = v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) out[key] = v["content"].get<std::string>();
  }
  return out;
}

struct Found {
  std::string text, tool_text, source;
  bool found = false;
};

Found template_in_config(const nlohmann::json& j, const std::string& config_path) {
  Found f;
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) return f;
  const auto& ct = j["chat_template"];
  f.source = config_path + ": field \"chat_template\"";
  f.found = true;
  if (ct.is_string()) {
    f.text = ct.get<std::string>();
    return f;
  }
  if (!ct.is_array()) throw Error(f.source + ": expected a string or a list of named templates, found " + json_text(ct));
  bool has_default = false;
  for (const auto& named : ct) {
    if (!named.is_object() || !named.value("template", nlohmann::json()).is_string()) continue;
    if (named.value("name", nlohmann::json()) == "default") {
      f.text = named["template"].get<std::string>();
      has_default = true;
    } else if (named.value("name", nlohmann::json()) == "tool_use") {
      f.tool_text = named["template"].get<std::string>();
    }
  }
  if (!has_default) throw Error(f.source + ": a list of named templates without a \"default\" one");
  return f;
}

}  // namespace

ChatTemplate load_chat_template(const std::string& model_dir, const ChatSettings& settings) {
  const std::string config_path = model_dir + "/tokenizer_config.json", jinja_path = model_dir + "/chat_template.jinja";
  nlohmann::json config = nlohmann::json::object();
  if (file_exists(config_path)) config = parse_json(read_file(config_path), config_path);
  if (!settings.kwargs.is_object())
    throw Error("config key chat_template_kwargs: expected a map such as {enable_thinking: false}, found " + json_text(settings.kwargs));
  Found f;
  if (settings.chat_template != "auto" && settings.chat_template != "chatml") {
    if (!file_exists(settings.chat_template))
      throw Error("config key chat_template: " + quote(settings.chat_template) +
                  " is neither auto, chatml nor an existing .jinja file (the model's own template is run with auto)");
    f = {read_file(settings.chat_template), "", settings.chat_template, true};
  } else if (settings.chat_template == "auto") {
    f = template_in_config(config, config_path);
    if (!f.found && file_exists(jinja_path)) f = {read_file(jinja_path), "", jinja_path, true};
  }
  ChatTemplate t = f.found ? ChatTemplate(f.text, f.tool_text, f.source, special_tokens_of(config), settings.kwargs)
                           : ChatTemplate(kBuiltinChatML, "", "built-in ChatML (" + model_dir + " has no chat template)",
                                          special_tokens_of(config), settings.kwargs);
  for (auto it = settings.kwargs.begin(); it != settings.kwargs.end(); ++it)
    if (!t.mentions(it.key()))
      throw Error("config key chat_template_kwargs: " + quote(it.key()) + " is not a variable of the chat template " + t.source() +
                  " (its text never names it)");
  return t;
}

}  // namespace grpo
