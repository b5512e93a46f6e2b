// tokenizer_stages.h (private to src/): the stages of the Hugging Face tokenizer pipeline that
// tokenizer.cpp assembles from tokenizer.json, laid out as the Rust `tokenizers` crate lays them
// out: normalizers (tokenizer_normalizer.cpp), pre-tokenizers (tokenizer_pre_tokenizer.cpp),
// decoders (tokenizer_decoder.cpp), and what they share: UTF-8, GPT-2's byte-level alphabet, PCRE2
// regexes and tokenizer.json field access with errors naming the file and field
// (tokenizer_util.cpp). The BPE model and the added tokens are tokenizer.cpp's. Torch-free, so that
// the fuzz target builds these files alone.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grpo/base/common.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo::hf {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// UTF-8

// Length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one (the maximal
// invalid subpart is then reported through `bad_len`, as Rust's from_utf8_lossy groups them).
size_t utf8_valid_len(std::string_view s, size_t i, size_t* bad_len);
// Decode s into code points with their byte offsets (s must be valid UTF-8).
std::vector<std::pair<size_t, size_t>> utf8_chars(std::string_view s);
std::string utf8proc_apply(std::string_view text, int options);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> unicode table: printable bytes map to themselves, the rest to U+0100 and up, so
// every byte string becomes a printable string that BPE can work on.

struct ByteLevelTable {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int, 324> cp_to_byte;  // -1: not a byte-level char
  ByteLevelTable() {
    cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(byte_to_utf8[b], cp);
      cp_to_byte[cp] = b;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// PCRE2 regex, compiled once with JIT; matching is thread-safe (match data per call).

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err,
                          &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(where + ": regex " + quote(pattern) + " does not compile at offset " + std::to_string(off) + ": " +
                  reinterpret_cast<char*>(msg));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches [begin, end) in s (valid UTF-8), left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const {
    // One match block per thread, freed when the thread ends (encode_batch's threads come and go:
    // a raw thread_local pointer leaked one block per thread per batch; LeakSanitizer found it).
    struct MatchData {
      pcre2_match_data* md = nullptr;
      uint32_t pairs = 0;
      ~MatchData() { pcre2_match_data_free(md); }
    };
    thread_local MatchData data;
    uint32_t pairs = 0;
    pcre2_pattern_info(code_, PCRE2_INFO_CAPTURECOUNT, &pairs);
    if (!data.md || data.pairs < pairs + 1) {
      pcre2_match_data_free(data.md);
      data.md = pcre2_match_data_create(pairs + 1, nullptr);
      data.pairs = pairs + 1;
    }
    pcre2_match_data* md = data.md;
    std::vector<std::pair<size_t, size_t>> out;
    size_t start = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    while (start <= s.size()) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr)
                    : pcre2_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step over one character, as the Rust regex iterator does
        if (b >= s.size()) break;
        size_t bad = 0, n = utf8_valid_len(s, b, &bad);
        start = b + (n ? n : bad);
        continue;
      }
      out.emplace_back(b, e);
      start = e;
    }
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

// GPT-2's pattern, used by ByteLevel when use_regex is true.
inline const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---------------------------------------------------------------------------------------------
// JSON access with errors that name the file and the field

struct Ctx {
  std::string name;  // file path
  [[noreturn]] void fail(const std::string& what) const { throw Error(name + ": " + what); }
};

// A Split/Replace pattern: {"String": s} or {"Regex": r}.
struct Pattern {
  std::string literal;
  std::shared_ptr<Regex> regex;
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const {
    if (regex) return regex->find_all(s);
    std::vector<std::pair<size_t, size_t>> out;
    if (literal.empty()) return out;
    for (size_t p = s.find(literal); p != std::string_view::npos; p = s.find(literal, p + literal.size()))
      out.emplace_back(p, p + literal.size());
    return out;
  }
};

// ---------------------------------------------------------------------------------------------
// Normalizers

struct Normalizer {
  enum Kind { NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip } kind;
  std::string text;  // Prepend: prefix; Replace: content
  Pattern pattern;   // Replace
  bool strip_left = false, strip_right = false;
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: a list of pieces in, a finer list out.

struct PreTokenizer {
  enum Kind { Split, ByteLevel, Metaspace, Digits } kind;
  Pattern pattern;  // Split
  enum Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext } behavior = Isolated;
  bool add_prefix_space = false;   // ByteLevel
  std::shared_ptr<Regex> regex;    // ByteLevel with use_regex
  std::string replacement;         // Metaspace
  std::string prepend_scheme;      // Metaspace: always | first | never
  bool split = true;               // Metaspace
  bool individual_digits = false;  // Digits
};

// ---------------------------------------------------------------------------------------------
// Decoders: a list of token strings in, a list out; joined at the end.

struct Decoder {
  enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind;
  Pattern pattern;
  std::string content;  // Replace: content; Strip: the stripped char; Metaspace: replacement
  int start = 0, stop = 0;
  std::string prepend_scheme = "always";
};

const ByteLevelTable& byte_level();

// ---------------------------------------------------------------------------------------------
// tokenizer.json fields, patterns and the stages

const json& field(const json& obj, const char* key, const Ctx& ctx, const std::string& where);
std::string str_field(const json& obj, const char* key, const Ctx& ctx, const std::string& where);
bool bool_field(const json& obj, const char* key, bool def);
Pattern parse_pattern(const json& obj, const Ctx& ctx, const std::string& where);
std::string replace_all(std::string_view s, const Pattern& pat, const std::string& content);
void parse_normalizer(const json& j, const Ctx& ctx, const std::string& where, std::vector<Normalizer>& out);
std::string apply_normalizers(std::string s, const std::vector<Normalizer>& ns);
void parse_pre_tokenizer(const json& j, const Ctx& ctx, const std::string& where, std::vector<PreTokenizer>& out);
// Split `s` at `matches` per `behavior`, appending non-empty pieces to `out`.
void split_by(std::string_view s, const std::vector<std::pair<size_t, size_t>>& matches, PreTokenizer::Behavior behavior,
              std::vector<std::string>& out);
std::vector<std::string> apply_pre_tokenizers(std::string text, const std::vector<PreTokenizer>& ps, bool first_segment);
void parse_decoder(const json& j, const Ctx& ctx, const std::string& where, std::vector<Decoder>& out);
// "<0xNN>" -> the byte, else -1.
int byte_token_value(std::string_view t);
std::vector<std::string> apply_decoders(std::vector<std::string> tokens, const std::vector<Decoder>& ds);

}  // namespace grpo::hf
