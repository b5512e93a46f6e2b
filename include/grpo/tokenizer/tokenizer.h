// tokenizer.h: the Tokenizer interface the rest of the project talks to, and its implementations.
//
// HfTokenizer reads a Hugging Face tokenizer.json with a BPE model and reproduces what the Rust
// `tokenizers` library does, stage by stage:
//   added tokens (leftmost-longest match, lstrip/rstrip) -> normalizer (NFC/NFKC/NFD/NFKD via
//   utf8proc, Prepend, Replace, Lowercase, Sequence) -> pre-tokenizer (Split with the file's regex
//   run by PCRE2 in UTF+UCP mode with JIT, ByteLevel, Metaspace, Sequence) -> BPE (merge ranks,
//   byte_fallback, unk/fuse_unk, a word cache) -> decoder (ByteLevel, Replace, ByteFallback, Fuse,
//   Strip, Metaspace, Sequence).
// Deliberate departure: added tokens are matched on the raw text even when flagged `normalized`
// (HF matches those on the normalized text); no shipped model has a normalizer that alters them.
//
// SentencePieceTokenizer wraps libsentencepiece for model dirs that ship tokenizer.model. Debian's
// libsentencepiece and LibTorch's libprotobuf cannot share one symbol namespace (the process
// crashes in static initialisation), so the library is reached through a small shim module that
// is dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/chat/chat_template.h"

namespace grpo {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`, no BOS/EOS added. match_special: special-token strings inside the text
  // become their ids (HF's encode(add_special_tokens=False)); false treats them as plain text,
  // for untrusted input such as dataset questions.
  virtual std::vector<int32_t> encode(std::string_view text, bool match_special = true) const = 0;
  // Ids of `text` where special tokens match only outside the byte ranges `plain` (sorted, disjoint),
  // the rest as encode(text): a rendered chat template's markup matches, the messages inside it do not.
  // This default encodes the pieces apart; HfTokenizer encodes the text between matches as one.
  virtual std::vector<int32_t> encode_guarded(std::string_view text, const std::vector<std::pair<size_t, size_t>>& plain) const;
  // Text of `ids`; invalid UTF-8 (a cut multi-byte sequence) becomes U+FFFD, like HF.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // Id of a token given as its vocabulary string (e.g. "<|im_start|>"), if present.
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;
  // Number of ids the tokenizer can produce (max id + 1).
  virtual size_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;

  // Encode many texts on `n_threads` threads (0 = hardware concurrency); same result as a loop.
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts, bool match_special = true, int n_threads = 0) const;
};

// ---------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json

class HfTokenizer : public Tokenizer {
 public:
  // Parse a tokenizer.json document; `name` (usually its path) prefixes every error message.
  static std::unique_ptr<HfTokenizer> from_json(const std::string& json_text, const std::string& name);
  static std::unique_ptr<HfTokenizer> from_file(const std::string& path);
  ~HfTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool match_special = true) const override;
  std::vector<int32_t> encode_guarded(std::string_view text, const std::vector<std::pair<size_t, size_t>>& plain) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  size_t vocab_size() const override;
  bool is_special(int32_t id) const override;

  struct Impl;

 private:
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// SentencePiece .model

class SentencePieceTokenizer : public Tokenizer {
 public:
  static bool available();  // the shim module was built and loads
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool match_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  size_t vocab_size() const override;
  bool is_special(int32_t id) const override;

 private:
  explicit SentencePieceTokenizer(void* handle) : handle_(handle) {}
  void* handle_;
};

// ---------------------------------------------------------------------------------------------
// Model directories

// BOS/EOS/PAD of a model, from tokenizer_config.json, config.json and generation_config.json; EOS also
// holds the chat template's end-of-turn token (the special token after a rendered assistant turn).
struct SpecialIds {
  std::optional<int32_t> bos;  // prepended when add_bos (Qwen: none)
  bool add_bos = false;
  std::vector<int32_t> eos;  // generation stops at any of these (Qwen: 151645, 151643)
  int32_t pad = 0;           // padding id (pad_token, else the first eos, else 0)
  ChatTemplate chat;         // how prompts are rendered (the model's chat_template; chat_template.h)
};

// A rendered chat template's ids: special tokens match in the template's own text only, never in the
// labelled (message and tool) spans of `text` (Tokenizer::encode_guarded over them).
std::vector<int32_t> encode_rendered(const Tokenizer& tok, const jinja::Text& text);

// tokenizer.json if present, else tokenizer.model. `path` may be a file or a model directory.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// Also checks that the tokenizer belongs to the model: every id it can produce, and EOS/BOS/pad,
// below config.json's vocab_size (an Error naming the directory otherwise).
// The chat template is the model's (load_chat_template) under `chat`.
SpecialIds load_special_ids(const std::string& model_dir, const Tokenizer& tok, const ChatSettings& chat = {});

// ---------------------------------------------------------------------------------------------
// Streaming

// Turns ids arriving one at a time into text pieces that are always whole UTF-8 characters.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tok, bool skip_special = true) : tok_(tok), skip_special_(skip_special) {}
  // Text that became final with this id ("" while a character is still incomplete).
  std::string push(int32_t id);
  // Whatever is left at the end (incomplete bytes become U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_ = 0, read_ = 0;  // ids_[prefix_, read_) has been emitted
};

// A byte-level BPE tokenizer.json: the 256 GPT-2 byte characters (ids 0..255), the ChatML specials
// <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258, then `extra` added tokens (not special, as
// Qwen's <tool_call> and </tool_call>: 259, ...), then one id per merge.
// With no merges it uses GPT-2's ByteLevel splitting; with merges, Qwen2.5's exact pipeline (Split
// on the Qwen regex, so every digit stays its own token, then ByteLevel without regex).
std::string byte_level_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges = {},
                                      const std::vector<std::string>& extra = {});
// Learn `n_merges` BPE merges from texts (pre-tokenized with the Qwen regex, byte-level mapped):
// repeatedly merge the most frequent adjacent pair (ties: the smaller pair of strings).
std::vector<std::pair<std::string, std::string>> train_bpe_merges(const std::vector<std::string>& texts, int n_merges);

// UTF-8 helpers shared by the tokenizers.
std::string utf8_lossy(std::string_view bytes);  // invalid sequences -> U+FFFD, like Rust's from_utf8_lossy
std::string nfc(std::string_view text);          // Unicode NFC (ASCII fast path)

}  // namespace grpo
