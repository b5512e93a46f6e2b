// Tests for tool_calls.h: the calculator's exact arithmetic and its errors, tool calls parsed out of an
// assistant turn (and the faults a model makes: invalid JSON, no name, arguments as text, an
// unknown tool), Python's json.dumps text, and the Qwen templates' tool text (transformers'
// apply_chat_template(tools=...) is the referee in interop_chat_templates).
#include <gtest/gtest.h>

#include "grpo/base/common.h"
#include "grpo/chat/tool_calls.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;

TEST(ToolCalls, CalculatorIsExact) {
  EXPECT_EQ(calculate("123 * 456"), "56088");
  EXPECT_EQ(calculate("2 + 3 * 4"), "14");
  EXPECT_EQ(calculate("(2 + 3) * 4"), "20");
  EXPECT_EQ(calculate("7 / 4"), "1.75");
  EXPECT_EQ(calculate("1 / 3"), "1/3");      // not terminating: a fraction, never a rounded decimal
  EXPECT_EQ(calculate("0.1 + 0.2"), "0.3");  // exact, not 0.30000000000000004
  EXPECT_EQ(calculate("-2^2"), "-4");        // as Python's -2**2
  EXPECT_EQ(calculate("2 ** 10 - 24"), "1000");
  EXPECT_EQ(calculate("2^-2"), "0.25");
  EXPECT_EQ(calculate("12 \xC3\x97 3 \xC3\xB7 4"), "9");  // × and ÷
  EXPECT_EQ(calculate("-(3 - 10) / 2"), "3.5");
  EXPECT_EQ(calculate("999999999 * 999999999"), "999999998000000001");
}

TEST(ToolCalls, CalculatorErrorsAreShortTexts) {
  EXPECT_EQ(calculate("1 / 0"), "error: division by zero");
  EXPECT_EQ(calculate(""), "error: empty expression");
  EXPECT_EQ(calculate("2 + "), "error: expected a number at position 5");
  EXPECT_EQ(calculate("2 + x"), "error: unexpected 'x' at position 5");
  EXPECT_EQ(calculate("(1 + 2"), "error: expected ')' at position 7");
  EXPECT_EQ(calculate("2 ^ 0.5"), "error: exponents must be integers from -64 to 64");
  EXPECT_EQ(calculate("10^30"), "error: the result is too large");
  EXPECT_EQ(calculate(std::string(1000, '(') + "1" + std::string(1000, ')')).rfind("error: too deeply nested", 0), 0u);
}

TEST(ToolCalls, ToolCallsAndTheirFaults) {
  const std::string turn =
      "Let me compute.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call>"
      "<tool_call>{\"name\": \"calculator\", \"arguments\": \"{\\\"expression\\\": \\\"1/0\\\"}\"}</tool_call>"
      "<tool_call>{\"name\": calculator}</tool_call>"
      "<tool_call>{\"arguments\": {}}</tool_call>"
      "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}</tool_call>"
      "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expr\": \"1\"}}</tool_call>"
      "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2";  // cut: not a call
  const std::vector<ToolCall> calls = parse_tool_calls(turn);
  ASSERT_EQ(calls.size(), 6u);
  const std::vector<ToolSpec> tools = {calculator_tool()};
  EXPECT_EQ(run_builtin_tool(calls[0], tools), "408");
  EXPECT_EQ(run_builtin_tool(calls[1], tools), "error: division by zero");  // arguments given as JSON text
  EXPECT_EQ(run_builtin_tool(calls[2], tools), "{\"error\": \"the tool call is not a JSON object: '{\\\"name\\\": calculator}'\"}");
  EXPECT_EQ(run_builtin_tool(calls[3], tools), "{\"error\": \"the tool call has no \\\"name\\\"\"}");
  EXPECT_EQ(run_builtin_tool(calls[4], tools), "{\"error\": \"unknown tool 'search'\"}");
  EXPECT_EQ(run_builtin_tool(calls[5], tools), "{\"error\": \"calculator expects {\\\"expression\\\": string}\"}");
  EXPECT_EQ(tool_call_text(calls[0]), "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call>");
  // Half a character (a byte-level model writes bytes) in a bad call: an error result, U+FFFD in place.
  const auto torn = parse_tool_calls("<tool_call>{\"name\": \xC3</tool_call>");
  ASSERT_EQ(torn.size(), 1u);
  EXPECT_EQ(run_builtin_tool(torn[0], tools), "{\"error\": \"the tool call is not a JSON object: '{\\\"name\\\": \xEF\xBF\xBD'\"}");
}

TEST(ToolCalls, PythonJsonKeepsOrderAndSeparators) {
  ordered_json j = ordered_json::parse(R"({"z": 1, "a": [1, 2.5, true, null], "s": "é\n\"q\"\u0001"})");
  EXPECT_EQ(python_json(j), "{\"z\": 1, \"a\": [1, 2.5, true, null], \"s\": \"\xC3\xA9\\n\\\"q\\\"\\u0001\"}");
  EXPECT_EQ(
      python_json(calculator_tool().schema),
      "{\"type\": \"function\", \"function\": {\"name\": \"calculator\", \"description\": \"Evaluate an arithmetic expression.\", "
      "\"parameters\": {\"type\": \"object\", \"properties\": {\"expression\": {\"type\": \"string\"}}, \"required\": [\"expression\"]}}}");
}

TEST(ToolCalls, ConfigToolsAreNamesOrSchemas) {
  const auto tools = parse_tools(ordered_json::parse(R"(["calculator", {"type": "function", "function": {"name": "lookup"}}])"), "tools");
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[1].name, "lookup");
  EXPECT_EQ(error_of([] { parse_tools(ordered_json::parse(R"(["abacus"])"), "tools"); }),
            "tools[0]: unknown built-in tool \"abacus\" (built-in: calculator)");
  EXPECT_EQ(error_of([] { parse_tools(ordered_json::parse(R"(["calculator", "calculator"])"), "tools"); }),
            "tools[1]: tool \"calculator\" is given twice");
  EXPECT_NE(error_of([] { parse_tools(ordered_json::parse(R"([{"type": "function"}])"), "tools"); }).find("tools[0]: expected"),
            std::string::npos);
}

TEST(ToolCalls, ToolTextAroundACallIsTheTemplates) {
  const ChatTemplate builtin;
  const std::string sys = tools_system_text(builtin, "", {calculator_tool()});
  EXPECT_EQ(sys.rfind("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n", 0), 0u);
  EXPECT_NE(sys.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"calculator\""), std::string::npos);
  EXPECT_TRUE(ends_with(sys, "\n</tool_call><|im_end|>\n"));
  const ChatTemplate qwen3 = load_chat_template(std::string(GRPO_SOURCE_DIR) + "/tests/data/qwen3");
  EXPECT_EQ(tools_system_text(qwen3, "S", {calculator_tool()}).rfind("<|im_start|>system\nS\n\n# Tools\n\n", 0), 0u);
  // After the model's <|im_end|>: the results as the template renders tool messages, then the generation prompt.
  const jinja::Text after = builtin.tool_response_text({"408", "error: division by zero"}, tools_json({calculator_tool()}), "<|im_end|>");
  EXPECT_EQ(after.s,
            "\n<|im_start|>user\n<tool_response>\n408\n</tool_response>\n<tool_response>\nerror: division by zero\n</tool_response>"
            "<|im_end|>\n<|im_start|>assistant\n");
  ASSERT_EQ(after.spans.size(), 2u);  // the results are data
  EXPECT_EQ(after.s.substr(after.spans[0].begin, after.spans[0].end - after.spans[0].begin), "408");
  EXPECT_NE(error_of([&] { builtin.tool_response_text({"1"}, nullptr, "<|eot_id|>"); }).find("does not end with '<|eot_id|>'"),
            std::string::npos);
}
