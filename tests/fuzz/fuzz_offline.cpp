// libFuzzer target for the offline scored-groups parser (data_files.h): any text either parses into
// groups of equal size >= 2 with as many rewards as responses, or throws grpo::Error. Any other
// exception or a crash is a bug. Run: scripts/fuzz.sh offline [seconds]
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grpo/base/common.h"
#include "grpo/engine/data_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto groups = grpo::parse_offline_groups(text, "fuzz.jsonl");
    for (const auto& g : groups)
      if (g.responses.size() < 2 || g.responses.size() != groups.front().responses.size() || g.rewards.size() != g.responses.size())
        std::abort();
  } catch (const grpo::Error&) {
  }
  return 0;
}
