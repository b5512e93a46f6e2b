// data_files.h: the JSONL files a user gives the trainer, parsed from their text (the fuzz targets
// call these directly; GSM8KDataset and the offline trainer read the file and call them).
//   - GSM8K examples: `question` + `answer` (gold = the number after the last "####", thousands
//     separators removed) or `prompt` + `gold` (a number, or a string holding one number);
//   - offline scored groups: {"prompt": str, "responses": [str], "rewards": [number]}, the same
//     number of responses (>= 2) on every line.
// Every bad line is an Error naming path:line, the field, expected vs found; nothing else is thrown.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace grpo {

struct Example {
  std::string question;
  std::string answer;  // full reference answer text (may be just the gold number)
  double gold = 0;     // numeric gold answer
  size_t line = 0;     // 1-based line in the source file
};
// limit 0 = every line; throws on an empty file.
std::vector<Example> parse_gsm8k_examples(const std::string& text, const std::string& path, size_t limit = 0);

struct OfflineGroup {
  std::string prompt;
  std::vector<std::string> responses;
  std::vector<float> rewards;
  size_t line = 0;
};
std::vector<OfflineGroup> parse_offline_groups(const std::string& text, const std::string& path);
std::vector<OfflineGroup> load_offline_groups(const std::string& path);

}  // namespace grpo
