// reward_program.h: an external reward program (any language) that the trainer starts once per run
// and talks to over pipes, one JSON line each way per batch (OpenRLHF's remote reward model idea,
// without HTTP or Python in our process):
//
//   request (our stdout -> its stdin):  {"prompts": [...], "completions": [...], "golds": [...], "step": N}
//   reply   (its stdout -> our stdin):  {"rewards": [r0, r1, ...]}                 one component "external"
//                                   or  {"rewards": {"name": [r0, ...], ...}}       named components
// A null in place of a reward says the program could not score that completion (its code threw on
// the user's data): the completion scores 0 and the trainer counts and reports it (NaN here).
//
// Its stderr is ours (its logs reach the user). Failure policy, chosen so the loop never blocks
// forever and never trains on a reward it could not read:
//   - exits, closes its stdout, or does not answer within `timeout_s`: killed and restarted, the
//     batch sent again; after `max_restarts` restarts in the run, an Error;
//   - answers with a line that is not JSON, lacks "rewards", has the wrong count, or a value that
//     is neither a finite number nor null: an Error at once (a deterministic bug; restarting would repeat it),
//     naming the program and quoting the line.
// Started with posix_spawn (the trainer has LibTorch threads running; fork() is not safe there).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "grpo/math_answer.h"

namespace grpo {

struct RewardRequest {
  std::vector<std::string> prompts;      // N, the question of each completion's prompt
  std::vector<std::string> completions;  // N
  std::vector<Gold> golds;               // N, sent as given: a number, or a string gold's text
  std::vector<std::string> columns;      // N JSON objects' text, "" = {}; the request has "columns" when any is set
  int64_t step = 0;
};

class RewardProgram {
 public:
  RewardProgram(std::vector<std::string> argv, double timeout_s, int max_restarts);
  ~RewardProgram();
  RewardProgram(const RewardProgram&) = delete;
  RewardProgram& operator=(const RewardProgram&) = delete;

  // Component name -> N rewards. Throws Error as described above.
  std::map<std::string, std::vector<float>> score(const RewardRequest& req);

  int restarts() const { return restarts_; }  // restarts so far in this run
  std::string describe() const;               // the argv as a JSON array, for messages

 private:
  void start();
  void stop();  // close its stdin, give it a moment, then SIGKILL; reaps it
  // Writes `request` and reads one reply line within the deadline; false (with why) if the
  // program died or timed out, so the caller may restart it.
  bool exchange(const std::string& request, std::string& reply, std::string& why);

  std::vector<std::string> argv_;
  double timeout_s_;
  int max_restarts_, restarts_ = 0;
  pid_t pid_ = -1;   // -1 once reaped (its exit status read)
  pid_t pgid_ = -1;  // its process group (= its first pid), killed by stop(); -1 when stopped
  int to_child_ = -1, from_child_ = -1;
  std::string pending_;  // bytes read after the last reply line
};

// Parses one reply line for N completions (the rules above); `who` names the program in errors.
std::map<std::string, std::vector<float>> parse_reward_reply(const std::string& line, size_t n, const std::string& who);

}  // namespace grpo
