// make_test_model: write one of the test presets (tests/test_models.h) to a directory, for
// scripts/make_golden.py.   make_test_model OUT_DIR PRESET
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "test_models.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_test_model OUT_DIR PRESET\n");
    return 2;
  }
  for (const auto& p : grpo::test::test_presets())
    if (std::strcmp(p.name, argv[2]) == 0) {
      grpo::test::write_test_model(argv[1], p);
      return 0;
    }
  std::fprintf(stderr, "unknown preset %s\n", argv[2]);
  return 2;
}
