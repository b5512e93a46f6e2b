// tokenizer.h: the Tokenizer interface the rest of the project talks to, and its implementations:
// Hugging Face tokenizer.json (byte-level BPE as in GPT-2/Qwen2, and the Llama-style Metaspace +
// byte-fallback BPE) and SentencePiece .model files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`, no BOS/EOS added. match_special: special/added-token strings inside the
  // text become their ids (HF's encode(add_special_tokens=False)); false treats them as plain
  // text, for untrusted input such as dataset questions.
  virtual std::vector<int32_t> encode(std::string_view text, bool match_special = true) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // Id of a token given as its vocabulary string (e.g. "<|im_start|>"), if present.
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;
  // Number of ids the tokenizer can produce (max id + 1).
  virtual size_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;
};

}  // namespace grpo
