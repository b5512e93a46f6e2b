// common.h: the small shared vocabulary of the project: the error type every component throws,
// string helpers, file reading, and an atomic file writer (write to a temporary name, then rename,
// so a crash never leaves a half-written file where a good one was).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Errors: one exception type; the message names the object (file, line, key) and expected vs found.
// main() catches it once, prints it and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// The message of any exception as one user-facing text: a LibTorch (c10::Error) message without
// its C++ stack trace, which names no file of the user's and helps no one but us.
std::string error_text(const std::exception& e);

// True where the environment says GRPO_FAILPOINT=<name>: the tests make a named fault happen there
// (a crash in a checkpoint write, running out of memory in a step) to see it handled.
bool failpoint(const std::string& name);

// ---------------------------------------------------------------------------------------------
// Hashing: SplitMix64's finaliser, the project's one way to derive seeds (data order, sampling
// keys, the synthetic task) so every random choice is a pure, platform-independent function.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// ---------------------------------------------------------------------------------------------
// Strings
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::vector<std::string> split(std::string_view s, char sep);
std::string to_lower(std::string_view s);
// Levenshtein distance, used to suggest the closest valid key for a typo.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word`, or "" when nothing is plausibly close.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
// The alternatives of an error's "expected ...": "a", "a or b", "a, b or c".
std::string one_of(const std::vector<std::string>& names);
// UTF-8: whether every byte is ASCII; `cp` appended as UTF-8 (nothing for a value outside Unicode).
bool is_ascii(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
// Quote a user-provided string for an error message, escaping control characters.
std::string quote(std::string_view s, size_t max_len = 80);

// ---------------------------------------------------------------------------------------------
// JSON: parse `text`; any parse error becomes Error("<where>: invalid JSON (<detail>)"), where
// `where` names the file, or file:line for JSONL.
nlohmann::json parse_json(std::string_view text, const std::string& where);
// JSON text that never throws: a string holding invalid UTF-8 (a YAML value, a completion cut
// inside a character) is written with U+FFFD in place of the bad bytes. Every dump goes through it.
std::string json_text(const nlohmann::json& j, int indent = -1);

// ---------------------------------------------------------------------------------------------
// Files
std::string read_file(const std::string& path);
// Streams a file to `path.tmp.<pid>`; commit() fsyncs and renames it over `path`. Destroyed
// without commit() (an exception, a crash), it removes the temporary and `path` is untouched.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::string path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};
// Write `data` to `path` atomically (AtomicWriter in one call).
void write_file_atomic(const std::string& path, std::string_view data);
bool file_exists(const std::string& path);
// A file's 64-bit checksum (FNV-1a over 8-byte words, the tail byte-wise): any one changed word
// changes it (each step is a bijection of the state), at memory speed (~5 GB/s), as 16 hex digits.
std::string file_checksum(const std::string& path);
bool dir_exists(const std::string& path);
// The directory of the running program (/proc/self/exe's); "" when it cannot be read.
std::string program_dir();

}  // namespace grpo
