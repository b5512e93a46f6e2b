// The external reward program (reward_program.h): small programs written by the test answer,
// exit, hang, print garbage or the wrong count; each ends in the right rewards, a bounded restart
// or one clear error, never a hang.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "grpo/rewards/reward.h"
#include "grpo/rewards/reward_program.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;

namespace {

// An executable script in a fresh directory; returns its path.
std::string script(const std::string& body, const std::string& shebang = "#!/bin/sh") {
  std::string path = grpo::test::write_temp("reward.sh", shebang + "\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

RewardRequest request(std::vector<std::string> completions, std::vector<double> golds, int64_t step = 7) {
  RewardRequest r;
  r.prompts.assign(completions.size(), "Q?");
  r.completions = std::move(completions);
  r.golds.assign(golds.begin(), golds.end());
  r.step = step;
  return r;
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST(RewardProgram, ReadsTheRequestAndAnswers) {
  // The program sees the request as sent: lengths of the completions, the step, the golds.
  const std::string py = script(R"(import json, sys
for line in sys.stdin:
    q = json.loads(line)
    n = len(q["completions"])
    print(json.dumps({"rewards": {"chars": [len(c) for c in q["completions"]], "step": [q["step"]] * n,
                                  "gold": q["golds"], "prompt": [len(p) for p in q["prompts"]]}}), flush=True))",
                                "#!/usr/bin/env python3");
  RewardProgram p({py}, 10, 0);
  auto out = p.score(request({"abc", "因为\n\"x\""}, {4, -2.5}));
  EXPECT_EQ(out.at("chars"), (std::vector<float>{3, 6}));  // code points: 因 为 \n " x "
  EXPECT_EQ(out.at("step"), (std::vector<float>{7, 7}));
  EXPECT_EQ(out.at("gold"), (std::vector<float>{4, -2.5}));
  EXPECT_EQ(out.at("prompt"), (std::vector<float>{2, 2}));
  // Started once: a second batch goes to the same process.
  auto again = p.score(request({"x"}, {1}, 8));
  EXPECT_EQ(again.at("step"), (std::vector<float>{8}));
  EXPECT_EQ(p.restarts(), 0);
}

// With tools the program also gets each completion's transcript as messages (absent otherwise).
TEST(RewardProgram, ToolTranscriptsArriveAsMessages) {
  const std::string py = script(R"(import json, sys
for line in sys.stdin:
    q = json.loads(line)
    ms = q.get("messages", [[]] * len(q["completions"]))
    print(json.dumps({"rewards": {"turns": [len(m) for m in ms],
                                  "tool": [sum(x["role"] == "tool" for x in m) for m in ms],
                                  "called": [float(any("tool_calls" in x for x in m)) for m in ms]}}), flush=True))",
                                "#!/usr/bin/env python3");
  RewardProgram p({py}, 10, 0);
  RewardRequest req = request({"#### 408", "#### 7"}, {408, 7});
  req.messages = {
      R"([{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "12*34"}}}]}, {"role": "tool", "content": "408"}, {"role": "assistant", "content": "#### 408"}])",
      R"([{"role": "assistant", "content": "#### 7"}])"};
  auto out = p.score(req);
  EXPECT_EQ(out.at("turns"), (std::vector<float>{3, 1}));
  EXPECT_EQ(out.at("tool"), (std::vector<float>{1, 0}));
  EXPECT_EQ(out.at("called"), (std::vector<float>{1, 0}));
  EXPECT_EQ(p.score(request({"x"}, {1})).at("turns"), (std::vector<float>{0}));  // no tools: no "messages"
}

TEST(RewardProgram, PlainListIsTheExternalComponent) {
  RewardProgram p({script(R"(while IFS= read -r line; do echo '{"rewards": [1, 0.5]}'; done)")}, 10, 0);
  auto out = p.score(request({"a", "b"}, {1, 2}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out.at("external"), (std::vector<float>{1.0f, 0.5f}));
}

TEST(RewardProgram, RewardSetAddsWeightedComponents) {
  auto prog = std::make_shared<RewardProgram>(
      std::vector<std::string>{script(R"(while IFS= read -r line; do echo '{"rewards": {"judge": [1, 0.25]}}'; done)")}, 10, 0);
  RewardSet set({{"correctness", 1.0}}, RewardContext{}, {}, prog, 2.0);
  auto out = set.score_batch({{"Q", "#### 3", 3, -1, ""}, {"Q", "#### 4", 3, -1, ""}}, 1);
  EXPECT_FLOAT_EQ(out[0].by_fn.at("judge"), 1.0f);
  EXPECT_FLOAT_EQ(out[0].total, 1.0f + 2.0f * 1.0f);
  EXPECT_FLOAT_EQ(out[1].total, 0.0f + 2.0f * 0.25f);
  // A component named like a built-in reward is refused.
  auto clash = std::make_shared<RewardProgram>(
      std::vector<std::string>{script(R"(while IFS= read -r line; do echo '{"rewards": {"format": [1]}}'; done)")}, 10, 0);
  RewardSet bad({{"correctness", 1.0}}, RewardContext{}, {}, clash);
  EXPECT_NE(error_of([&] {
              bad.score_batch({{"Q", "x", 1, -1, ""}}, 1);
            }).find("component 'format' has the name of a built-in"),
            std::string::npos);
}

TEST(RewardProgram, NullScoresThatCompletionZero) {
  // The program could not score completion 1 (its code threw on the user's data): that completion
  // scores 0 in every component with the reason kept; completion 0 and the run go on.
  auto prog = std::make_shared<RewardProgram>(
      std::vector<std::string>{script(R"(while IFS= read -r line; do echo '{"rewards": {"judge": [0.5, null]}}'; done)")}, 10, 0);
  RewardSet set({{"correctness", 1.0}}, RewardContext{}, {}, prog, 2.0);
  auto out = set.score_batch({{"Q", "#### 3", 3, -1, ""}, {"Q", "#### 3", 3, -1, ""}}, 1);
  EXPECT_TRUE(out[0].error.empty());
  EXPECT_FLOAT_EQ(out[0].total, 1.0f + 2.0f * 0.5f);
  EXPECT_NE(out[1].error.find("component 'judge' is null for this completion"), std::string::npos) << out[1].error;
  EXPECT_EQ(out[1].total, 0.0f);
  EXPECT_FALSE(out[1].correct);
  EXPECT_EQ(out[1].by_fn.at("correctness"), 0.0f);
  EXPECT_EQ(out[1].by_fn.at("judge"), 0.0f);
  EXPECT_EQ(prog->restarts(), 0);
}

TEST(RewardProgram, CrashIsRestartedThenGivenUp) {
  // Exits at once every time: two restarts, then one error that says how it ended.
  RewardProgram dies({script("exit 3")}, 10, 2);
  std::string err = error_of([&] { dies.score(request({"a"}, {1})); });
  EXPECT_NE(err.find("exited with status 3"), std::string::npos) << err;
  EXPECT_NE(err.find("gave up after 2 restart(s) (reward_restarts = 2)"), std::string::npos) << err;
  EXPECT_EQ(dies.restarts(), 2);

  // Crashes on its first start only: the restart answers the same batch.
  const std::string dir = grpo::test::temp_dir();
  RewardProgram flaky({script("if [ ! -f " + dir + "/started ]; then touch " + dir +
                              "/started; exit 1; fi\nwhile IFS= read -r line; do echo '{\"rewards\": [0.75]}'; done")},
                      10, 1);
  EXPECT_EQ(flaky.score(request({"a"}, {1})).at("external"), (std::vector<float>{0.75f}));
  EXPECT_EQ(flaky.restarts(), 1);
}

TEST(RewardProgram, HangTimesOutWithoutBlocking) {
  // A shell whose child hangs: the kill must reach the child too (its process group), or the
  // orphan would hold our stderr open for 600 s (ctest waits for that pipe: a hung test).
  const std::string dir = grpo::test::temp_dir();
  RewardProgram hangs({script("sleep 600 &\necho $! >> " + dir + "/children\nwait")}, 0.3, 1);
  std::string err;
  const double s = seconds_of([&] { err = error_of([&] { hangs.score(request({"a"}, {1})); }); });
  EXPECT_NE(err.find("no reply within reward_timeout = 0.3 s; gave up after 1 restart(s)"), std::string::npos) << err;
  EXPECT_LT(s, 10.0);  // 2 x (0.3 s + 0.5 s to kill), not 600 s
  std::ifstream children(dir + "/children");
  int n = 0;
  for (std::string pid; children >> pid; ++n) {
    std::string state = "gone";
    for (int i = 0; i < 100; ++i) {  // killed: gone, or a zombie until its new parent reaps it
      std::ifstream stat("/proc/" + pid + "/stat");
      std::string line;
      if (!std::getline(stat, line)) break;
      state = line.substr(line.rfind(')') + 2, 1);
      if (state == "Z") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(state == "gone" || state == "Z") << "the program's child " << pid << " outlived it (state " << state << ")";
  }
  EXPECT_EQ(n, 2);  // the first start and the restart
}

TEST(RewardProgram, BadRepliesAreOneClearError) {
  auto err_of_reply = [](const std::string& reply, size_t n) {
    RewardProgram p({script("while IFS= read -r line; do echo '" + reply + "'; done")}, 10, 3);
    std::vector<std::string> c(n, "x");
    std::string e = error_of([&] { p.score(request(c, std::vector<double>(n, 1))); });
    EXPECT_EQ(p.restarts(), 0) << "a bad reply is not restarted: it would repeat";
    return e;
  };
  EXPECT_NE(err_of_reply("hello", 1).find("bad reply (not JSON; NaN and Infinity are not JSON either): \"hello\""), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"rewards": [NaN]})", 1).find("not JSON"), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"rewards": [1]})", 2).find("\"rewards\": expected 2 rewards, found 1"), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"rewards": [1, "a"]})", 2).find("\"rewards\"[1]: expected a number or null, found \"a\""), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"reward": [1]})", 1).find("expected an object with \"rewards\""), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"rewards": {"Bad Name": [1]}})", 1).find("expected [a-z0-9_]+"), std::string::npos);
  EXPECT_NE(err_of_reply(R"({"rewards": [1e39]})", 1).find("not a finite float"), std::string::npos);
  // The message names the program.
  EXPECT_NE(err_of_reply("x", 1).find("reward_command [\"/"), std::string::npos);
}

TEST(RewardProgram, MissingProgramSaysSo) {
  std::string err = error_of([] {
    RewardProgram p({"/nonexistent/reward_prog"}, 1, 0);
    p.score(request({"a"}, {1}));
  });
  EXPECT_NE(err.find("cannot start /nonexistent/reward_prog: No such file or directory"), std::string::npos) << err;
}
