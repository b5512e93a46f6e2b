// reward_program.h: an external reward program (any language) that the trainer starts once per run
// and talks to over pipes, one JSON line each way per batch (OpenRLHF's remote reward model idea,
// without HTTP or Python in our process):
//
//   request (our stdout -> its stdin):  {"prompts": [...], "completions": [...], "golds": [...], "step": N}
//                                       (+ "columns": the examples' other fields, "messages": with tools,
//                                       each completion's transcript as a messages list; "completions"
//                                       then holds the final assistant turns)
//   reply   (its stdout -> our stdin):  {"rewards": [r0, r1, ...]}                 one component "external"
//                                   or  {"rewards": {"name": [r0, ...], ...}}       named components
// A null in place of a reward says the program could not score that completion (its code threw on
// the user's data): the completion scores 0 and the trainer counts and reports it (NaN here).
//
// The process and its failure policy (restarts on a crash or hang, an Error on a reply it cannot
// read) are line_program.h's.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "grpo/base/line_program.h"
#include "grpo/rewards/math_answer.h"

namespace grpo {

struct RewardRequest {
  std::vector<std::string> prompts;      // N, the question of each completion's prompt
  std::vector<std::string> completions;  // N
  std::vector<Gold> golds;               // N, sent as given: a number, or a string gold's text
  std::vector<std::string> columns;      // N JSON objects' text, "" = {}; the request has "columns" when any is set
  std::vector<std::string> messages;     // N JSON lists' text (tools: the transcripts); "messages" when any is set
  int64_t step = 0;
};

class RewardProgram {
 public:
  RewardProgram(std::vector<std::string> argv, double timeout_s, int max_restarts);

  // Component name -> N rewards. Throws Error as described above.
  std::map<std::string, std::vector<float>> score(const RewardRequest& req);

  int restarts() const { return program_.restarts(); }  // restarts so far in this run
  std::string describe() const { return program_.describe(); }

 private:
  LineProgram program_;
};

// Parses one reply line for N completions (the rules above); `who` names the program in errors
// ("reward_command [argv]").
std::map<std::string, std::vector<float>> parse_reward_reply(const std::string& line, size_t n, const std::string& who);

}  // namespace grpo
