// tool_calls.cpp: tool schemas, the calculator, tool-call parsing and Qwen's tool text; see tool_calls.h.
#include "grpo/chat/tool_calls.h"

#include <cstdint>
#include <numeric>
#include <set>

#include "grpo/base/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Schemas

ToolSpec calculator_tool() {
  ordered_json fn = ordered_json::object();
  fn["name"] = "calculator";
  fn["description"] = "Evaluate an arithmetic expression.";
  ordered_json params = ordered_json::object();
  params["type"] = "object";
  params["properties"] = ordered_json::object();
  params["properties"]["expression"] = ordered_json::object({{"type", "string"}});
  params["required"] = ordered_json::array({"expression"});
  fn["parameters"] = params;
  ordered_json schema = ordered_json::object();
  schema["type"] = "function";
  schema["function"] = fn;
  return {"calculator", schema, /*builtin=*/true};
}

std::vector<ToolSpec> parse_tools(const ordered_json& list, const std::string& where) {
  if (!list.is_array()) throw Error(where + ": expected a list of tools, found " + std::string(list.type_name()));
  std::vector<ToolSpec> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& t = list[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    ToolSpec spec;
    if (t.is_string()) {
      if (t.get<std::string>() != "calculator")
        throw Error(at + ": unknown built-in tool " + json_text(nlohmann::json(t.get<std::string>())) + " (built-in: calculator)");
      spec = calculator_tool();
    } else if (t.is_object() && t.contains("function") && t["function"].is_object() && t["function"].contains("name") &&
               t["function"]["name"].is_string()) {
      spec = {t["function"]["name"].get<std::string>(), t};
    } else {
      throw Error(at + ": expected a built-in tool's name or {\"type\": \"function\", \"function\": {\"name\", ...}}");
    }
    if (!seen.insert(spec.name).second) throw Error(at + ": tool " + json_text(nlohmann::json(spec.name)) + " is given twice");
    out.push_back(std::move(spec));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The calculator: recursive descent over exact rationals

namespace calc {

struct CalcError {
  std::string what;
};

struct Rational {
  int64_t p = 0, q = 1;  // q > 0, gcd(p, q) = 1
};

Rational make_rational(__int128 p, __int128 q) {
  if (q == 0) throw CalcError{"division by zero"};
  if (q < 0) {
    p = -p;
    q = -q;
  }
  __int128 a = p < 0 ? -p : p, b = q;
  while (b) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) {
    p /= a;
    q /= a;
  }
  if (p > INT64_MAX || p < -INT64_MAX || q > INT64_MAX) throw CalcError{"the result is too large"};
  return {static_cast<int64_t>(p), static_cast<int64_t>(q)};
}

Rational add(Rational a, Rational b, int sign) {
  return make_rational(__int128(a.p) * b.q + sign * __int128(b.p) * a.q, __int128(a.q) * b.q);
}
Rational mul(Rational a, Rational b) {
  return make_rational(__int128(a.p) * b.p, __int128(a.q) * b.q);
}
Rational div(Rational a, Rational b) {
  return make_rational(__int128(a.p) * b.q, __int128(a.q) * b.p);
}
Rational power(Rational a, Rational e) {
  if (e.q != 1 || e.p > 64 || e.p < -64) throw CalcError{"exponents must be integers from -64 to 64"};
  Rational r{1, 1};
  for (int64_t i = 0; i < (e.p < 0 ? -e.p : e.p); ++i) r = mul(r, a);
  return e.p < 0 ? div({1, 1}, r) : r;
}

class Calc {
 public:
  explicit Calc(std::string_view s) : s_(s) {}
  Rational run() {
    Rational v = expr();
    skip();
    if (i_ < s_.size()) fail("unexpected '" + std::string(1, s_[i_]) + "'");
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
  }
  bool eat(std::string_view op) {
    skip();
    if (s_.substr(i_, op.size()) != op) return false;
    i_ += op.size();
    return true;
  }
  [[noreturn]] void fail(const std::string& why) const { throw CalcError{why + " at position " + std::to_string(i_ + 1)}; }
  Rational expr() {
    Rational v = term();
    while (true) {
      if (eat("+"))
        v = add(v, term(), 1);
      else if (eat("-") || eat("\xE2\x88\x92"))
        v = add(v, term(), -1);
      else
        return v;
    }
  }
  Rational term() {
    Rational v = unary();
    while (true) {
      if (s_.substr(i_, 2) != "**" && (eat("*") || eat("\xC3\x97")))  // * or ×
        v = mul(v, unary());
      else if (eat("/") || eat("\xC3\xB7"))  // / or ÷
        v = div(v, unary());
      else
        return v;
    }
  }
  Rational unary() {
    if (++depth_ > 200) fail("too deeply nested");
    Rational v;
    if (eat("-") || eat("\xE2\x88\x92"))
      v = mul({-1, 1}, unary());
    else if (eat("+"))
      v = unary();
    else
      v = pow_expr();
    --depth_;
    return v;
  }
  Rational pow_expr() {
    Rational base = atom();
    if (eat("**") || eat("^")) return power(base, unary());
    return base;
  }
  Rational atom() {
    skip();
    if (eat("(")) {
      Rational v = expr();
      if (!eat(")")) fail("expected ')'");
      return v;
    }
    return number();
  }
  Rational number() {
    size_t j = i_;
    __int128 p = 0, q = 1;
    bool digits = false, dot = false;
    for (; j < s_.size() && ((s_[j] >= '0' && s_[j] <= '9') || (s_[j] == '.' && !dot)); ++j) {
      if (s_[j] == '.') {
        dot = true;
        continue;
      }
      digits = true;
      p = p * 10 + (s_[j] - '0');
      if (dot) q *= 10;
      if (p > INT64_MAX || q > INT64_MAX) fail("a number too long");
    }
    if (!digits) fail(i_ < s_.size() ? "unexpected '" + std::string(1, s_[i_]) + "'" : "expected a number");
    i_ = j;
    return make_rational(p, q);
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// An integer, a terminating decimal (q has only the factors 2 and 5), else p/q.
std::string format_rational(Rational r) {
  if (r.q == 1) return std::to_string(r.p);
  int64_t q = r.q, twos = 0, fives = 0;
  while (q % 2 == 0) {
    q /= 2;
    ++twos;
  }
  while (q % 5 == 0) {
    q /= 5;
    ++fives;
  }
  if (q != 1 || std::max(twos, fives) > 18) return std::to_string(r.p) + "/" + std::to_string(r.q);
  const int64_t places = std::max(twos, fives);
  __int128 scale = 1;
  for (int64_t i = 0; i < places; ++i) scale *= 10;
  const __int128 scaled = __int128(r.p) * (scale / r.q);  // exact: q divides 10^places
  const __int128 mag = scaled < 0 ? -scaled : scaled;
  std::string digits;
  for (__int128 m = mag; m > 0 || digits.size() <= size_t(places); m /= 10) digits.insert(digits.begin(), char('0' + int(m % 10)));
  digits.insert(digits.end() - places, '.');
  return (scaled < 0 ? "-" : "") + digits;
}

}  // namespace calc

std::string calculate(std::string_view expression) {
  if (trim(expression).empty()) return "error: empty expression";
  try {
    return calc::format_rational(calc::Calc(expression).run());
  } catch (const calc::CalcError& e) {
    return "error: " + e.what;
  }
}

// ---------------------------------------------------------------------------------------------
// Tool calls

std::vector<ToolCall> parse_tool_calls(std::string_view text) {
  constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
  std::vector<ToolCall> out;
  for (size_t at = text.find(kOpen); at != std::string_view::npos; at = text.find(kOpen, at)) {
    const size_t start = at + kOpen.size(), end = text.find(kClose, start);
    if (end == std::string_view::npos) break;  // an unclosed call is not a call (the turn was cut)
    ToolCall call;
    const std::string body(trim(text.substr(start, end - start)));
    at = end + kClose.size();
    ordered_json j = ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      call.error = "the tool call is not a JSON object: " + quote(body, 200);
    } else if (!j.contains("name") || !j["name"].is_string()) {
      call.error = "the tool call has no \"name\"";
    } else {
      call.name = j["name"].get<std::string>();
      ordered_json args = j.contains("arguments") ? j["arguments"] : ordered_json::object();
      if (args.is_string()) args = ordered_json::parse(args.get<std::string>(), nullptr, false);  // arguments given as JSON text
      if (args.is_discarded() || !args.is_object())
        call.error = "the arguments of " + call.name + " are not a JSON object";
      else
        call.arguments = std::move(args);
    }
    out.push_back(std::move(call));
  }
  return out;
}

std::string run_builtin_tool(const ToolCall& call, const std::vector<ToolSpec>& tools) {
  auto error = [](const std::string& why) { return python_json(ordered_json::object({{"error", why}})); };
  if (!call.error.empty()) return error(call.error);
  const ToolSpec* spec = nullptr;
  for (const auto& t : tools)
    if (t.name == call.name) spec = &t;
  if (!spec) return error("unknown tool " + quote(call.name, 80));
  if (spec->builtin && call.name == "calculator") {
    if (!call.arguments.contains("expression") || !call.arguments["expression"].is_string())
      return error("calculator expects {\"expression\": string}");
    return calculate(call.arguments["expression"].get<std::string>());
  }
  return error("tool " + quote(call.name, 80) + " is not built in (a tool_command serves it)");
}

// ---------------------------------------------------------------------------------------------
// Tools in prompts (the chat template renders them) and calls in completions (Hermes/Qwen format)

std::string python_json(const ordered_json& j) {
  return jinja::python_json_dumps(j);
}

ordered_json tools_json(const std::vector<ToolSpec>& tools) {
  if (tools.empty()) return nullptr;
  ordered_json out = ordered_json::array();
  for (const ToolSpec& t : tools) out.push_back(t.schema);
  return out;
}

std::string tools_system_text(const ChatTemplate& chat, const std::string& system, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  return chat.render(messages, /*add_generation_prompt=*/false, tools_json(tools)).s;
}

std::string tool_call_text(const ToolCall& call) {
  return "<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": " + python_json(call.arguments) + "}\n</tool_call>";
}

}  // namespace grpo
