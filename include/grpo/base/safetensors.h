// safetensors.h: reader and writer for the Hugging Face safetensors format
// (https://huggingface.co/docs/safetensors: u64 little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {str: str}}, then the data).
//
// The reader memory-maps the file and validates the whole header before any tensor byte is
// touched: header length inside the file, offsets inside the data area, no overlaps, byte count ==
// dtype size x product(shape). A directory loads as one file or as shards listed by
// model.safetensors.index.json. `__metadata__` entries that name another tensor are aliases (a
// tied embedding stored once: TinyStories maps model.embed_tokens.weight -> lm_head.weight).
// Torch-free on purpose: the fuzz target builds this file alone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace grpo {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };
const char* dtype_name(DType d);  // safetensors spelling: "F32", "BF16", ...
size_t dtype_size(DType d);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets inside the data area
  int64_t numel() const;
};

// One .safetensors file, mapped read-only.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // Validate a header given as bytes (the whole file); used by open() and the fuzz target.
  static std::vector<TensorInfo> parse_header(const uint8_t* data, size_t size, const std::string& path,
                                              std::map<std::string, std::string>* metadata, size_t* data_start);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* data(const TensorInfo& t) const { return base_ + data_start_ + t.begin; }
  // Drop the pages of a tensor already copied out, so loading never holds file + copy in RSS.
  void release(const TensorInfo& t) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0, data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model directory (single file or shards), by name, with aliases resolved.
class WeightStore {
 public:
  static WeightStore open_dir(const std::string& dir);
  struct Ref {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  // Ref for `name` (directly or via an alias); nullptr file if absent.
  Ref find(const std::string& name) const;
  std::vector<std::string> names() const;  // stored names, sorted
  size_t total_bytes() const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, Ref> by_name_;
  std::map<std::string, std::string> aliases_;  // alias -> stored name
};

// A tensor to write: raw little-endian bytes of `dtype` in row-major order.
struct TensorBytes {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};
// Write a .safetensors file (tmp name + rename). Header padded to 8 bytes like the reference.
void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace grpo
