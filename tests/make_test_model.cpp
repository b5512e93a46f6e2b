// make_test_model: write one of the test presets (tests/test_models.h) to a directory, for
// scripts/make_golden.py.   make_test_model OUT_DIR PRESET
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "test_models.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_test_model OUT_DIR PRESET\n");
    return 2;
  }
  for (const auto& p : grpo::test::test_presets())
    if (std::strcmp(p.name, argv[2]) == 0) {
      try {
        std::filesystem::create_directories(argv[1]);
        grpo::test::write_test_model(argv[1], p);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "make_test_model: %s\n", e.what());
        return 1;
      }
      return 0;
    }
  std::fprintf(stderr, "unknown preset %s\n", argv[2]);
  return 2;
}
