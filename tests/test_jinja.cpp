// test_jinja.cpp: the Jinja engine (jinja.h) against jinja2 as referee: every case of
// tests/jinja/cases.py rendered by jinja2 in transformers' chat-template environment
// (tests/jinja/make_golden.py wrote the answers to tests/data/jinja_cases.json; the interop test
// checks they are still jinja2's) must render to the same text here, or fail here too. Then what the
// referee file cannot show: error positions, raise_exception's message, provenance, the limits.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/jinja/jinja.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;
using ordered_json = nlohmann::ordered_json;

namespace {

jinja::Vars vars_of(const ordered_json& j, int label = 0) {
  jinja::Vars v;
  for (auto it = j.begin(); it != j.end(); ++it) v.emplace_back(it.key(), jinja::from_json(it.value(), label));
  return v;
}

std::string render(const std::string& tmpl, const ordered_json& vars = ordered_json::object()) {
  return jinja::Template(tmpl, "t.jinja").render(vars_of(vars)).s;
}

}  // namespace

TEST(Jinja, EveryReferenceCaseRendersAsJinja2Does) {
  std::ifstream f(std::string(GRPO_SOURCE_DIR) + "/tests/data/jinja_cases.json");
  ASSERT_TRUE(f) << "tests/data/jinja_cases.json";
  std::stringstream ss;
  ss << f.rdbuf();
  const ordered_json cases = ordered_json::parse(ss.str());
  ASSERT_GE(cases.size(), 150u);
  int same = 0;
  std::string report;
  for (const auto& c : cases) {
    const std::string name = c["name"].get<std::string>();
    std::string ours, err;
    try {
      ours = render(c["template"].get<std::string>(), c["vars"]);
    } catch (const jinja::TemplateError& e) {
      err = e.what();
    }
    const bool want_error = c.contains("error");
    if (want_error && !err.empty()) {
      ++same;
    } else if (!want_error && err.empty() && ours == c["text"].get<std::string>()) {
      ++same;
    } else {
      report += "\n  " + name + ": jinja2 " +
                (want_error ? "raised " + c["error"].get<std::string>() : "rendered " + quote(c["text"].get<std::string>(), 300)) +
                "\n    ours " + (err.empty() ? "rendered " + quote(ours, 300) : "raised " + err);
    }
  }
  EXPECT_EQ(same, static_cast<int>(cases.size())) << report;
}

TEST(Jinja, ErrorsNameTheTemplateLineColumnAndConstruct) {
  EXPECT_EQ(error_of([] { render("line one\n{{ 1 | nosuch }}"); }), "t.jinja:2:8: unknown filter 'nosuch'");
  EXPECT_EQ(error_of([] { render("{% if x %}\n  {% frob %}{% endif %}"); }),
            "t.jinja:2:6: unknown tag 'frob' (this engine knows if, for, set, macro, filter, generation, break, continue, raw)");
  EXPECT_EQ(error_of([] { render("{{ 1 is nosuch }}"); }), "t.jinja:1:6: unknown test 'nosuch'");
  EXPECT_EQ(error_of([] { render("ab\n{{ 'x'.nosuch() }}"); }),
            "t.jinja:2:7: 'str object' has no attribute 'nosuch', so it cannot be called");
  EXPECT_EQ(error_of([] { render("{% for x in y %}"); }), "t.jinja:1:17: the template ends inside a block: expected {% endfor %}");
}

TEST(Jinja, RaiseExceptionReachesTheUserAsWritten) {
  try {
    render("{{ raise_exception('Conversation roles must alternate user/assistant') }}");
    FAIL() << "no error";
  } catch (const jinja::TemplateRaised& e) {
    EXPECT_EQ(e.message(), "Conversation roles must alternate user/assistant");
    EXPECT_EQ(std::string(e.what()), "t.jinja:1:4: the template raised: Conversation roles must alternate user/assistant");
  }
}

TEST(Jinja, ProvenanceFollowsTheCharactersThroughTheTemplate) {
  // Labelled content (1) trimmed, concatenated with the template's markers and passed through a macro.
  const jinja::Template t(
      "{% macro turn(role, c) %}<|im_start|>{{ role }}\n{{ c | trim }}<|im_end|>{% endmacro %}"
      "{% for m in messages %}{{ turn(m.role, m.content) }}{% endfor %}{{ messages[0].content.split('|')[1] }}",
      "t");
  jinja::Vars vars;
  vars.emplace_back("messages", jinja::from_json(ordered_json::parse(R"([{"role": "user", "content": "  a<|im_end|>b  "}])"), 1));
  const jinja::Text out = t.render(vars);
  EXPECT_EQ(out.s, "<|im_start|>user\na<|im_end|>b<|im_end|>im_end");
  ASSERT_EQ(out.spans.size(), 3u);
  // "user" (the role is labelled data too), "a<|im_end|>b", and the split's "im_end".
  EXPECT_EQ(out.s.substr(out.spans[0].begin, out.spans[0].end - out.spans[0].begin), "user");
  EXPECT_EQ(out.s.substr(out.spans[1].begin, out.spans[1].end - out.spans[1].begin), "a<|im_end|>b");
  EXPECT_EQ(out.s.substr(out.spans[2].begin, out.spans[2].end - out.spans[2].begin), "im_end");
  EXPECT_EQ(out.label_at(0), 0);  // the template's own <|im_start|>
}

TEST(Jinja, LimitsEndInOneClearError) {
  const std::string deep = std::string(10000, '(') + "1" + std::string(10000, ')');
  EXPECT_NE(error_of([&] { render("{{ " + deep + " }}"); }).find("nests deeper than 256 levels"), std::string::npos);
  std::string blocks;
  for (int k = 0; k < 10000; ++k) blocks += "{% if true %}";
  EXPECT_NE(error_of([&] { render(blocks); }).find("nests deeper than 256 levels"), std::string::npos);
  EXPECT_NE(
      error_of([] { render("{% macro f(k) %}{{ f(k + 1) }}{% endmacro %}{{ f(0) }}"); }).find("macro 'f' recursed deeper than 100 calls"),
      std::string::npos);
  jinja::Limits small;
  small.max_steps = 100000;
  small.max_output = 1 << 20;
  const jinja::Template loops("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "t.jinja");
  EXPECT_EQ(error_of([&] { loops.render({}, small); }), "t.jinja:1:32: the template ran 100000 evaluation steps without finishing");
  EXPECT_NE(error_of([] { render("{{ 'x' * 100000000 }}"); }).find("repetition larger than 67108864 bytes"), std::string::npos);
  const jinja::Template grow("{% for a in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", "t.jinja");
  jinja::Limits small_output;
  small_output.max_output = 1 << 20;
  EXPECT_NE(error_of([&] { grow.render({}, small_output); }).find("the output grew past 1048576 bytes"), std::string::npos);
}

TEST(Jinja, PythonJsonAndFloatsAsPythonWritesThem) {
  EXPECT_EQ(jinja::python_json_dumps(ordered_json::parse(R"({"b": [1, 2.5, null, true], "a": "é\n"})")),
            "{\"b\": [1, 2.5, null, true], \"a\": \"é\\n\"}");
  EXPECT_EQ(jinja::python_json_dumps(ordered_json::parse(R"({"a": "é"})"), true), "{\"a\": \"\\u00e9\"}");
  EXPECT_EQ(render("{{ 1e-05 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ -0.0 }} {{ 3.14159 }}"),
            "1e-05 1e+16 1000000000000000.0 0.0001 -0.0 3.14159");
}
