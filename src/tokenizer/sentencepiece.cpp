// sentencepiece.cpp: SentencePieceTokenizer, reached through the dlopen()ed shim (see spm_shim.cpp
// for why). The shim is found via $GRPO_SPM_SHIM, next to the running executable, or at the
// build-tree path compiled in.
#include <dlfcn.h>
#include <unistd.h>

#include <mutex>

#include "grpo/base/common.h"
#include "grpo/tokenizer/tokenizer.h"

#ifndef GRPO_SPM_SHIM_PATH
#define GRPO_SPM_SHIM_PATH ""
#endif

// RTLD_DEEPBIND keeps the shim's protobuf (libsentencepiece's, 3.14) apart from the libprotobuf
// LibTorch brings (3.21 on Debian); without it protobuf's version check aborts the load. The
// sanitizer runtimes refuse RTLD_DEEPBIND (google/sanitizers#611): an ASan build
// (scripts/sanitize.sh) has no SentencePiece, and says so.
#if defined(__SANITIZE_ADDRESS__)
#define GRPO_NO_DEEPBIND 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRPO_NO_DEEPBIND 1
#endif
#endif

namespace grpo {

namespace {

struct Shim {
  void* lib = nullptr;
  std::string error;
  void* (*load)(const char*, char*, size_t) = nullptr;
  void (*free_)(void*) = nullptr;
  size_t (*encode)(void*, const char*, size_t, int32_t*, size_t) = nullptr;
  size_t (*decode)(void*, const int32_t*, size_t, char*, size_t) = nullptr;
  int32_t (*piece_to_id)(void*, const char*) = nullptr;
  size_t (*id_to_piece)(void*, int32_t, char*, size_t) = nullptr;
  int32_t (*vocab_size)(void*) = nullptr;
  int (*is_control)(void*, int32_t) = nullptr;
  int32_t (*unk_id)(void*) = nullptr;
};

const Shim& shim() {
  static Shim s;
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef GRPO_NO_DEEPBIND
    s.error = "not in a sanitizer build (the shim needs RTLD_DEEPBIND, which AddressSanitizer refuses)";
    return;
#endif
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GRPO_SPM_SHIM")) candidates.push_back(env);
    candidates.push_back(program_dir() + "/libgrpo_spm.so");
    candidates.push_back(program_dir() + "/../libgrpo_spm.so");
    if (*GRPO_SPM_SHIM_PATH) candidates.push_back(GRPO_SPM_SHIM_PATH);
    for (const auto& c : candidates) {
      if (!file_exists(c)) continue;
      s.lib = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (s.lib) break;
      s.error = ::dlerror();
    }
    if (!s.lib) {
      if (s.error.empty()) s.error = "libgrpo_spm.so not found (built only when libsentencepiece-dev is installed)";
      return;
    }
    auto sym = [&](auto& fn, const char* name) { fn = reinterpret_cast<std::decay_t<decltype(fn)>>(::dlsym(s.lib, name)); };
    sym(s.load, "grpo_spm_load");
    sym(s.free_, "grpo_spm_free");
    sym(s.encode, "grpo_spm_encode");
    sym(s.decode, "grpo_spm_decode");
    sym(s.piece_to_id, "grpo_spm_piece_to_id");
    sym(s.id_to_piece, "grpo_spm_id_to_piece");
    sym(s.vocab_size, "grpo_spm_vocab_size");
    sym(s.is_control, "grpo_spm_is_control");
    sym(s.unk_id, "grpo_spm_unk_id");
    if (!s.load || !s.encode || !s.decode || !s.piece_to_id || !s.id_to_piece || !s.vocab_size || !s.is_control || !s.unk_id || !s.free_) {
      s.error = "libgrpo_spm.so lacks expected symbols";
      s.lib = nullptr;
    }
  });
  return s;
}

}  // namespace

bool SentencePieceTokenizer::available() {
  return shim().lib != nullptr;
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  const Shim& s = shim();
  if (!s.lib) throw Error(path + ": SentencePiece support unavailable: " + s.error);
  if (!file_exists(path)) throw Error(path + ": no such file");
  char err[512] = {0};
  void* h = s.load(path.c_str(), err, sizeof err);
  if (!h) throw Error(path + ": not a valid SentencePiece model (" + err + ")");
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(h));
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  shim().free_(handle_);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool) const {
  std::vector<int32_t> ids(text.size() + 8);
  size_t n = shim().encode(handle_, text.data(), text.size(), ids.data(), ids.size());
  if (n > ids.size()) {
    ids.resize(n);
    shim().encode(handle_, text.data(), text.size(), ids.data(), ids.size());
  }
  ids.resize(n);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const int32_t V = static_cast<int32_t>(vocab_size());
  std::vector<int32_t> kept;
  for (int32_t id : ids) {
    if (id < 0 || id >= V) throw Error("sentencepiece: token id " + std::to_string(id) + " out of range [0, " + std::to_string(V) + ")");
    if (!(skip_special && is_special(id))) kept.push_back(id);
  }
  std::string out(ids.size() * 8 + 16, '\0');
  size_t n = shim().decode(handle_, kept.data(), kept.size(), out.data(), out.size());
  if (n + 1 > out.size()) {
    out.assign(n + 1, '\0');
    shim().decode(handle_, kept.data(), kept.size(), out.data(), out.size());
  }
  out.resize(n);
  return utf8_lossy(out);
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  std::string t(token);
  int32_t id = shim().piece_to_id(handle_, t.c_str());
  if (id == shim().unk_id(handle_) && id_to_token(id) != t) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  char buf[256];
  size_t n = shim().id_to_piece(handle_, id, buf, sizeof buf);
  if (n < sizeof buf) return std::string(buf, n);
  std::string big(n + 1, '\0');
  shim().id_to_piece(handle_, id, big.data(), big.size());
  big.resize(n);
  return big;
}

size_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<size_t>(shim().vocab_size(handle_));
}
bool SentencePieceTokenizer::is_special(int32_t id) const {
  return shim().is_control(handle_, id) != 0;
}

}  // namespace grpo
