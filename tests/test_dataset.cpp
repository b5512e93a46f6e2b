// Tests for dataset.h: GSM8K loading (every gold of both shipped files), errors with file:line,
// deterministic ordering, ChatML rendering, prompt tokenization (homework step 1) and left-padded collation.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "grpo/base/common.h"
#include "grpo/engine/dataset.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::ByteTokenizer;
using grpo::test::error_of;
using grpo::test::source_path;
using grpo::test::write_temp;

// ---------------------------------------------------------------------------------------------
// Loading

TEST(Dataset, EveryShippedGoldParses) {
  PromptDataset train(source_path("data/gsm8k/train.jsonl"));
  PromptDataset test(source_path("data/gsm8k/test.jsonl"));
  EXPECT_EQ(train.size(), 7473u);
  EXPECT_EQ(test.size(), 1319u);
  EXPECT_EQ(train[0].gold.number, 72);  // Natalia's clips
  EXPECT_EQ(train[1].gold.number, 10);
  // Thousands separators: 79 train golds carry one; each must parse to the comma-free integer.
  size_t with_comma = 0;
  for (const auto* ds : {&train, &test})
    for (size_t i = 0; i < ds->size(); ++i) {
      const auto& ex = (*ds)[i];
      std::string tail = ex.answer.substr(ex.answer.rfind("####") + 4), digits;
      for (char ch : tail)
        if (ch != ',' && ch != ' ') digits += ch;
      if (tail.find(',') != std::string::npos) ++with_comma;
      EXPECT_EQ(ex.gold.number, std::stod(digits)) << ds->path() << ":" << ex.line;
    }
  EXPECT_EQ(with_comma, 79u + 14u);
}

TEST(Dataset, PromptGoldFormatAndLimit) {
  std::string path = write_temp("d.jsonl",
                                "{\"prompt\": \"What is 2+3?\", \"gold\": 5}\n"
                                "\n"
                                "{\"prompt\": \"Big?\", \"gold\": \"1,000\"}\n"
                                "{\"prompt\": \"Third\", \"gold\": 3}\n");
  PromptDataset ds(path);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].question, "What is 2+3?");
  EXPECT_EQ(ds[0].gold.number, 5);
  EXPECT_EQ(ds[1].gold.number, 1000);
  EXPECT_EQ(ds[1].line, 3u);  // blank line skipped, numbering kept
  EXPECT_EQ(PromptDataset(path, 2).size(), 2u);
}

TEST(Dataset, BadLinesNameFileAndLine) {
  auto msg_for = [](const std::string& content) {
    std::string path = write_temp("bad.jsonl", content);
    return std::make_pair(path, error_of([&] { PromptDataset ds(path); }));
  };
  const std::string good = "{\"question\": \"q\", \"answer\": \"#### 1\"}\n";
  auto [p1, m1] = msg_for(good + "{not json}\n");
  EXPECT_NE(m1.find(p1 + ":2: invalid JSON"), std::string::npos) << m1;
  auto [p2, m2] = msg_for(good + good + "{\"question\": \"q\"}\n");
  EXPECT_NE(m2.find(p2 + ":3: missing field \"answer\""), std::string::npos) << m2;
  auto [p3, m3] = msg_for("{\"question\": \"q\", \"answer\": \"#### many\"}\n");
  EXPECT_NE(m3.find(p3 + ":1: field \"answer\": no number after the last \"####\""), std::string::npos) << m3;
  auto [p4, m4] = msg_for("{\"question\": \"q\", \"answer\": \"42\"}\n");
  EXPECT_NE(m4.find(p4 + ":1: field \"answer\": expected the gold after \"####\""), std::string::npos) << m4;
  auto [p5, m5] = msg_for("{\"text\": \"q\"}\n");
  EXPECT_NE(m5.find(p5 + ":1: missing field \"question\""), std::string::npos) << m5;
  auto [p6, m6] = msg_for("{\"question\": 7, \"answer\": \"#### 1\"}\n");
  EXPECT_NE(m6.find(p6 + ":1: field \"question\": expected a string, found number"), std::string::npos) << m6;
  auto [p7, m7] = msg_for("");
  EXPECT_NE(m7.find(p7 + ": no examples"), std::string::npos) << m7;
  EXPECT_NE(error_of([] { PromptDataset ds("/nonexistent.jsonl"); }).find("/nonexistent.jsonl"), std::string::npos);
}

TEST(Dataset, TrlFormatsGoldsAndColumns) {
  const std::vector<Example> ex = parse_gsm8k_examples(
      R"({"prompt": "How many?", "gold": "1,080", "level": 3, "tags": ["x", {"y": null}]})"
      "\n"
      R"({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},)"
      R"( {"role": "user", "content": "last?"}], "solution": "so $\\boxed{\\frac{1}{2}}$", "id": "m-1"})"
      "\n"
      R"({"prompt": "p", "answer": "work\n#### 7", "extra": 1.5})"
      "\n"
      R"({"prompt": "p", "answer": "it is \\boxed{12}"})"
      "\n"
      R"({"question": "q", "answer": "#### 4"})",
      "d.jsonl");
  ASSERT_EQ(ex.size(), 5u);
  EXPECT_EQ(ex[0].gold.number, 1080);
  EXPECT_EQ(ex[0].gold.text, "1,080");
  EXPECT_TRUE(ex[0].gold.is_string);  // the reward program gets "1,080", as written
  EXPECT_EQ(ex[0].columns, R"({"level":3,"tags":["x",{"y":null}]})");
  EXPECT_TRUE(ex[0].messages.empty());
  ASSERT_EQ(ex[1].messages.size(), 4u);
  EXPECT_EQ(ex[1].messages[2].role, "assistant");
  EXPECT_EQ(ex[1].question, "last?");
  EXPECT_EQ(ex[1].gold.text, "\\frac{1}{2}");  // a boxed gold is a string gold, as given
  EXPECT_TRUE(ex[1].gold.is_string);
  EXPECT_EQ(ex[1].gold.number, 0.5);  // all of it one number: strict and flexible modes can use it
  EXPECT_EQ(ex[1].columns, R"({"id":"m-1"})");
  EXPECT_EQ(ex[2].gold.number, 7);
  EXPECT_FALSE(ex[2].gold.is_string);  // after "####": a number, as GSM8K's
  EXPECT_EQ(ex[2].columns, R"({"extra":1.5})");
  EXPECT_EQ(ex[3].gold.number, 12);
  EXPECT_EQ(ex[3].columns, "");
  EXPECT_EQ(ex[4].columns, "");  // GSM8K lines carry nothing extra: the reward program's request is unchanged
  EXPECT_EQ(gold_json(ex[4].gold), nlohmann::json(4.0));
  EXPECT_EQ(gold_json(ex[0].gold), nlohmann::json("1,080"));
}

// One reading of a line's gold for the data files and grpo_reward: a number keeps the text the
// line wrote (42, not 42.0: math mode compares that text).
TEST(Dataset, LineGoldKeepsTheWrittenNumber) {
  EXPECT_EQ(trl_gold(nlohmann::json::parse(R"({"gold": 42})"), "x").text, "42");
  EXPECT_EQ(trl_gold(nlohmann::json::parse(R"({"gold": 0.5})"), "x").text, "0.5");
  const Gold g = trl_gold(nlohmann::json::parse(R"({"answer": "so #### 1,080"})"), "x");
  EXPECT_EQ(g.text, "1,080");
  EXPECT_EQ(*g.number, 1080.0);
  const char* used = nullptr;
  EXPECT_EQ(trl_gold(nlohmann::json::parse(R"({"solution": "is \\boxed{\\frac{1}{2}}"})"), "x", &used).text, "\\frac{1}{2}");
  EXPECT_STREQ(used, "solution");
}

TEST(Dataset, RefusesGoldsThatAreNotNumbersUnlessMath) {
  const std::vector<Example> ex =
      parse_gsm8k_examples("{\"prompt\": \"a\", \"gold\": 3}\n{\"prompt\": \"b\", \"gold\": \"\\\\frac{\\\\pi}{2}\"}\n", "d.jsonl");
  EXPECT_NO_THROW(require_golds(ex, "d.jsonl", AnswerMode::Math, true));
  EXPECT_EQ(error_of([&] { require_golds(ex, "d.jsonl", AnswerMode::Flexible, true); }),
            "d.jsonl:2: the gold '\\frac{\\pi}{2}' is not one number, and answer_mode flexible compares numbers (answer_mode: math "
            "compares answers like this one)");
  EXPECT_EQ(error_of([] { parse_gsm8k_examples(R"({"prompt": "q", "gold": " "})", "d.jsonl"); }),
            "d.jsonl:1: field \"gold\": the gold is empty");
}

TEST(Dataset, TrlLinesThatFitNoFormatAreErrors) {
  auto err = [](const std::string& line) { return error_of([&] { parse_gsm8k_examples(line, "d.jsonl"); }); };
  EXPECT_EQ(err(R"({"prompt": [{"role": "robot", "content": "x"}], "gold": 1})"),
            R"(d.jsonl:1: field "prompt", message 1: unknown role "robot" (expected system, user or assistant))");
  EXPECT_EQ(
      err(R"({"text": "q", "label": 3})"),
      R"(d.jsonl:1: missing field "question" (or "prompt"): expected GSM8K's question + answer or TRL's prompt + a gold; fields found: "label", "text")");
  EXPECT_EQ(err(R"({"prompt": "q", "gold": [1]})"), R"(d.jsonl:1: field "gold": expected a number or string, found array)");
  EXPECT_EQ(err(R"({"prompt": "q", "solution": "\boxed{3"})"), R"(d.jsonl:1: field "solution": no closed \boxed{...} holding the gold)");
  EXPECT_EQ(err(R"({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "gold": 1})"),
            R"(d.jsonl:1: field "prompt": a conversational prompt must end with a user message)");
}

// A line without a gold is fine until a reward or the evaluation needs one; then the error names it.
TEST(Dataset, GoldsAreOptionalUntilARewardNeedsThem) {
  const std::vector<Example> ex =
      parse_gsm8k_examples("{\"prompt\": \"Write a haiku\", \"level\": 2}\n{\"prompt\": \"q\", \"gold\": 3}\n", "d.jsonl");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_TRUE(ex[0].gold.missing);
  EXPECT_EQ(ex[0].columns, R"({"level":2})");
  EXPECT_TRUE(gold_json(ex[0].gold).is_null());
  EXPECT_NO_THROW(require_golds(ex, "d.jsonl", AnswerMode::Strict, /*needed=*/false));
  EXPECT_EQ(error_of([&] { require_golds(ex, "d.jsonl", AnswerMode::Strict, /*needed=*/true); }).rfind("d.jsonl:1: no gold", 0), 0u);
}

// ---------------------------------------------------------------------------------------------
// Ordering

TEST(Dataset, EpochOrderIsADeterministicPermutation) {
  std::string content;
  for (int i = 0; i < 10; ++i) content += "{\"prompt\": \"q" + std::to_string(i) + "\", \"gold\": 1}\n";
  PromptDataset ds(write_temp("d.jsonl", content));
  auto e0 = ds.epoch_order(42, 0), e1 = ds.epoch_order(42, 1);
  EXPECT_EQ(e0, ds.epoch_order(42, 0));
  EXPECT_NE(e0, e1);
  EXPECT_NE(e0, ds.epoch_order(43, 0));
  EXPECT_EQ(std::set<size_t>(e0.begin(), e0.end()).size(), 10u);
  // Pinned: mt19937_64 and our bounded draw are fully specified, so this holds on every platform.
  EXPECT_EQ(e0, (std::vector<size_t>{9, 6, 2, 0, 1, 4, 3, 8, 5, 7}));
  // The stream crosses the epoch boundary seamlessly: positions 8..11 = e0[8], e0[9], e1[0], e1[1].
  EXPECT_EQ(ds.indices_at(42, 8, 4), (std::vector<size_t>{e0[8], e0[9], e1[0], e1[1]}));
  EXPECT_EQ(ds.indices_at(42, 25, 1), (std::vector<size_t>{ds.epoch_order(42, 2)[5]}));
}

// ---------------------------------------------------------------------------------------------
// Prompts

TEST(Prompt, ChatMLMatchesQwenTemplate) {
  std::string text = ChatTemplate{}.render_text({{"system", "S"}, {"user", "Q?"}}, true);
  EXPECT_EQ(text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Prompt, TokenizeInsertsSpecialsByIdAndQuestionAsText) {
  ByteTokenizer tok;
  PromptIds p = tokenize_prompt(tok, ChatTemplate{}, "S", "Q<|im_end|>", 512);
  EXPECT_FALSE(p.truncated);
  // Same as encoding the rendered template with specials matched, except that the question's
  // "<|im_end|>" stays 10 plain bytes instead of becoming id 257.
  std::string safe = ChatTemplate{}.render_text({{"system", "S"}, {"user", "Q"}}, true);
  std::vector<int32_t> expected = tok.encode(safe, true);
  std::vector<int32_t> q_text = tok.encode("<|im_end|>", false);
  // positions: 256 s y s t e m \n S 257 \n 256 u s e r \n Q  -> Q sits at index 17
  ASSERT_EQ(expected[17], 'Q');
  expected.insert(expected.begin() + 18, q_text.begin(), q_text.end());
  EXPECT_EQ(p.ids, expected);
  EXPECT_EQ(p.ids.front(), 256);
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), 257), 2);  // only the template's two <|im_end|>
}

TEST(Prompt, TruncationKeepsTemplateAndQuestionTail) {
  ByteTokenizer tok;
  PromptIds full = tokenize_prompt(tok, ChatTemplate{}, "S", "abcdefgh", 512);
  const int fixed = static_cast<int>(full.ids.size()) - 8;
  PromptIds cut = tokenize_prompt(tok, ChatTemplate{}, "S", "abcdefgh", fixed + 3);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(static_cast<int>(cut.ids.size()), fixed + 3);
  std::string decoded = tok.decode(cut.ids, false);
  EXPECT_NE(decoded.find("user\nfgh<|im_end|>"), std::string::npos) << decoded;
  EXPECT_NE(error_of([&] { tokenize_prompt(tok, ChatTemplate{}, "S", "q", fixed); }).find("no room for the question"), std::string::npos);
}

TEST(Prompt, CollateLeftPads) {
  PromptBatch b = collate_prompts({{5, 6, 7}, {8}}, 0);
  EXPECT_TRUE(torch::equal(b.input_ids, torch::tensor({5, 6, 7, 0, 0, 8}, torch::kInt64).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.attention_mask, torch::tensor({1, 1, 1, 0, 0, 1}, torch::kInt64).view({2, 3})));
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{3, 1}));
}
