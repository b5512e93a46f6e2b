// tensorboard.cpp: see tensorboard.h.
#include "grpo/base/tensorboard.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "grpo/base/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.

uint32_t crc32c(const void* data, size_t n) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format, the few field kinds we need

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

template <typename T>
void put_fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian host
  out.append(b, sizeof(T));
}

void put_bytes(std::string& out, int field, const std::string& s) {
  put_varint(out, (uint64_t(field) << 3) | 2);
  put_varint(out, s.size());
  out += s;
}

std::string event(double wall_time, int64_t step) {
  std::string e;
  put_varint(e, (1 << 3) | 1);
  put_fixed(e, wall_time);
  put_varint(e, (2 << 3) | 0);
  put_varint(e, static_cast<uint64_t>(step));
  return e;
}

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  if (!dir_exists(dir) && ::mkdir(dir.c_str(), 0755) != 0) throw Error(dir + ": cannot create TensorBoard directory");
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<long long>(std::time(nullptr))) + "." + host;
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) throw Error(path_ + ": cannot open for writing");
  std::string e = event(now_seconds(), 0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  put_fixed(rec, len);
  put_fixed(rec, masked_crc32c(&len, 8));
  rec += data;
  put_fixed(rec, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size()) throw Error(path_ + ": write failed");
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  put_bytes(v, 1, tag);
  put_varint(v, (2 << 3) | 5);
  put_fixed(v, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event(now_seconds(), step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void TensorBoardWriter::flush() {
  std::fflush(f_);
}

// ---------------------------------------------------------------------------------------------
// Reader

namespace {

struct Cursor {
  const std::string& s;
  size_t pos;
  size_t end;
  const std::string& where;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= end) throw Error(where + ": truncated varint");
      uint8_t b = static_cast<uint8_t>(s[pos++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Error(where + ": varint too long");
  }
  template <typename T>
  T fixed() {
    if (pos + sizeof(T) > end) throw Error(where + ": truncated field");
    T v;
    std::memcpy(&v, s.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  void skip(int wire) {
    if (wire == 0)
      varint();
    else if (wire == 1)
      pos += 8;
    else if (wire == 5)
      pos += 4;
    else if (wire == 2)
      pos += varint();
    else
      throw Error(where + ": unsupported wire type " + std::to_string(wire));
  }
};

}  // namespace

std::vector<TbScalar> read_tensorboard_scalars(const std::string& path) {
  const std::string s = read_file(path);
  std::vector<TbScalar> out;
  size_t pos = 0;
  for (int rec = 0; pos < s.size(); ++rec) {
    const std::string where = path + ": record " + std::to_string(rec);
    if (pos + 12 > s.size()) throw Error(where + ": truncated header");
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, s.data() + pos, 8);
    std::memcpy(&len_crc, s.data() + pos + 8, 4);
    if (len_crc != masked_crc32c(s.data() + pos, 8)) throw Error(where + ": length CRC mismatch");
    if (pos + 12 + len + 4 > s.size()) throw Error(where + ": truncated data");
    std::memcpy(&data_crc, s.data() + pos + 12 + len, 4);
    if (data_crc != masked_crc32c(s.data() + pos + 12, len)) throw Error(where + ": data CRC mismatch");
    Cursor c{s, pos + 12, pos + 12 + len, where};
    int64_t step = 0;
    std::vector<TbScalar> values;
    while (c.pos < c.end) {
      uint64_t key = c.varint();
      int field = int(key >> 3), wire = int(key & 7);
      if (field == 2 && wire == 0) {
        step = static_cast<int64_t>(c.varint());
      } else if (field == 5 && wire == 2) {  // Summary
        size_t send = c.pos + c.varint();
        while (c.pos < send) {
          uint64_t k = c.varint();
          if ((k >> 3) != 1 || (k & 7) != 2) {
            c.skip(int(k & 7));
            continue;
          }
          size_t vend = c.pos + c.varint();
          TbScalar sc{"", 0, 0};
          while (c.pos < vend) {
            uint64_t vk = c.varint();
            if (vk == ((1 << 3) | 2)) {
              size_t n = c.varint();
              sc.tag = s.substr(c.pos, n);
              c.pos += n;
            } else if (vk == ((2 << 3) | 5)) {
              sc.value = c.fixed<float>();
            } else {
              c.skip(int(vk & 7));
            }
          }
          values.push_back(sc);
        }
      } else {
        c.skip(wire);
      }
    }
    for (auto& v : values) {
      v.step = step;
      out.push_back(v);
    }
    pos += 12 + len + 4;
  }
  return out;
}

}  // namespace grpo
