// spm_shim.cpp: a C interface over libsentencepiece, built as its own module (libgrpo_spm.so).
// It is dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND by sentencepiece.cpp: linked directly into a
// process that also loads LibTorch, Debian's libsentencepiece crashes protobuf's static
// initialisation; isolated this way both work. Every function is noexcept C.
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using sentencepiece::SentencePieceProcessor;

namespace {
SentencePieceProcessor* sp(void* h) {
  return static_cast<SentencePieceProcessor*>(h);
}
// Copy s into out (cap bytes, NUL-terminated when it fits); returns the full length.
size_t copy_out(const std::string& s, char* out, size_t cap) {
  if (out && cap) {
    size_t n = std::min(s.size(), cap - 1);
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
  }
  return s.size();
}
}  // namespace

extern "C" {

void* grpo_spm_load(const char* path, char* err, size_t err_cap) {
  auto* p = new (std::nothrow) SentencePieceProcessor();
  if (!p) return nullptr;
  auto status = p->Load(path);
  if (!status.ok()) {
    copy_out(status.ToString(), err, err_cap);
    delete p;
    return nullptr;
  }
  return p;
}

void grpo_spm_free(void* h) {
  delete sp(h);
}

// Returns the number of ids; writes at most cap of them.
size_t grpo_spm_encode(void* h, const char* text, size_t len, int32_t* out, size_t cap) {
  std::vector<int> ids;
  sp(h)->Encode(std::string(text, len), &ids).IgnoreError();
  for (size_t i = 0; i < ids.size() && i < cap; ++i) out[i] = ids[i];
  return ids.size();
}

size_t grpo_spm_decode(void* h, const int32_t* ids, size_t n, char* out, size_t cap) {
  std::vector<int> v(ids, ids + n);
  std::string text;
  sp(h)->Decode(v, &text).IgnoreError();
  return copy_out(text, out, cap);
}

int32_t grpo_spm_piece_to_id(void* h, const char* piece) {
  return sp(h)->PieceToId(piece);
}
size_t grpo_spm_id_to_piece(void* h, int32_t id, char* out, size_t cap) {
  return copy_out(sp(h)->IdToPiece(id), out, cap);
}
int32_t grpo_spm_vocab_size(void* h) {
  return sp(h)->GetPieceSize();
}
int grpo_spm_is_control(void* h, int32_t id) {
  return sp(h)->IsControl(id) || sp(h)->IsUnknown(id);
}
int32_t grpo_spm_bos_id(void* h) {
  return sp(h)->bos_id();
}
int32_t grpo_spm_eos_id(void* h) {
  return sp(h)->eos_id();
}
int32_t grpo_spm_unk_id(void* h) {
  return sp(h)->unk_id();
}

}  // extern "C"
