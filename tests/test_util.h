// test_util.h: helpers shared by the test files.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

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

}  // namespace grpo::test
