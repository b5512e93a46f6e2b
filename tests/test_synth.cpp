// Tests for synth.h (the synthetic task) and the SFT step.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "grpo/model/model_io.h"
#include "grpo/rewards/reward.h"
#include "grpo/run/synth.h"
#include "grpo/step/grpo.h"
#include "grpo/step/grpo_step.h"
#include "grpo/step/offline.h"
#include "test_models.h"
#include "test_util.h"

using namespace grpo;
using namespace grpo::test;

TEST(Synth, ProblemsAreDeterministicCorrectAndDisjoint) {
  SynthConfig cfg;
  cfg.seed = 7;
  std::vector<SynthProblem> train, test;
  synth_split(cfg, 2000, 300, &train, &test);
  ASSERT_EQ(train.size(), 2000u);
  ASSERT_EQ(test.size(), 300u);
  std::set<std::string> test_q;
  for (const auto& p : test) test_q.insert(p.question);
  const std::regex step(R"((\d+)([+-])(\d+)(?:-(\d+))?=(\d+)\n#### (\d+))");
  for (const auto* set : {&train, &test})
    for (const auto& p : *set) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(p.answer, m, step)) << p.answer;
      int a = std::stoi(m[1]), b = std::stoi(m[3]), r = m[2] == "+" ? a + b : a - b;
      if (m[4].matched) r -= std::stoi(m[4]);
      EXPECT_EQ(r, p.gold) << p.question;  // the worked step is the true computation
      EXPECT_EQ(std::stoi(m[5]), p.gold);
      EXPECT_EQ(parse_gsm8k_gold(p.answer), p.gold);  // and the GSM8K gold parses to it
      EXPECT_GE(p.gold, 0);
      EXPECT_LE(a, 9);
    }
  for (const auto& p : train) EXPECT_EQ(test_q.count(p.question), 0u) << p.question;
  EXPECT_EQ(synth_problem(cfg, 123).question, synth_problem(cfg, 123).question);
  SynthConfig other = cfg;
  other.seed = 8;
  EXPECT_NE(synth_problem(cfg, 5).question + synth_problem(cfg, 6).question,
            synth_problem(other, 5).question + synth_problem(other, 6).question);
}

TEST(Synth, LabelNoiseIsNearMissesAtTheRequestedRate) {
  SynthConfig clean, noisy;
  noisy.label_noise = 0.5;
  int changed = 0;
  for (uint64_t i = 0; i < 4000; ++i) {
    SynthProblem a = synth_problem(clean, i), b = synth_problem(noisy, i);
    EXPECT_EQ(a.question, b.question);
    EXPECT_EQ(a.gold, b.gold);
    if (a.answer != b.answer) {
      ++changed;
      int shown = static_cast<int>(*parse_gsm8k_gold(b.answer));
      EXPECT_GE(std::abs(shown - a.gold), 1);
      EXPECT_LE(std::abs(shown - a.gold), 3);
    }
  }
  EXPECT_NEAR(changed / 4000.0, 0.5, 0.03);  // binomial sd 0.008
}

TEST(Synth, SftStepLowersTheLossOnItsBatch) {
  std::string dir = temp_dir() + "/m";
  write_test_model(dir, test_presets()[0]);
  auto tok = load_tokenizer(dir);
  SpecialIds special = load_special_ids(dir, *tok);
  TrainConfig c;
  c.model_path = dir;
  c.learning_rate = 3e-3;
  c.system_prompt = "S";
  c.max_new_tokens = 32;
  c.grad_accum = 2;
  GrpoState st(c, load_causal_lm(dir, torch::kFloat32, torch::kCPU), 20);
  std::vector<Example> batch = {{"What is 2+2?", "2+2=4\n#### 4", 4, 1, {}, ""}, {"What is 3+1?", "3+1=4\n#### 4", 4, 2, {}, ""}};
  double first = sft_step(st, *tok, special, batch).loss, last = first;
  for (int i = 0; i < 10; ++i) last = sft_step(st, *tok, special, batch).loss;
  EXPECT_LT(last, 0.5 * first);
  EXPECT_EQ(st.step, 11);
}
