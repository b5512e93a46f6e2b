// test_chat_template.cpp: the chat template families (chat_template.h) against the text each model's
// own Jinja template renders (expected strings written out by hand from Qwen2.5's, Qwen3's and Meta's
// templates; tests/interop/test_chat_templates.py compares with transformers' apply_chat_template),
// recognising a family from a template's text, and the errors.
#include <gtest/gtest.h>

#include "grpo/chat_template.h"
#include "grpo/common.h"
#include "grpo/config.h"
#include "grpo/dataset.h"
#include "grpo/tokenizer.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::ByteTokenizer;
using grpo::test::error_of;

namespace {

const std::string kQwen3Template = R"({%- if messages[0].role == 'system' %}...{%- set reasoning_content = content.split('</think>')[0] %}
{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}<|im_start|>)";
const std::string kQwen25Template =
    R"({%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }})";
const std::string kLlama30Template =
    R"({% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %})";

ChatTemplate from(const std::string& text, ChatSettings s = {}) {
  return chat_template_from_text(text, "tokenizer_config.json", s);
}

}  // namespace

TEST(ChatTemplate, RecognisesTheFamilyFromTheTemplateText) {
  EXPECT_EQ(from(kQwen3Template).family, ChatFamily::Qwen3);
  EXPECT_EQ(from(kQwen25Template).family, ChatFamily::ChatML);
  EXPECT_EQ(from(kQwen25Template).default_system, kQwenDefaultSystemPrompt);
  EXPECT_EQ(from(kLlama30Template).family, ChatFamily::Llama3);
  EXPECT_EQ(from(kLlama30Template).llama_date, "");
  EXPECT_EQ(from(kLlama30Template + "Cutting Knowledge Date").llama_date, "26 Jul 2024");  // 3.1: a fixed date
  // No template: plain ChatML without a default system turn (the embedded tiny model).
  const ChatTemplate none = chat_template_from_text(std::nullopt, "dir: no chat template");
  EXPECT_EQ(none.family, ChatFamily::ChatML);
  EXPECT_EQ(none.default_system, "");
  // The key picks a family whatever the text says.
  EXPECT_EQ(from(kQwen25Template, {ChatTemplateChoice::Llama3, {}}).family, ChatFamily::Llama3);
}

TEST(ChatTemplate, UnknownTemplatesAndMisplacedThinkingSwitchesAreErrors) {
  const std::string err = error_of([] { from("{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"); });
  EXPECT_NE(err.find("tokenizer_config.json: the chat template fits none of the known families (chatml: Qwen2.5, qwen3, llama3)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("chat_template (auto|chatml|qwen3|llama3)"), std::string::npos) << err;
  const std::string think = error_of([] { from(kQwen25Template, {ChatTemplateChoice::Auto, false}); });
  EXPECT_NE(think.find("config key enable_thinking: tokenizer_config.json has no thinking switch (its family is chatml"), std::string::npos)
      << think;
  EXPECT_EQ(from(kQwen3Template, {ChatTemplateChoice::Auto, false}).enable_thinking, false);
}

TEST(ChatTemplate, ChatMLInsertsQwen25sDefaultSystemTurn) {
  const ChatTemplate t = from(kQwen25Template);
  EXPECT_EQ(t.render_text({{"user", "2+2?"}}, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render_text({{"system", "S"}, {"user", "Q"}}, false), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3ThinkingSwitchAndEarlierThinkBlocks) {
  ChatTemplate t = from(kQwen3Template);
  const std::vector<ChatMessage> one = {{"user", "2+2?"}};
  EXPECT_EQ(t.render_text(one, true), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  t.enable_thinking = false;
  EXPECT_EQ(t.render_text(one, true), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // An earlier assistant turn loses its reasoning; one after the last user turn keeps it.
  const std::vector<ChatMessage> multi = {
      {"system", "S"}, {"user", "a"}, {"assistant", "<think>\nr1\n</think>\n\nA1"}, {"user", "b"}, {"assistant", "<think>r2</think>A2"}};
  EXPECT_EQ(t.render_text(multi, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n");
}

TEST(ChatTemplate, Llama3TrimsContentsAndDatesTheSystemTurnFrom31On) {
  ChatTemplate t = from(kLlama30Template);
  EXPECT_EQ(t.render_text({{"system", " S \n"}, {"user", "Q"}}, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  t.llama_date = "26 Jul 2024";
  EXPECT_EQ(t.render_text({{"user", "Q"}}, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, MarkersAreIdsAndTheQuestionIsShortenedAlone) {
  ByteTokenizer tok;  // bytes and <|im_start|>, <|im_end|>, <|endoftext|>: no <think>
  ChatTemplate qwen3 = from(kQwen3Template);
  qwen3.enable_thinking = false;
  const std::string err = error_of([&] { tokenize_prompt(tok, qwen3, "", "Q", 512); });
  EXPECT_NE(err.find("tokenizer: no '<think>' token; qwen3 prompts need it"), std::string::npos) << err;
  // ChatML ids: 2 markers a turn, the question's tail kept when too long.
  const ChatTemplate chatml;
  PromptIds p = tokenize_prompt(tok, chatml, "", "abcdef", 512);
  EXPECT_EQ(tok.decode(p.ids, false), "<|im_start|>user\nabcdef<|im_end|>\n<|im_start|>assistant\n");
  PromptIds cut = tokenize_prompt(tok, chatml, "", "abcdef", static_cast<int>(p.ids.size()) - 4);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(tok.decode(cut.ids, false), "<|im_start|>user\nef<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ConfigKeysReachTheSettings) {
  TrainConfig cfg;
  set_config_value(cfg, "chat_template", "qwen3", "test");
  set_config_value(cfg, "enable_thinking", "false", "test");
  const ChatSettings s = chat_settings(cfg);
  EXPECT_EQ(s.choice, ChatTemplateChoice::Qwen3);
  ASSERT_TRUE(s.enable_thinking.has_value());
  EXPECT_FALSE(*s.enable_thinking);
  const std::string err = error_of([&] { set_config_value(cfg, "chat_template", "mistral", "run.yaml:3"); });
  EXPECT_NE(err.find("chat_template"), std::string::npos) << err;
  EXPECT_NE(err.find("llama3"), std::string::npos) << err;
}
