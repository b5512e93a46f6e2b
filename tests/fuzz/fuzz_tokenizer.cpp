// libFuzzer target for HfTokenizer::encode / decode on the Qwen2.5 and TinyStories tokenizers.
// Property checked on every input: Qwen's decode(encode(x)) == NFC(x) (x made valid UTF-8 first),
// and every id is inside the vocabulary. Build and run: scripts/fuzz.sh tokenizer [seconds]
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;

namespace {
std::unique_ptr<HfTokenizer> qwen, tiny;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* root = std::getenv("GRPO_SOURCE_DIR");
  std::string dir = root ? root : ".";
  qwen = HfTokenizer::from_file(dir + "/tests/data/qwen2.5/tokenizer.json");
  tiny = HfTokenizer::from_file(dir + "/tests/data/tinystories-656k/tokenizer.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool match_special = data[0] & 1;
  std::string text = utf8_lossy(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  auto ids = qwen->encode(text, match_special);
  for (int32_t id : ids)
    if (id < 0 || static_cast<size_t>(id) >= qwen->vocab_size()) std::abort();
  if (qwen->decode(ids) != nfc(text)) std::abort();
  auto tids = tiny->encode(text, match_special);
  for (int32_t id : tids)
    if (id < 0 || static_cast<size_t>(id) >= tiny->vocab_size()) std::abort();
  (void)tiny->decode(tids);
  return 0;
}
