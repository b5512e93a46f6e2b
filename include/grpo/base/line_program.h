// line_program.h: a helper program (any language) that the trainer starts once per run and talks
// to over pipes, one JSON line each way per request. reward_command (reward_program.h) and
// tool_command (tool_program.h) are two: each builds its requests and reads its replies; this
// class owns the process and the failure policy they share, chosen so that the loop never blocks
// forever and never goes on with a reply it could not read:
//   - exits, closes its stdout, or does not answer within `timeout_s`: killed and restarted, the
//     request sent again; after `max_restarts` restarts in the run, an Error;
//   - a reply line its owner cannot read: the owner throws at once (a deterministic bug;
//     restarting would repeat it), naming the program and quoting the line (quote_reply).
// Its stderr is ours (its logs reach the user). Started with posix_spawn (the trainer has LibTorch
// threads running; fork() is not safe there), in its own process group.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace grpo {

class LineProgram {
 public:
  // `key` names the program in messages (reward_command); `timeout_key` and `restarts_key` the
  // settings a user would change (reward_timeout, reward_restarts).
  LineProgram(std::string key, std::string timeout_key, std::string restarts_key, std::vector<std::string> argv, double timeout_s,
              int max_restarts);
  ~LineProgram();
  LineProgram(const LineProgram&) = delete;
  LineProgram& operator=(const LineProgram&) = delete;

  // Sends one request line (without its newline) and returns the reply line, restarting the
  // program as above; `step` is named in the restart warning.
  std::string ask(const std::string& request, int64_t step);

  int restarts() const { return restarts_; }  // restarts so far in this run
  std::string describe() const;               // "key [argv as JSON]", for messages

 private:
  void start();
  void stop();  // close its stdin, give it a moment, then SIGKILL; reaps it
  // Writes `request` and reads one reply line within the deadline; false (with why) if the
  // program died or timed out, so the caller may restart it.
  bool exchange(const std::string& request, std::string& reply, std::string& why);

  std::string key_, timeout_key_, restarts_key_;
  std::vector<std::string> argv_;
  double timeout_s_;
  int max_restarts_, restarts_ = 0;
  pid_t pid_ = -1;   // -1 once reaped (its exit status read)
  pid_t pgid_ = -1;  // its process group (= its first pid), killed by stop(); -1 when stopped
  int to_child_ = -1, from_child_ = -1;
  std::string pending_;  // bytes read after the last reply line
};

// A reply line as error messages quote it: JSON-escaped, cut after 200 bytes.
std::string quote_reply(const std::string& line);

}  // namespace grpo
