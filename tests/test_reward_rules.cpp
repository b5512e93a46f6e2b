// Rule rewards (reward_rules.h): hand-counted matches, caps, shapes and UTF-8 patterns, the
// parser's errors, and the config round trip (YAML, JSON, --set, config_to_yaml).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "grpo/config/config.h"
#include "grpo/rewards/reward.h"
#include "grpo/rewards/reward_rules.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;
using json = nlohmann::json;

namespace {

CompiledRule rule(const std::string& json_text) {
  return CompiledRule(parse_reward_rule(json::parse(json_text), "test"));
}
float value(const std::string& json_text, const std::string& completion, int64_t n_tokens = -1) {
  return rule(json_text).value(completion, "", n_tokens);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Counting

TEST(RewardRules, WordsAndChars) {
  EXPECT_EQ(count_words("The cat sat."), 3);
  EXPECT_EQ(count_words("don't stop, well-known 3.5 x"), 6);  // don't | stop | well-known | 3 | 5 | x
  EXPECT_EQ(count_words(""), 0);
  EXPECT_EQ(count_words("因为下雨，所以不去。"), 8);  // one word per Han character, punctuation none
  EXPECT_EQ(count_words("abc因为def"), 4);            // abc | 因 | 为 | def
  EXPECT_EQ(count_words("Привет мир"), 2);            // Cyrillic letters are letters
  EXPECT_EQ(count_chars("aé因"), 3);                  // code points, not bytes (1 + 2 + 3 bytes)
}

// ---------------------------------------------------------------------------------------------
// regex and keywords: value = clamp(per_match * count, -max, max)

TEST(RewardRules, RegexCountsCapsAndPresence) {
  const std::string text = "step 1: 2 + 3 = 5; step 2: 5 * 4 = 20";
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\d+"})", text), 8.0f);  // 1 2 3 5 2 5 4 20
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\d+","per_match":0.25,"max":1.5})", text), 1.5f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\d+","per_match":0.1})", text), 0.8f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"step","presence":true,"per_match":0.5})", text), 0.5f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"STEP"})", text), 0.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"STEP","ignore_case":true,"per_match":-1,"max":1})", text), -1.0f);
  // Empty matches advance one code point: "x*" matches at each of the 4 positions of "aé因" and its end.
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"x*"})", "aé因"), 4.0f);
}

TEST(RewardRules, Utf8Patterns) {
  const std::string text = "他因为累了，所以睡觉。然而 he woke up. 但是";
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\p{sc:Han}"})", text), 13.0f);
  // PCRE2 >= 10.40: \p{Han} is by Script_Extensions, which puts the full stop 。 in Han too.
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\p{Han}"})", text), 14.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"[因所]"})", text), 2.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"\\w+"})", "é因 ab"), 2.0f);  // \w is Unicode (UCP)
  // Bytes that are not UTF-8 (a sampled completion can hold them) are no match, not an error.
  EXPECT_FLOAT_EQ(value(R"({"name":"n","type":"regex","pattern":"a"})", std::string("a\xff\xfe"
                                                                                    "a")),
                  2.0f);
}

TEST(RewardRules, KeywordsConnectives) {
  const std::string r = R"({"name":"c","type":"keywords","words":["因为","所以","然而","但是"],"per_match":0.1,"max":0.3})";
  EXPECT_FLOAT_EQ(value(r, "因为下雨，所以不去"), 0.2f);
  EXPECT_FLOAT_EQ(value(r, "因为A所以B然而C但是D因为"), 0.3f);  // 5 hits x 0.1, capped at 0.3
  EXPECT_FLOAT_EQ(value(r, "no connectives"), 0.0f);
  // Literal words: regex characters in them are plain text.
  EXPECT_FLOAT_EQ(value(R"J({"name":"k","type":"keywords","words":["a.b","(x)"]})J", "a.b axb (x) x"), 2.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"k","type":"keywords","words":["so"]})", "so also so-so"), 4.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"k","type":"keywords","words":["so"],"whole_words":true})", "so also so-so"), 3.0f);
  EXPECT_FLOAT_EQ(value(R"({"name":"k","type":"keywords","words":["So"],"ignore_case":true,"whole_words":true})", "so SO sO"), 3.0f);
}

// ---------------------------------------------------------------------------------------------
// length: d = |L - target|; triangular max(0, 1 - d / tolerance); linear -min(1, max(0, d - tol) / target)

TEST(RewardRules, LengthShapes) {
  const std::string tri = R"({"name":"l","type":"length","unit":"words","target":10,"tolerance":5})";
  EXPECT_FLOAT_EQ(value(tri, "w w w w w w w w w w"), 1.0f);        // 10 words
  EXPECT_FLOAT_EQ(value(tri, "w w w w w w w w"), 0.6f);            // 8: 1 - 2/5
  EXPECT_FLOAT_EQ(value(tri, "w w w w w w w w w w w w w"), 0.4f);  // 13: 1 - 3/5
  EXPECT_FLOAT_EQ(value(tri, "w"), 0.0f);                          // 9 away: floored
  const std::string lin = R"({"name":"l","type":"length","unit":"chars","target":10,"tolerance":2,"shape":"linear"})";
  EXPECT_FLOAT_EQ(value(lin, "abcdefghijkl"), 0.0f);              // 12 chars: within tolerance
  EXPECT_FLOAT_EQ(value(lin, "abcdefghijklmno"), -0.3f);          // 15: -(5 - 2)/10
  EXPECT_FLOAT_EQ(value(lin, "ab"), -0.6f);                       // 2: -(8 - 2)/10
  EXPECT_FLOAT_EQ(value(lin, std::string(40, 'x')), -1.0f);       // floored at -1
  EXPECT_FLOAT_EQ(value(lin, "因为因为因为因为因为因为"), 0.0f);  // 12 code points, 36 bytes
  const std::string tok = R"({"name":"l","type":"length","unit":"tokens","target":100,"tolerance":50})";
  EXPECT_FLOAT_EQ(value(tok, "", 80), 0.6f);
  EXPECT_NE(error_of([&] { value(tok, "abc"); }).find("unit tokens needs the completion's token count"), std::string::npos);
}

TEST(RewardRules, OnAnswerReadsTheExtractedSpan) {
  RewardRule r =
      parse_reward_rule(json::parse(R"({"name":"short","type":"length","unit":"chars","target":3,"tolerance":3,"on":"answer"})"), "t");
  RewardSet set({{"correctness", 1.0}}, RewardContext{}, {r});
  RewardResult res = set.score("<think>a long line of reasoning</think> <answer>42</answer>", 42);
  // The span is "42" (2 chars, 1 from the target): 1 - 1/3.
  EXPECT_NEAR(res.by_fn.at("short"), 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(res.total, 1.0 + 2.0 / 3.0, 1e-6);
  EXPECT_FLOAT_EQ(set.score("no answer here", 42).by_fn.at("short"), 0.0f);  // empty span: 3 away
}

TEST(RewardRules, WeightsAddToTheTotal) {
  std::vector<RewardRule> rules = parse_reward_rules(json::parse(R"([
      {"name":"digits","type":"regex","pattern":"\\d","weight":0.5},
      {"name":"banned","type":"keywords","words":["sorry"],"per_match":-1,"presence":true,"weight":2}])"),
                                                     "t");
  RewardSet set({{"correctness", 1.0}, {"format", 0.0}}, RewardContext{}, rules);
  RewardResult r = set.score("sorry, sorry: #### 12", 12);
  EXPECT_FLOAT_EQ(r.by_fn.at("digits"), 2.0f);
  EXPECT_FLOAT_EQ(r.by_fn.at("banned"), -1.0f);
  EXPECT_FLOAT_EQ(r.total, 1.0f + 0.5f * 2.0f + 2.0f * -1.0f);
}

TEST(RewardRules, ACompletionTheRegexCannotMatchScoresZeroAndSaysWhy) {
  // (a|a)+c backtracks exponentially on a run of a's not followed by c (a c later defeats PCRE2's
  // required-character shortcut): PCRE2 stops at its match limit.
  // That one completion scores 0 in every component (a partial count would be a wrong reward),
  // the others are scored as usual, and a configuration mistake is still an error.
  std::vector<RewardRule> rules = parse_reward_rules(json::parse(R"([
      {"name":"ab","type":"regex","pattern":"(a|a)+c","weight":1}])"),
                                                     "rules.yaml");
  RewardSet set({{"correctness", 1.0}}, RewardContext{}, rules);
  RewardResult bad = set.score(std::string(40, 'a') + " c #### 12", 12);
  EXPECT_NE(bad.error.find("rules.yaml reward_rules[0]: rule 'ab': cannot match this completion (match limit exceeded)"), std::string::npos)
      << bad.error;
  EXPECT_EQ(bad.total, 0.0f);
  EXPECT_FALSE(bad.correct);
  EXPECT_EQ(bad.by_fn.at("correctness"), 0.0f);
  EXPECT_EQ(bad.by_fn.at("ab"), 0.0f);
  EXPECT_EQ(bad.by_fn.size(), reward_names().size() + 1);  // the same components as every other result
  RewardResult good = set.score("aac #### 12", 12);
  EXPECT_TRUE(good.error.empty());
  EXPECT_FLOAT_EQ(good.total, 2.0f);
  std::vector<RewardRule> tokens = parse_reward_rules(json::parse(R"([
      {"name":"n","type":"length","unit":"tokens","target":10,"tolerance":2}])"),
                                                      "t");
  RewardSet needs_counts({{"correctness", 1.0}}, RewardContext{}, tokens);
  EXPECT_NE(error_of([&] { needs_counts.score("x", 1); }).find("unit tokens needs the completion's token count"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Parsing errors name the rule and the field

TEST(RewardRules, ParseErrors) {
  auto err = [](const std::string& j) { return error_of([&] { parse_reward_rules(json::parse(j), "cfg.yaml:3"); }); };
  EXPECT_NE(err(R"([{"name":"x","type":"regex","pattern":"(unclosed"}])").find("does not compile: missing closing parenthesis"),
            std::string::npos);
  EXPECT_NE(err(R"([{"name":"x","type":"regex","patern":"a"}])").find("missing field \"pattern\""), std::string::npos);
  EXPECT_NE(err(R"([{"name":"x","type":"regex","pattern":"a","per_mach":1}])")
                .find("unknown field \"per_mach\" for type regex; did you mean 'per_match'?"),
            std::string::npos);
  EXPECT_NE(err(R"([{"name":"x","type":"regexp","pattern":"a"}])").find("field \"type\": expected one of regex keywords length"),
            std::string::npos);
  EXPECT_NE(err(R"([{"name":"X y","type":"regex","pattern":"a"}])").find("[a-z0-9_]+"), std::string::npos);
  EXPECT_NE(err(R"([{"name":"format","type":"regex","pattern":"a"}])").find("is a built-in reward function's"), std::string::npos);
  EXPECT_NE(err(R"([{"name":"a","type":"regex","pattern":"a"},{"name":"a","type":"regex","pattern":"b"}])")
                .find("cfg.yaml:3 reward_rules[1]: rule name 'a' is already used by cfg.yaml:3 reward_rules[0]"),
            std::string::npos);
  EXPECT_NE(err(R"([{"name":"l","type":"length","target":10}])").find("missing field \"tolerance\""), std::string::npos);
  EXPECT_NE(err(R"([{"name":"l","type":"length","target":0,"tolerance":1}])").find("field \"target\": expected a number > 0"),
            std::string::npos);
  EXPECT_NE(err(R"([{"name":"k","type":"keywords","words":[]}])").find("a non-empty list of strings"), std::string::npos);
  EXPECT_NE(err(R"([{"name":"k","type":"keywords","words":["a"],"max":-1}])").find("field \"max\": expected a number >= 0"),
            std::string::npos);
  EXPECT_NE(err(R"({"name":"k"})").find("expected a list of rule objects"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Config: YAML (scalars as text), JSON, --set, and config_to_yaml loading back the same rules

TEST(RewardRules, ConfigRoundTrip) {
  const std::string yaml = R"(reward_rules:
  - {name: words50, type: length, unit: words, target: 50, tolerance: 50, weight: 0.5}
  - name: connectives
    type: keywords
    words: [因为, 所以, 然而, 但是]
    per_match: 0.1
    max: 0.3
  - {name: no_sorry, type: regex, pattern: '(?i)\bsorry\b', presence: true, per_match: -1}
reward_command: [python3, my_reward.py, --flag]
reward_timeout: 5
)";
  TrainConfig cfg;
  load_config_file(cfg, grpo::test::write_temp("r.yaml", yaml));
  ASSERT_EQ(cfg.reward_rules.size(), 3u);
  EXPECT_EQ(cfg.reward_rules[0].type, RuleType::Length);
  EXPECT_EQ(cfg.reward_rules[0].target, 50);
  EXPECT_EQ(cfg.reward_rules[1].words.size(), 4u);
  EXPECT_EQ(cfg.reward_rules[1].words[3], "但是");
  EXPECT_DOUBLE_EQ(cfg.reward_rules[1].max, 0.3);
  EXPECT_EQ(cfg.reward_rules[2].pattern, "(?i)\\bsorry\\b");
  EXPECT_TRUE(cfg.reward_rules[2].presence);
  EXPECT_EQ(cfg.reward_command, (std::vector<std::string>{"python3", "my_reward.py", "--flag"}));
  EXPECT_DOUBLE_EQ(cfg.reward_timeout, 5);

  TrainConfig back;
  load_config_file(back, grpo::test::write_temp("back.yaml", config_to_yaml(cfg)));
  EXPECT_EQ(get_config_value(back, "reward_rules"), get_config_value(cfg, "reward_rules"));
  EXPECT_EQ(back.reward_command, cfg.reward_command);

  TrainConfig j;
  load_config_file(j, grpo::test::write_temp("r.json", R"({"reward_rules": [{"name": "d", "type": "regex", "pattern": "\\d", "max": 2}],
                                                          "reward_command": ["./r.sh"]})"));
  EXPECT_EQ(j.reward_rules.at(0).max, 2);
  EXPECT_EQ(j.reward_command.at(0), "./r.sh");
  apply_override(j, R"(reward_rules=[{"name":"e","type":"keywords","words":["x"]}])");
  EXPECT_EQ(j.reward_rules.at(0).name, "e");
  EXPECT_NE(error_of([&] { apply_override(j, "reward_command=python3 r.py"); }).find("expected a JSON list of strings"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(j, "reward_command=[1]"); }).find("a list of strings"), std::string::npos);

  // A config whose only weight is a rule's is valid; one with every weight 0 is not.
  TrainConfig v;
  v.model_path = "m";
  for (auto& [fn, w] : v.reward_weights) w = 0;
  EXPECT_NE(error_of([&] { validate_config(v); }).find("at least one reward weight"), std::string::npos);
  apply_override(v, R"(reward_rules=[{"name":"e","type":"keywords","words":["x"]}])");
  EXPECT_EQ(error_of([&] { validate_config(v); }), "");
}
