// test_util.h: helpers shared by the test files.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "grpo/common.h"

namespace grpo::test {

// The message of the grpo::Error that f throws, or "" if it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const grpo::Error& e) {
    return e.what();
  }
  return "";
}

inline std::string source_path(const std::string& rel) { return std::string(GRPO_SOURCE_DIR) + "/" + rel; }

// A fresh directory under $TMPDIR, unique per call.
inline std::string temp_dir() {
  std::string tmpl = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/grpo_test_XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (!p) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

inline std::string write_temp(const std::string& name, const std::string& content) {
  std::string path = temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// ---------------------------------------------------------------------------------------------
// Device-parameterised tests: TEST_P(OnDevice-derived fixture, ...) runs once per device in
// test_devices(): "cpu" always, "cuda" when this LibTorch build sees a GPU (GRPO_TEST_DEVICES
// overrides, e.g. "cuda" alone on a GPU host). Instantiate with GRPO_INSTANTIATE_ON_DEVICES(Fixture).

inline std::vector<std::string> test_devices() {
  if (const char* env = std::getenv("GRPO_TEST_DEVICES")) {
    std::vector<std::string> out;
    for (auto& d : split(env, ','))
      if (!d.empty()) out.push_back(std::move(d));
    return out;
  }
  std::vector<std::string> out = {"cpu"};
  if (torch::cuda::is_available()) out.push_back("cuda");
  return out;
}

class OnDevice : public ::testing::TestWithParam<std::string> {
 protected:
  torch::Device device() const { return torch::Device(GetParam()); }
};

#define GRPO_INSTANTIATE_ON_DEVICES(Fixture) \
  INSTANTIATE_TEST_SUITE_P(Devices, Fixture, ::testing::ValuesIn(::grpo::test::test_devices()), \
                           [](const ::testing::TestParamInfo<std::string>& i) {          \
                             std::string n = i.param;                                               \
                             for (char& c : n)                                                      \
                               if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';           \
                             return n;                                                              \
                           })

}  // namespace grpo::test
