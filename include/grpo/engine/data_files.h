// data_files.h: the JSONL files a user gives the trainer, parsed from their text (the fuzz targets
// call these directly; PromptDataset and the offline trainer read the file and call them).
//   - examples, in TRL's dataset formats too: GSM8K `question` + `answer` (gold = the number after the
//     last "####", thousands separators removed); TRL standard `prompt` (text) or conversational
//     `prompt` (a list of {role, content} messages: system, user, assistant, rendered by the model's chat
//     template), with the gold from `gold` (a number or a string), else `answer` (after "####", or
//     its last \boxed{...}, a string gold), else `solution` (its last \boxed{...}). Every other
//     field of the line (any JSON value) stays with the example as `columns`, for the reward program;
//   - offline scored groups: {"prompt": str, "responses": [str], "rewards": [number]}, the same
//     number of responses (>= 2) on every line.
// Every bad line is an Error naming path:line, the field, expected vs found; nothing else is thrown.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "grpo/chat/chat_template.h"
#include "grpo/config/config.h"
#include "grpo/rewards/math_answer.h"

namespace grpo {

struct Example {
  std::string question;               // the prompt text; for a conversational prompt, its last user turn
  std::string answer;                 // full reference answer text (may be just the gold number)
  Gold gold;                          // the reference answer: a number, or a string (answer_mode math)
  size_t line = 0;                    // 1-based line in the source file
  std::vector<ChatMessage> messages;  // a conversational prompt, rendered as given (empty: question alone)
  std::string columns;                // the line's other fields as a JSON object ("" = none)
};
// limit 0 = every line; throws on an empty file.
std::vector<Example> parse_gsm8k_examples(const std::string& text, const std::string& path, size_t limit = 0);
// A line's gold, by TRL's rules: "gold" (a number, its text as written: 42, not 42.0; or any text, a
// string gold), else "answer" (after "####", or its last \boxed{}), else "solution" (its last
// \boxed{}). `used` gets the field it came from. grpo_reward reads its lines' golds with it too.
// optional: a line with none of them gets a missing Gold (else it is an Error naming the fields found).
Gold trl_gold(const nlohmann::json& obj, const std::string& where, const char** used = nullptr, bool optional = false);
// The golds a run needs, checked at load: with `needed` (a gold-reading reward has weight, or the file
// is evaluated) an Error names the first line without one; answer_mode strict and flexible compare
// numbers: an Error names the first line whose gold is not one.
void require_golds(const std::vector<Example>& examples, const std::string& path, AnswerMode mode, bool needed);

struct OfflineGroup {
  std::string prompt;
  std::vector<std::string> responses;
  std::vector<float> rewards;
  size_t line = 0;
};
std::vector<OfflineGroup> parse_offline_groups(const std::string& text, const std::string& path);
std::vector<OfflineGroup> load_offline_groups(const std::string& path);

}  // namespace grpo
