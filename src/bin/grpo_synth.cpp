// grpo_synth: write the synthetic math task (synth.h) as GSM8K-format JSONL.
//   grpo_synth --out DIR [--seed 1] [--n-train 4000] [--n-test 500] [--max-number 9] [--max-ops 1]
//              [--sft-noise 0.5]
// Writes DIR/train.jsonl and DIR/test.jsonl (clean golds), and DIR/sft.jsonl: the train problems
// whose answers are near misses with probability --sft-noise (for a partly-right SFT warm start).
#include <sys/stat.h>

#include <cstdio>

#include "grpo/base/common.h"
#include "grpo/bin/cli.h"
#include "grpo/run/synth.h"

using namespace grpo;

int main(int argc, char** argv) {
  CLI::App app{"grpo_synth: a seeded synthetic grade-school math task in GSM8K JSONL format"};
  add_version_flag(app, "grpo_synth");
  std::string out;
  SynthConfig cfg;
  size_t n_train = 4000, n_test = 500;
  double sft_noise = 0.5;
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--seed", cfg.seed, "generator seed")->capture_default_str();
  app.add_option("--n-train", n_train, "training problems")->capture_default_str()->check(integer_in(1, 100000000));
  app.add_option("--n-test", n_test, "held-out problems")->capture_default_str()->check(integer_in(0, 100000000));
  app.add_option("--max-number", cfg.max_number, "operands in [0, N]")
      ->capture_default_str()
      ->check(integer_in(1, 1000000000));  // a+b-c stays an int
  app.add_option("--max-ops", cfg.max_ops, "1: a+b, a-b; 2: also a+b-c")->capture_default_str()->check(integer_in(1, 2));
  double tool_good = 0.3, tool_bad = 0.2;
  app.add_flag("--multiply", cfg.multiply, "the tool demo's task: products of two 2-digit numbers; sft.jsonl holds calculator transcripts");
  app.add_option("--tool-good", tool_good, "--multiply: share of sft transcripts that call the calculator right")
      ->capture_default_str()
      ->check(number_in(0.0, 1.0));
  app.add_option("--tool-bad", tool_bad, "--multiply: share that call it with a wrong factor")
      ->capture_default_str()
      ->check(number_in(0.0, 1.0));
  app.add_option("--sft-noise", sft_noise, "probability of a near-miss answer in sft.jsonl")
      ->capture_default_str()
      ->check(number_in(0.0, 1.0));
  GRPO_CLI_PARSE(app, argc, argv);
  try {
    if (tool_good + tool_bad > 1) throw Error("--tool-good + --tool-bad must be <= 1");
    if (!dir_exists(out) && ::mkdir(out.c_str(), 0755) != 0) throw Error(out + ": cannot create directory");
    std::vector<SynthProblem> train, test;
    synth_split(cfg, n_train, n_test, &train, &test);
    if (train.size() < n_train || test.size() < n_test)
      throw Error("only " + std::to_string(train.size() + test.size()) + " distinct problems exist for these settings; ask for fewer");
    SynthConfig noisy = cfg;
    noisy.label_noise = sft_noise;
    std::vector<SynthProblem> sft;
    for (const auto& p : train) {
      sft.push_back(synth_problem(noisy, p.index));
      if (cfg.multiply) sft.back().answer = synth_tool_transcript(p, cfg.seed, tool_good, tool_bad);
    }
    write_file_atomic(out + "/train.jsonl", synth_jsonl(train));
    write_file_atomic(out + "/test.jsonl", synth_jsonl(test));
    write_file_atomic(out + "/sft.jsonl", synth_jsonl(sft));
    size_t wrong = 0, calls = 0;
    for (size_t i = 0; i < sft.size(); ++i) {
      wrong += sft[i].answer.substr(sft[i].answer.rfind("#### ")) != train[i].answer.substr(train[i].answer.rfind("#### "));
      calls += sft[i].answer.rfind("<tool_call>", 0) == 0;
    }
    std::printf("wrote %s/{train,test,sft}.jsonl: %zu train, %zu test; %zu of the sft answers (%.1f%%) are wrong", out.c_str(),
                train.size(), test.size(), wrong, 100.0 * wrong / std::max<size_t>(1, sft.size()));
    if (cfg.multiply) std::printf(", %zu (%.1f%%) call the calculator", calls, 100.0 * calls / std::max<size_t>(1, sft.size()));
    std::printf("\n");
  } catch (const std::exception& e) {
    return tool_error("grpo_synth", e);
  }
  return 0;
}
