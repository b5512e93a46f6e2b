// libFuzzer target for the config: a YAML or JSON file (first byte picks) followed, after a line
// "--set", by one key=value override per line. Either grpo::Error, or a config that validates
// and whose YAML dump (config_to_yaml) loads back to the same dump. Run: scripts/fuzz.sh config
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "grpo/base/common.h"
#include "grpo/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = (data[0] & 1) ? "fuzz.json" : "fuzz.yaml";
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1), overrides;
  if (size_t at = text.find("\n--set\n"); at != std::string::npos) {
    overrides = text.substr(at + 7);
    text.resize(at);
  }
  try {
    grpo::TrainConfig cfg;
    grpo::load_config_text(cfg, path, text);
    std::istringstream lines(overrides);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) grpo::apply_override(cfg, line);
    grpo::validate_config(cfg);
    const std::string yaml = grpo::config_to_yaml(cfg);
    grpo::TrainConfig back;
    grpo::load_config_text(back, "dump.yaml", yaml);
    if (grpo::config_to_yaml(back) != yaml) std::abort();
  } catch (const grpo::Error&) {
  }
  return 0;
}
