// tool_calls.h: the pieces of tool calling that do not depend on the rollout (issue 34, first part):
// tool schemas (the built-in calculator, OpenAI-style function schemas), the calculator itself,
// the model's tool calls parsed out of its text, and the text Qwen's chat templates (Qwen2.5's
// ChatML with tools, Qwen3) write for tools, tool calls and tool responses.
//
// References: the Qwen2.5 and Qwen3 chat templates (transformers' apply_chat_template(tools=...) is
// the referee, interop_chat_templates), TRL's GRPOTrainer tool loop (a call that cannot be parsed or
// names an unknown tool gets an error result, never a crash).
// Departure: JSON in the rendered text is written as Python's json.dumps (", " and ": "
// separators, non-ASCII kept, keys in their given order), which is what the templates' tojson writes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/chat/chat_template.h"

namespace grpo {

using ordered_json = nlohmann::ordered_json;

// A tool the model may call: its function schema {"type": "function", "function": {"name",
// "description", "parameters"}} as the template renders it.
struct ToolSpec {
  std::string name;
  ordered_json schema;
  bool builtin = false;  // answered in-process (the calculator); else by tool_command
};

// The built-in calculator: {"expression": string} -> the exact rational value, or an error text.
ToolSpec calculator_tool();
// Config `tools`: a list of built-in names ("calculator") or function schemas; `where` names the
// key in errors (an unknown built-in, a schema without function.name, a name given twice).
std::vector<ToolSpec> parse_tools(const ordered_json& list, const std::string& where);

// ---------------------------------------------------------------------------------------------
// The calculator: + - * / ^ (or **), parentheses, unary minus, integers and decimals, evaluated
// in exact rational arithmetic (64-bit numerator and denominator, overflow is an error). The
// result: an integer, a terminating decimal, or "p/q"; anything else an "error: ..." text.
std::string calculate(std::string_view expression);

// ---------------------------------------------------------------------------------------------
// Tool calls in an assistant turn: each <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
struct ToolCall {
  std::string name;
  ordered_json arguments = ordered_json::object();
  std::string error;  // not empty: the call could not be read (invalid JSON, no name); it gets this as its result
};
std::vector<ToolCall> parse_tool_calls(std::string_view assistant_text);
// The result a built-in tool gives a call (an unknown name, missing or wrong arguments: an error result).
std::string run_builtin_tool(const ToolCall& call, const std::vector<ToolSpec>& tools);

// ---------------------------------------------------------------------------------------------
// Tools in prompts (the chat template renders them) and calls in completions (Hermes/Qwen format)

// json.dumps(j, ensure_ascii=False): the templates' `tojson`.
std::string python_json(const ordered_json& j);
// The tools' schemas, as a chat template's `tools` variable (null for none).
ordered_json tools_json(const std::vector<ToolSpec>& tools);
// The text before the first user turn: the template's rendering of [system] with the tools.
std::string tools_system_text(const ChatTemplate& chat, const std::string& system, const std::vector<ToolSpec>& tools);
// One tool call as a model writes it in a completion (Hermes/Qwen):
// "<tool_call>\n{\"name\": ..., \"arguments\": ...}\n</tool_call>".
std::string tool_call_text(const ToolCall& call);

}  // namespace grpo
