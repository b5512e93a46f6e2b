// libFuzzer target for the Jinja engine (jinja.h): the input is a template, optionally followed by a
// line "--vars" and a JSON object of variables (else a conversation, tools and kwargs as a chat
// template gets them). Parsing and rendering either succeed or throw grpo::Error (TemplateError);
// never a crash, a hang (small step limit) or unbounded memory (small output limit); the rendered
// provenance spans stay sorted, disjoint and inside the text. Run: scripts/fuzz.sh jinja
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grpo/base/common.h"
#include "grpo/jinja/jinja.h"

namespace {

const char* const kDefaultVars = R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "What is 2+3?"},
 {"role": "assistant", "content": "<think>r</think>5", "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": {"e": "2+3"}}}]},
 {"role": "tool", "content": "5"}], "tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}],
 "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false, "n": 3, "f": 2.5, "z": null})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size), vars_text = kDefaultVars;
  if (size_t at = text.find("\n--vars\n"); at != std::string::npos) {
    vars_text = text.substr(at + 8);
    text.resize(at);
  }
  try {
    const grpo::jinja::Template t(text, "fuzz.jinja");
    const auto j = nlohmann::ordered_json::parse(vars_text, nullptr, /*allow_exceptions=*/false);
    grpo::jinja::Vars vars;
    if (j.is_object())
      for (auto it = j.begin(); it != j.end(); ++it) vars.emplace_back(it.key(), grpo::jinja::from_json(it.value(), 1));
    grpo::jinja::Limits limits;
    limits.max_steps = 200000;
    limits.max_output = 1 << 20;
    const grpo::jinja::Text out = t.render(vars, limits);
    size_t end = 0;
    for (const auto& sp : out.spans) {
      if (sp.begin < end || sp.end <= sp.begin || sp.end > out.s.size() || sp.label == 0) std::abort();
      end = sp.end;
    }
  } catch (const grpo::Error&) {
  }
  return 0;
}
