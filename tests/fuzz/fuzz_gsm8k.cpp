// libFuzzer target for the GSM8K JSONL parser (data_files.h): any text either parses into examples
// with a non-empty question, a gold with text unless it is missing (TRL lines may have none; a finite
// number, when it has one) and increasing 1-based line numbers, or throws
// grpo::Error. Any other exception or a crash is a bug. Run: scripts/fuzz.sh gsm8k [seconds]
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grpo/base/common.h"
#include "grpo/engine/data_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto examples = grpo::parse_gsm8k_examples(text, "fuzz.jsonl");
    size_t last_line = 0;
    for (const auto& ex : examples) {
      if (grpo::trim(ex.question).empty() || (ex.gold.number && !std::isfinite(*ex.gold.number)) ||
          (!ex.gold.missing && grpo::trim(ex.gold.text).empty()) || ex.line <= last_line)
        std::abort();
      last_line = ex.line;
    }
  } catch (const grpo::Error&) {
  }
  return 0;
}
