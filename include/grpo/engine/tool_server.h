// tool_server.h: who answers the model's tool calls during a rollout (issue 34), and what a
// rollout with tools leaves behind (each sequence's turns, its transcript as messages).
//
// The sampler (sampler.h) pauses a sequence whose turn ended after a call and hands the paused
// turns over together; ToolServer::answer parses each turn's calls (tool_calls.h), has them run,
// and returns each sequence's tool turn as the chat template renders it, tokenized: that is what
// the sampler forces through the KV cache. Built-in tools (the calculator) run in-process; tools
// given as function schemas go to `tool_command`, one program per run over JSON lines:
//
//   request (our stdout -> its stdin):  {"calls": [{"id": "5.0", "name": ..., "arguments": {...}}, ...], "step": N}
//   reply   (its stdout -> our stdin):  {"results": [{"id": "5.0", "content": "..."}, ...]}
//
// one result per call, in any order. The process and its failure policy (a hang or a crash:
// killed and restarted, tool_timeout / tool_restarts, then an Error) are line_program.h's; a reply
// of the wrong shape (not JSON, an id missing, unknown or twice, content not a string) is an Error
// at once. A call that cannot be read (invalid JSON, no name, arguments not an object) or names an
// unknown tool never reaches the program: it gets an error result, as TRL gives it, and counts in
// tool_errors; so does a calculator "error: ..." result.
// A turn's rendered results longer than max_tool_tokens are cut (the longest result first, at a
// character boundary, marked "...[cut]"), so the sampler's width always has room.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/base/line_program.h"
#include "grpo/chat/tool_calls.h"
#include "grpo/config/config.h"
#include "grpo/engine/sampler.h"
#include "grpo/rewards/math_answer.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// tool_command

struct ProgramCall {
  std::string id;  // "<sequence>.<call in its turn>"
  std::string name;
  ordered_json arguments;
};

class ToolProgram {
 public:
  ToolProgram(std::vector<std::string> argv, double timeout_s, int max_restarts);
  // Each call's result content, in the calls' order.
  std::vector<std::string> call(const std::vector<ProgramCall>& calls, int64_t step);
  int restarts() const { return program_.restarts(); }

 private:
  LineProgram program_;
};

// Reads one reply line for `calls` (the rules above); `who` names the program in errors.
std::vector<std::string> parse_tool_reply(const std::string& line, const std::vector<ProgramCall>& calls, const std::string& who);

// ---------------------------------------------------------------------------------------------
// The server

// One tool turn of a sequence: the calls its turn wrote and the results they got.
struct ToolTurn {
  std::vector<ToolCall> calls;
  std::vector<std::string> results;
};

// Throws Error unless `chat` renders tools (chatml, qwen3) and `tok` has </tool_call> (the id the
// sampler watches); the trainer checks this before its first step.
void check_tool_support(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ToolSpec>& tools);

// A result that reports a failure: our {"error": ...} or the calculator's "error: ...".
bool is_tool_error(const std::string& result);

class ToolServer {
 public:
  // tools, tool_command, tool_timeout, tool_restarts, max_tool_calls, max_tool_tokens of cfg.
  explicit ToolServer(const TrainConfig& cfg);
  const std::vector<ToolSpec>& tools() const { return tools_; }

  // Prepares a rollout of n_seqs sequences at `step`: sets sp.tools (the call-end id of `tok`,
  // the limits, the hook) and forgets the last rollout's turns. tok must outlive the rollout.
  // Throws Error when the template cannot render tools (llama3) or tok lacks </tool_call>.
  void attach(SamplingParams& sp, const Tokenizer& tok, const ChatTemplate& chat, int64_t n_seqs, int64_t step);
  // The hook: each paused sequence's tool turn, rendered and tokenized (SamplingParams::Tools::run).
  std::vector<std::vector<int32_t>> answer(const std::vector<int64_t>& seqs, const std::vector<std::vector<int32_t>>& turns);

  // Per sequence, the last rollout's tool turns in order.
  const std::vector<std::vector<ToolTurn>>& turns() const { return turns_; }

 private:
  std::vector<ToolSpec> tools_;
  std::unique_ptr<ToolProgram> program_;
  int max_calls_, max_tokens_;
  const Tokenizer* tok_ = nullptr;
  ChatTemplate chat_;  // a copy (it shares the parsed template): attach may be given a temporary
  int64_t step_ = 0;
  std::vector<std::vector<ToolTurn>> turns_;
};

// ---------------------------------------------------------------------------------------------
// A completion with tool turns, read back

// Its calls, those answered with an error, and whether a result was the gold answer (a number
// equal to a numeric gold, else math-verify equal to its text): the call paid.
struct ToolUse {
  int64_t calls = 0, errors = 0;
  bool useful = false;
};
ToolUse tool_use(const std::vector<ToolTurn>& turns, const Gold& gold);

struct Transcript {
  std::string text;        // every id, special ones included (samples.jsonl, the report)
  std::string final_text;  // the last assistant turn, specials skipped: what the answer rewards read
  ordered_json messages;   // [{"role": "assistant", "content", "tool_calls"}, {"role": "tool", "content"}, ...]
};
// ids: the completion's attended ids in order; own: 1 where the model chose the id; turns: the
// sequence's tool turns (ToolServer::turns).
Transcript read_transcript(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::vector<int32_t>& own,
                           const std::vector<ToolTurn>& turns);
// Each completion of a rollout, one host transfer: the text its answer is read from (final_text:
// the decoded ids; with tools, the final turn) and, with tools (null: none), the whole transcript.
std::vector<Transcript> read_answers(const Rollout& r, const Tokenizer& tok, const ToolServer* tools);

}  // namespace grpo
