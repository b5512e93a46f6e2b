// libFuzzer target for the safetensors header parser: any byte string either parses into tensors
// whose byte ranges lie inside the data area and do not overlap, or throws grpo::Error. Never a crash.
// Build and run: scripts/fuzz.sh safetensors [seconds]
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    size_t start = 0;
    auto ts = grpo::SafetensorsFile::parse_header(data, size, "fuzz", nullptr, &start);
    std::vector<std::pair<size_t, size_t>> ranges;
    for (const auto& t : ts) {
      if (t.end < t.begin || start + t.end > size) std::abort();
      if (t.end - t.begin != static_cast<size_t>(t.numel()) * grpo::dtype_size(t.dtype)) std::abort();
      ranges.emplace_back(t.begin, t.end);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second) std::abort();
  } catch (const grpo::Error&) {
  }
  return 0;
}
