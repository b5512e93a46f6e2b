// tensorboard.h: scalars in TensorBoard's event-file format, with no protobuf dependency.
// A file is a sequence of TFRecords: u64 length | u32 masked_crc32c(length) | data |
// u32 masked_crc32c(data), each data an `Event` protobuf (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// encoded by hand. The reader exists for the tests (and checks every CRC).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace grpo {

uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

class TensorBoardWriter {
 public:
  // Creates dir (if needed) and dir/events.out.tfevents.<unix time>.<host>.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  void add_scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  FILE* f_ = nullptr;
};

struct TbScalar {
  std::string tag;
  float value;
  int64_t step;
};
// All scalars of an event file; throws Error naming the file and record on a bad CRC or framing.
std::vector<TbScalar> read_tensorboard_scalars(const std::string& path);

}  // namespace grpo
