// safetensors.cpp: see safetensors.h.
#include "grpo/base/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"

namespace grpo {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// dtypes

namespace {
struct DTypeRow {
  DType d;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {{DType::F32, "F32", 4}, {DType::F16, "F16", 2},  {DType::BF16, "BF16", 2}, {DType::F64, "F64", 8},
                                {DType::I64, "I64", 8}, {DType::I32, "I32", 4},  {DType::I16, "I16", 2},   {DType::I8, "I8", 1},
                                {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1}};
}  // namespace

const char* dtype_name(DType d) {
  for (const auto& r : kDTypes)
    if (r.d == d) return r.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& r : kDTypes)
    if (r.d == d) return r.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Header

std::vector<TensorInfo> SafetensorsFile::parse_header(const uint8_t* data, size_t size, const std::string& path,
                                                      std::map<std::string, std::string>* metadata, size_t* data_start) {
  auto fail = [&](const std::string& what) -> void { throw Error(path + ": " + what); };
  if (size < 8) fail("file too short for a safetensors header (" + std::to_string(size) + " bytes, need at least 8)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8) fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) + " bytes)");
  json header;
  try {
    header = json::parse(data + 8, data + 8 + n);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail("header is not a JSON object");
  const size_t data_size = size - 8 - n;
  std::vector<TensorInfo> out;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ is not an object");
      for (const auto& [k, mv] : v.items()) {
        if (!mv.is_string()) fail("__metadata__[\"" + k + "\"] is not a string");
        if (metadata) (*metadata)[k] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) fail(where + ": expected an object with dtype, shape, data_offsets");
    TensorInfo t;
    t.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(where + ": missing string field \"dtype\"");
    std::string dt = v["dtype"];
    bool known = false;
    for (const auto& r : kDTypes) {
      if (dt != r.name) continue;
      t.dtype = r.d;
      known = true;
    }
    if (!known) fail(where + ": unsupported dtype \"" + dt + "\" (supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(where + ": missing array field \"shape\"");
    // numel * dtype size must not overflow; cap each factor at the data size.
    unsigned __int128 bytes = dtype_size(t.dtype);
    for (const auto& s : v["shape"]) {
      if (!s.is_number_unsigned()) fail(where + ": shape entries must be non-negative integers, found " + json_text(s));
      t.shape.push_back(s.get<int64_t>());
      bytes *= s.get<uint64_t>();
      if (bytes > (unsigned __int128)size) fail(where + ": shape " + json_text(v["shape"]) + " is larger than the file");
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(where + ": data_offsets must be [begin, end] with non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.begin > t.end) fail(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] end before begin");
    if (t.end > data_size)
      fail(where + ": data_offsets end " + std::to_string(t.end) + " is outside the data area (" + std::to_string(data_size) + " bytes)");
    if (t.end - t.begin != static_cast<size_t>(bytes))
      fail(where + ": " + dt + " " + json_text(v["shape"]) + " needs " + std::to_string(static_cast<uint64_t>(bytes)) +
           " bytes, data_offsets span " + std::to_string(t.end - t.begin));
    out.push_back(std::move(t));
  }
  std::vector<const TensorInfo*> sorted;
  for (const auto& t : out) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      fail("tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap in the data area");
  if (data_start) *data_start = 8 + n;
  return out;
}

// ---------------------------------------------------------------------------------------------
// File

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  f->path_ = path;
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (::fstat(f->fd_, &st) != 0) throw Error(path + ": cannot stat (" + std::strerror(errno) + ")");
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, f->fd_, 0);
    if (p == MAP_FAILED) throw Error(path + ": mmap failed (" + std::strerror(errno) + ")");
    f->base_ = static_cast<uint8_t*>(p);
  }
  f->tensors_ = parse_header(f->base_, f->size_, path, &f->metadata_, &f->data_start_);
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::release(const TensorInfo& t) const {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t b = reinterpret_cast<uintptr_t>(data(t)), e = b + (t.end - t.begin);
  b = (b + page - 1) / page * page;  // only pages wholly inside this tensor
  e = e / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

// ---------------------------------------------------------------------------------------------
// Directory

WeightStore WeightStore::open_dir(const std::string& dir) {
  WeightStore ws;
  std::vector<std::string> files;
  const std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    json j = parse_json(read_file(index), index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw Error(index + ": missing object \"weight_map\"");
    for (const auto& [name, fn] : j["weight_map"].items()) {
      if (!fn.is_string()) throw Error(index + ": weight_map[\"" + name + "\"] is not a file name");
      if (std::find(files.begin(), files.end(), fn.get<std::string>()) == files.end()) files.push_back(fn);
    }
    for (const auto& fn : files)
      if (!file_exists(dir + "/" + fn)) throw Error(index + ": lists shard '" + fn + "', which is missing from " + dir);
  } else if (file_exists(dir + "/model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& fn : files) {
    auto f = std::shared_ptr<SafetensorsFile>(SafetensorsFile::open(dir + "/" + fn).release());
    for (const auto& t : f->tensors()) {
      if (ws.by_name_.count(t.name)) throw Error(f->path() + ": tensor '" + t.name + "' is stored twice");
      ws.by_name_[t.name] = Ref{f.get(), &t};
    }
    for (const auto& [k, v] : f->metadata())
      if (k != "format") ws.aliases_[k] = v;
    ws.files_.push_back(std::move(f));
  }
  return ws;
}

WeightStore::Ref WeightStore::find(const std::string& name) const {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
  if (auto a = aliases_.find(name); a != aliases_.end())
    if (auto it = by_name_.find(a->second); it != by_name_.end()) return it->second;
  return Ref{nullptr, nullptr};
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [n, r] : by_name_) out.push_back(n);
  return out;
}

size_t WeightStore::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, r] : by_name_) n += r.info->end - r.info->begin;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writer

void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  size_t off = 0;
  for (const auto& t : tensors) {
    size_t want = dtype_size(t.dtype);
    for (int64_t s : t.shape) want *= static_cast<size_t>(s);
    if (want != t.nbytes)
      throw Error(path + ": tensor '" + t.name + "': " + std::to_string(t.nbytes) + " bytes given, shape needs " + std::to_string(want));
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h = json_text(header);
  h.append((8 - h.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((uint64_t(h.size()) >> (8 * i)) & 0xFF);
  AtomicWriter w(path);
  w.write(len, 8);
  w.write(h);
  for (const auto& t : tensors) w.write(t.data, t.nbytes);
  w.commit();
}

}  // namespace grpo
