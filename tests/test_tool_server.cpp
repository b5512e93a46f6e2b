// Tests for tool_server.h with the real Qwen2.5 tokenizer: a rollout's pieces (prompt with the
// tools' system turn, the model's call, the server's answer, the final turn) are the ids of the
// template's whole conversation (chatml and qwen3); every fault a model or a tool program makes
// (invalid JSON, an unknown tool, a hanging, crashing or wrongly answering program) ends in an
// error result, a bounded restart or one clear error; long results are cut to max_tool_tokens;
// a transcript reads back as messages.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>

#include "grpo/base/common.h"
#include "grpo/engine/dataset.h"
#include "grpo/engine/tool_server.h"
#include "grpo/rewards/reward.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;

namespace {

const Tokenizer& qwen() {
  static auto tok = HfTokenizer::from_file(grpo::test::source_path("tests/data/qwen2.5/tokenizer.json"));
  return *tok;
}

std::string script(const std::string& body) {
  std::string path = grpo::test::write_temp("tool.sh", "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

ordered_json lookup_schema() {
  return ordered_json::parse(
      R"({"type": "function", "function": {"name": "lookup", "description": "Look a word up.", "parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}})");
}

TrainConfig tool_config(std::vector<std::string> command = {}) {
  TrainConfig cfg;
  cfg.tools = {calculator_tool()};
  if (!command.empty()) cfg.tools.push_back({"lookup", lookup_schema(), false});
  cfg.tool_command = std::move(command);
  cfg.tool_timeout = 5;
  return cfg;
}

std::vector<int32_t> ids(const std::string& text) {
  return qwen().encode(text, /*match_special=*/true);
}

// What the server answers one turn with, as text.
std::string answer_text(ToolServer& server, const std::string& turn) {
  SamplingParams sp;
  server.attach(sp, qwen(), ChatTemplate{}, 1, 3);
  return qwen().decode(sp.tools.run({0}, {ids(turn)})[0]);
}

const std::string kCall = "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call><|im_end|>";

}  // namespace

// Acceptance 1: the ids a rollout puts together (the prompt, the model's call turn, the answer the
// server forces, the final turn) are the template's ids for the whole conversation; the template's
// text is transformers' (interop_chat_templates), so these are apply_chat_template's ids.
TEST(ToolServer, RolloutPiecesAreTheTemplatesIds) {
  const std::vector<ChatTemplate> templates = {ChatTemplate(), load_chat_template(std::string(GRPO_SOURCE_DIR) + "/tests/data/qwen3")};
  for (const ChatTemplate& chat : templates) {
    SCOPED_TRACE(chat.source());
    TrainConfig cfg = tool_config();
    ToolServer server(cfg);
    Example ex;
    ex.question = "What is 12 * 34?";
    const std::string system = "Use the calculator.";
    const std::vector<int32_t> prompt = tokenize_example(qwen(), chat, system, ex, 4096, server.tools()).ids;
    // The whole conversation as the template renders it; the model's turns are its slices.
    const ordered_json call =
        ordered_json::parse(R"({"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*34"}}})");
    ordered_json m = ordered_json::array({{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", ex.question}}});
    const std::string prompt_text = chat.render(m, tools_json(server.tools()), true, 1).s;
    m.push_back({{"role", "assistant"}, {"content", ""}, {"tool_calls", {call}}});
    m.push_back({{"role", "tool"}, {"content", "408"}});
    m.push_back({{"role", "assistant"}, {"content", "12 * 34 = 408.\n#### 408"}});
    const std::string full = chat.render(m, tools_json(server.tools()), false, 1).s;
    ASSERT_EQ(full.rfind(prompt_text, 0), 0u);
    const std::string rest = full.substr(prompt_text.size());  // "<tool_call>...<|im_end|>\n<|im_start|>user..."
    const size_t end1 = rest.find("<|im_end|>") + std::string("<|im_end|>").size();
    const std::string turn1 = rest.substr(0, end1);
    const std::string after = "<|im_start|>assistant\n";
    const size_t start2 = rest.find(after, end1) + after.size();
    const std::string turn2 = rest.substr(start2, rest.size() - 1 - start2);  // up to the model's <|im_end|>, not the "\n" after it
    SamplingParams sp;
    server.attach(sp, qwen(), chat, 1, 1);
    const std::vector<int32_t> answer = sp.tools.run({0}, {ids(turn1)})[0];
    std::vector<int32_t> rollout = prompt;
    for (const auto& piece : {ids(turn1), answer, ids(turn2)}) rollout.insert(rollout.end(), piece.begin(), piece.end());
    std::vector<int32_t> want = ids(full);
    ASSERT_EQ(want.back(), ids("\n").back());
    want.pop_back();
    EXPECT_EQ(rollout, want);
    EXPECT_EQ(qwen().decode(rollout), full.substr(0, full.size() - 1));
    EXPECT_EQ(sp.tools.call_end_id, *qwen().token_to_id("</tool_call>"));
    ASSERT_EQ(server.turns()[0].size(), 1u);
    EXPECT_EQ(server.turns()[0][0].results, std::vector<std::string>{"408"});
  }
}

TEST(ToolServer, ModelFaultsGetErrorResults) {
  ToolServer server(tool_config());
  // Invalid JSON, an unknown tool, arguments of the wrong shape, the calculator's own error.
  EXPECT_NE(answer_text(server, "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1+\n</tool_call><|im_end|>")
                .find("{\"error\": \"the tool call is not a JSON object: "),
            std::string::npos);
  EXPECT_NE(answer_text(server, "<tool_call>\n{\"name\": \"weather\", \"arguments\": {}}\n</tool_call><|im_end|>")
                .find("<tool_response>\n{\"error\": \"unknown tool 'weather'\"}\n</tool_response>"),
            std::string::npos);
  EXPECT_NE(answer_text(server, "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expr\": \"2\"}}\n</tool_call><|im_end|>")
                .find("calculator expects {\\\"expression\\\": string}"),
            std::string::npos);
  EXPECT_NE(answer_text(server, "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1/0\"}}\n</tool_call><|im_end|>")
                .find("<tool_response>\nerror: division by zero\n</tool_response>"),
            std::string::npos);
  EXPECT_EQ(tool_use(server.turns()[0], Gold(1.0)).errors, 1);
  // Two calls in one turn: one user turn with both responses.
  EXPECT_EQ(
      answer_text(server, "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2*3\"}}\n</tool_call>\n" + kCall),
      "\n<|im_start|>user\n<tool_response>\n6\n</tool_response>\n<tool_response>\n408\n</"
      "tool_response><|im_end|>\n<|im_start|>assistant\n");
  const ToolUse use = tool_use(server.turns()[0], Gold(408.0));
  EXPECT_EQ(use.calls, 2);
  EXPECT_EQ(use.errors, 0);
  EXPECT_TRUE(use.useful);
  EXPECT_FALSE(tool_use(server.turns()[0], Gold(407.0)).useful);
  // Useful means what the correctness reward means by equal: 408 is within 1e-6 of 408.0004.
  EXPECT_EQ(tool_use(server.turns()[0], Gold(408.0004)).useful, answers_equal(408.0, 408.0004));
  EXPECT_TRUE(tool_use(server.turns()[0], Gold(408.0004)).useful);
  // A call-end without a call: nothing to answer, the sequence ends.
  SamplingParams sp;
  server.attach(sp, qwen(), ChatTemplate{}, 1, 1);
  EXPECT_TRUE(sp.tools.run({0}, {ids("I will </tool_call><|im_end|>")})[0].empty());
  EXPECT_TRUE(server.turns()[0].empty());
}

TEST(ToolServer, LongResultsAreCutToTheBudget) {
  TrainConfig cfg =
      tool_config({script("while IFS= read -r line; do printf '{\"results\": [{\"id\": \"0.0\", \"content\": \"%0500d\"}]}\\n' 7; done")});
  cfg.max_tool_tokens = 40;
  ToolServer server(cfg);
  const std::string text =
      answer_text(server, "<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"word\": \"x\"}}\n</tool_call><|im_end|>");
  EXPECT_LE(ids(text).size(), 40u);
  EXPECT_NE(text.find("...[cut]\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), std::string::npos) << text;
}

// Acceptance 4: the program's faults.
TEST(ToolServer, ToolProgramServesSchemaToolsInOneBatch) {
  // Echoes each call's id and word, and logs the requests it got.
  const std::string log = grpo::test::temp_dir() + "/requests";
  const std::string py = grpo::test::write_temp("tool.py",
                                                "import json, sys\n"
                                                "for line in sys.stdin:\n"
                                                "    open('" +
                                                    log +
                                                    "', 'a').write(line)\n"
                                                    "    req = json.loads(line)\n"
                                                    "    print(json.dumps({'results': [{'id': c['id'], 'content': "
                                                    "c['arguments']['word'].upper()} for c in reversed(req['calls'])]}), flush=True)\n");
  ToolServer server(tool_config({"python3", py}));
  SamplingParams sp;
  server.attach(sp, qwen(), ChatTemplate{}, 8, 5);
  auto call = [](const std::string& w) {
    return "<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"word\": \"" + w + "\"}}\n</tool_call>";
  };
  auto answers = sp.tools.run({2, 7}, {ids(call("a") + "\n" + kCall), ids(call("b") + "<|im_end|>")});
  EXPECT_EQ(qwen().decode(answers[0]),
            "\n<|im_start|>user\n<tool_response>\nA\n</tool_response>\n<tool_response>\n408\n</"
            "tool_response><|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(qwen().decode(answers[1]).find("<tool_response>\nB\n</tool_response>"), std::string::npos);
  // One request for both sequences' program calls (the calculator's is answered here).
  EXPECT_EQ(
      read_file(log),
      "{\"calls\":[{\"id\":\"2.0\",\"name\":\"lookup\",\"arguments\":{\"word\":\"a\"}},{\"id\":\"7.0\",\"name\":\"lookup\",\"arguments\":{"
      "\"word\":\"b\"}}],\"step\":5}\n");
  EXPECT_EQ(server.turns()[7][0].results, std::vector<std::string>{"B"});
}

TEST(ToolServer, ToolProgramFaults) {
  const std::string turn = "<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"word\": \"x\"}}\n</tool_call><|im_end|>";
  auto fails = [&](const std::string& body, double timeout = 5, int restarts = 1) {
    TrainConfig cfg = tool_config({script(body)});
    cfg.tool_timeout = timeout;
    cfg.tool_restarts = restarts;
    ToolServer server(cfg);
    return error_of([&] { answer_text(server, turn); });
  };
  // A hanging tool: killed after tool_timeout, restarted, then one error.
  auto t0 = std::chrono::steady_clock::now();
  std::string err = fails("sleep 600", 0.3, 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_NE(err.find("tool_command [\""), std::string::npos) << err;
  EXPECT_NE(err.find("no reply within tool_timeout = 0.3 s; gave up after 1 restart(s) (tool_restarts = 1)"), std::string::npos) << err;
  // A crashing tool.
  err = fails("exit 4", 5, 2);
  EXPECT_NE(err.find("exited with status 4"), std::string::npos) << err;
  EXPECT_NE(err.find("gave up after 2 restart(s) (tool_restarts = 2)"), std::string::npos) << err;
  // Replies of the wrong shape: one error at once, quoting the line.
  auto replying = [&](const std::string& reply) { return fails("while IFS= read -r line; do echo '" + reply + "'; done"); };
  EXPECT_NE(replying("ok").find("bad reply (not JSON): \"ok\""), std::string::npos);
  EXPECT_NE(replying(R"({"result": []})").find("expected an object with a \"results\" array"), std::string::npos);
  EXPECT_NE(replying(R"({"results": []})").find("no result for call id '0.0'"), std::string::npos);
  EXPECT_NE(replying(R"({"results": [{"id": "9.9", "content": "a"}]})").find("result for unknown call id '9.9'"), std::string::npos);
  EXPECT_NE(replying(R"({"results": [{"id": "0.0", "content": 5}]})").find("\"content\" must be a string"), std::string::npos);
  EXPECT_NE(replying(R"({"results": [{"id": "0.0", "content": "a"}, {"id": "0.0", "content": "a"}]})").find("two results"),
            std::string::npos);
}

TEST(ToolServer, TranscriptReadsBackAsMessages) {
  ToolServer server(tool_config());
  SamplingParams sp;
  server.attach(sp, qwen(), ChatTemplate{}, 1, 1);
  const auto turn1 = ids("Let me compute.\n" + kCall);
  const auto answer = sp.tools.run({0}, {turn1})[0];
  const auto turn2 = ids("It is 408.<|im_end|>");
  std::vector<int32_t> all = turn1, own(turn1.size(), 1);
  all.insert(all.end(), answer.begin(), answer.end());
  own.insert(own.end(), answer.size(), 0);
  all.insert(all.end(), turn2.begin(), turn2.end());
  own.insert(own.end(), turn2.size(), 1);
  Transcript t = read_transcript(qwen(), all, own, server.turns()[0]);
  EXPECT_EQ(t.final_text, "It is 408.");
  EXPECT_EQ(
      python_json(t.messages),
      "[{\"role\": \"assistant\", \"content\": \"Let me compute.\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": "
      "\"calculator\", \"arguments\": {\"expression\": \"12*34\"}}}]}, {\"role\": \"tool\", \"content\": \"408\"}, {\"role\": "
      "\"assistant\", \"content\": \"It is 408.\"}]");
  EXPECT_EQ(t.text, "Let me compute.\n" + kCall + qwen().decode(answer) + "It is 408.<|im_end|>");
}

TEST(ToolServer, ConfigKeys) {
  TrainConfig cfg;
  cfg.model_path = "m";
  apply_override(cfg, R"(tools=["calculator", {"type": "function", "function": {"name": "lookup"}}])");
  ASSERT_EQ(cfg.tools.size(), 2u);
  EXPECT_TRUE(cfg.tools[0].builtin);
  EXPECT_FALSE(cfg.tools[1].builtin);
  EXPECT_NE(
      error_of([&] { validate_config(cfg); }).find("config key 'tools': lookup is not built in, so tool_command must name the program"),
      std::string::npos);
  apply_override(cfg, R"(tool_command=["python3", "tools.py"])");
  validate_config(cfg);
  // The resolved config loads back to the same tools.
  EXPECT_EQ(get_config_value(cfg, "tools"), R"(["calculator", {"type": "function", "function": {"name": "lookup"}}])");
  TrainConfig again;
  load_config_text(again, "x.yaml", config_to_yaml(cfg));
  EXPECT_EQ(get_config_value(again, "tools"), get_config_value(cfg, "tools"));
  EXPECT_EQ(again.tool_command, cfg.tool_command);
  apply_override(cfg, R"(tools=["calculator"])");
  EXPECT_NE(
      error_of([&] { validate_config(cfg); }).find("config key 'tool_command' (--set): expected [] while no tool is a function schema"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { apply_override(cfg, R"(tools=["abacus"])"); }).find("config key 'tools' (--set)[0]: unknown built-in tool \"abacus\""),
      std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(cfg, "tools=calculator"); }).find("a JSON list of tools such as [\"calculator\"]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(cfg, "max_tool_calls=0"), validate_config(cfg); }).find("config key 'max_tool_calls'"),
            std::string::npos);
}
