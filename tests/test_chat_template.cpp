// test_chat_template.cpp: prompts rendered by the models' own chat templates (chat_template.h), run
// by the Jinja engine: the 13 real templates of tests/data/chat_templates (copied from ../shared, each
// with its source) against the text transformers' apply_chat_template renders (written out here;
// tests/interop/test_chat_templates.py compares every template with transformers on many
// conversations), the cases the hand-written renderers had, the tokenization of a rendered prompt
// (special tokens in the template's text only; the question shortened alone) and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <fstream>

#include "grpo/base/common.h"
#include "grpo/chat/chat_template.h"
#include "grpo/config/config.h"
#include "grpo/engine/dataset.h"
#include "grpo/tokenizer/tokenizer.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::ByteTokenizer;
using grpo::test::error_of;
using ordered_json = nlohmann::ordered_json;

namespace {

// A real template: tests/data/chat_templates/<name>.json with its bos/eos tokens and render kwargs.
ChatTemplate real(const std::string& name, ordered_json kwargs = ordered_json::object()) {
  const std::string path = std::string(GRPO_SOURCE_DIR) + "/tests/data/chat_templates/" + name + ".json";
  const ordered_json j = ordered_json::parse(read_file(path));
  ordered_json special = ordered_json::object();
  for (const char* k : {"bos_token", "eos_token"})
    if (j[k].is_string()) special[k] = j[k];
  for (auto it = j["render_kwargs"].begin(); it != j["render_kwargs"].end(); ++it)
    if (it.key() != "tools" && !kwargs.contains(it.key())) kwargs[it.key()] = it.value();
  return ChatTemplate(j["template"].get<std::string>(), "", name, special, kwargs);
}

std::string today(const char* fmt) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

const std::vector<ChatMessage> kSystemUser = {{"system", "S"}, {"user", "Q"}};
const std::vector<ChatMessage> kMultiTurn = {{"user", "Q1"}, {"assistant", "<think>r</think>A1"}, {"user", "Q2"}};

}  // namespace

// The templates the last renderers refused or rendered wrong, as transformers renders them.
TEST(ChatTemplate, RealTemplatesRenderAsTransformersDoes) {
  EXPECT_EQ(real("deepseek-r1-distill-qwen").render_text(kMultiTurn, true),
            "<｜begin▁of▁sentence｜><｜User｜>Q1<｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>\n");
  EXPECT_EQ(real("gemma-3-it").render_text(kSystemUser, true), "<bos><start_of_turn>user\nS\n\nQ<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(real("mistral-7b-instruct-v0.3").render_text(kMultiTurn, true), "<s>[INST] Q1[/INST] <think>r</think>A1</s>[INST] Q2[/INST]");
  EXPECT_EQ(real("mistral-7b-instruct-v0.3").render_text(kSystemUser, true), "<s>[INST] S\n\nQ[/INST]");
  EXPECT_EQ(real("phi-4").render_text(kSystemUser, true),
            "<|im_start|>system<|im_sep|>S<|im_end|><|im_start|>user<|im_sep|>Q<|im_end|><|im_start|>assistant<|im_sep|>");
  EXPECT_EQ(real("phi-4-mini-instruct").render_text(kSystemUser, true), "<|system|>S<|end|><|user|>Q<|end|><|assistant|>");
  EXPECT_EQ(real("olmo-2-1124-7b-instruct").render_text(kSystemUser, true), "<|endoftext|><|system|>\nS\n<|user|>\nQ\n<|assistant|>\n");
  EXPECT_EQ(real("glm-5.1").render_text(kMultiTurn, true), "[gMASK]<sop><|user|>Q1<|assistant|></think>A1<|user|>Q2<|assistant|><think>");
  EXPECT_EQ(real("smollm3-3b").render_text(kSystemUser, true),
            "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: " + today("%d %B %Y") +
                "\nReasoning Mode: /think\n\n## Custom Instructions\n\nS\n\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(real("llama-3.2-1b-instruct").render_text(kSystemUser, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " +
                today("%d %b %Y") +
                "\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Gemma raises for roles that do not alternate, with its own message.
  const std::string err = error_of([] { real("gemma-3-it").render_text({{"user", "a"}, {"user", "b"}}, true); });
  EXPECT_NE(err.find("gemma-3-it:"), std::string::npos) << err;
  EXPECT_NE(err.find("the template raised: Conversation roles must alternate user/assistant/user/assistant/..."), std::string::npos) << err;
}

// The hand-written renderers' cases, now the templates': Qwen2.5's default system turn, Qwen3's
// thinking switch and earlier think blocks, Llama 3's trimmed contents and dated system turn.
TEST(ChatTemplate, QwenAndLlamaCasesOfTheOldRenderers) {
  EXPECT_EQ(real("qwen2.5-7b-instruct").render_text({{"user", "2+2?"}}, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(real("qwen3-0.6b").render_text({{"user", "2+2?"}}, true), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(real("qwen3-0.6b", {{"enable_thinking", false}}).render_text({{"user", "2+2?"}}, true),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  const std::vector<ChatMessage> multi = {
      {"system", "S"}, {"user", "a"}, {"assistant", "<think>\nr1\n</think>\n\nA1"}, {"user", "b"}, {"assistant", "<think>r2</think>A2"}};
  EXPECT_EQ(real("qwen3-0.6b").render_text(multi, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n");
  EXPECT_EQ(
      real("llama-3.1-8b-instruct").render_text({{"system", " S \n"}, {"user", " Q "}}, true),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
      "S<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // No template: the built-in ChatML, no default system turn (the embedded tiny model).
  EXPECT_EQ(ChatTemplate().render_text({{"user", "Q"}}, true), "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate().render_text({{"system", "S"}, {"user", "Q"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n");
}

TEST(ChatTemplate, MarkersAreTheTemplatesAndTheQuestionIsShortenedAlone) {
  ByteTokenizer tok;  // bytes and <|im_start|>, <|im_end|>, <|endoftext|>
  const ChatTemplate chatml;
  PromptIds p = tokenize_prompt(tok, chatml, "", "abcdef", 512);
  EXPECT_EQ(tok.decode(p.ids, false), "<|im_start|>user\nabcdef<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(p.ids[0], *tok.token_to_id("<|im_start|>"));
  PromptIds cut = tokenize_prompt(tok, chatml, "", "abcdef", static_cast<int>(p.ids.size()) - 4);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(tok.decode(cut.ids, false), "<|im_start|>user\nef<|im_end|>\n<|im_start|>assistant\n");
  // A question holding a marker keeps it as text, inside its turn.
  PromptIds q = tokenize_prompt(tok, chatml, "", "x<|im_end|>", 512);
  EXPECT_EQ(std::count(q.ids.begin(), q.ids.end(), *tok.token_to_id("<|im_end|>")), 1);
}

TEST(ChatTemplate, TemplatesAreFoundAndBadSettingsAreErrors) {
  const std::string qwen3_dir = std::string(GRPO_SOURCE_DIR) + "/tests/data/qwen3";
  const ChatTemplate t = load_chat_template(qwen3_dir, {"auto", {{"enable_thinking", false}}});
  EXPECT_NE(t.source().find("tokenizer_config.json: field \"chat_template\""), std::string::npos) << t.source();
  EXPECT_TRUE(ends_with(t.render_text({{"user", "q"}}, true), "<think>\n\n</think>\n\n"));
  EXPECT_TRUE(load_chat_template("/nonexistent-dir").builtin());
  const std::string typo = error_of([&] { load_chat_template(qwen3_dir, {"auto", ordered_json::parse(R"({"enable_thinkin": false})")}); });
  EXPECT_NE(typo.find("config key chat_template_kwargs: 'enable_thinkin' is not a variable of the chat template"), std::string::npos)
      << typo;
  const std::string missing = error_of([&] { load_chat_template(qwen3_dir, {"no/such/file.jinja", ordered_json::object()}); });
  EXPECT_NE(missing.find("config key chat_template: 'no/such/file.jinja' is neither auto, chatml nor an existing .jinja file"),
            std::string::npos)
      << missing;
  EXPECT_EQ(error_of([] { ChatTemplate("{% if x %}", "", "my.jinja", {}, {}); }),
            "my.jinja:1:11: the template ends inside a block: expected {% endif %}");
  // Thinking switch on a template without one (the built-in ChatML) names the variable.
  EXPECT_NE(error_of([] {
              load_chat_template("/nonexistent-dir", {"chatml", {{"enable_thinking", true}}});
            }).find("'enable_thinking' is not a variable of the chat template built-in ChatML"),
            std::string::npos);
}

TEST(ChatTemplate, ConfigKeysReachTheSettings) {
  TrainConfig cfg;
  set_config_value(cfg, "chat_template_kwargs", R"({"date_string": "01 Jan 2026"})", "test");
  set_config_value(cfg, "enable_thinking", "false", "test");
  const ChatSettings s = chat_settings(cfg);
  EXPECT_EQ(s.chat_template, "auto");
  EXPECT_EQ(s.kwargs, ordered_json::parse(R"({"date_string": "01 Jan 2026", "enable_thinking": false})"));
  const std::string not_map = error_of([&] { set_config_value(cfg, "chat_template_kwargs", "[1]", "run.yaml:3"); });
  EXPECT_NE(not_map.find("chat_template_kwargs"), std::string::npos) << not_map;
  EXPECT_NE(not_map.find("a map such as {enable_thinking: false}"), std::string::npos) << not_map;
  set_config_value(cfg, "chat_template_kwargs", R"({"enable_thinking": true})", "test");
  EXPECT_NE(error_of([&] { chat_settings(cfg); }).find("disagree"), std::string::npos);
  set_config_value(cfg, "chat_template", "qwen3", "run.yaml:4");
  EXPECT_NE(error_of([&] {
              validate_config(cfg);
            }).find("config key 'chat_template' (run.yaml:4): 'qwen3': no such file (expected auto, chatml or the path"),
            std::string::npos);
}
