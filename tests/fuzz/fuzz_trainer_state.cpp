// libFuzzer target for trainer_state.json (trainer_state.h): any text either parses into counters
// >= 0 and a finite wall time, and writes back to text that parses to the same state, or throws
// grpo::Error (never a JSON library exception). Run: scripts/fuzz.sh trainer_state [seconds]
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grpo/base/common.h"
#include "grpo/run/trainer_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    grpo::TrainerState s = grpo::parse_trainer_state(text, "trainer_state.json");
    if (s.step < 0 || s.total_steps < 0 || s.skipped_updates < 0 || s.data_position < -1 || !std::isfinite(s.wall_s) || s.wall_s < 0)
      std::abort();
    grpo::TrainerState t = grpo::parse_trainer_state(grpo::trainer_state_text(s), "written");
    if (t.step != s.step || t.data_position != s.data_position || t.wall_s != s.wall_s || t.checksums != s.checksums ||
        t.config != s.config || t.eval_before != s.eval_before || t.seed != s.seed || t.model_path != s.model_path)
      std::abort();
  } catch (const grpo::Error&) {
  }
  return 0;
}
