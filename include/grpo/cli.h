// cli.h: what every tool's main shares, so that no tool differs in how it fails:
//   - an argument the parser refuses (unknown option, a value out of its range) exits 1 like any
//     other error (CLI11's own codes, 105-114, would tell scripts nothing more);
//   - every exception ends as one line "<tool>: error: <message>", never a LibTorch stack trace.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "grpo/common.h"

// In place of CLI11_PARSE: --help and --version exit 0, every parse error exits 1.
#define GRPO_CLI_PARSE(app, argc, argv)              \
  try {                                              \
    (app).parse((argc), (argv));                     \
  } catch (const CLI::ParseError& parse_error) {     \
    return (app).exit(parse_error) == 0 ? 0 : 1;     \
  }

namespace grpo {

// Range checks for numeric options whose message reads like the config's ("expected ..., found x"),
// not CLI11's "not in range 0.000000 to 1797693...".
inline CLI::Validator at_least(double lo) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", lo);
  const std::string bound = text;
  return CLI::Validator(
      [lo, bound](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0' || !(v >= lo)) return "expected a number >= " + bound + ", found " + s;
        return "";
      },
      ">=" + bound);
}
inline CLI::Validator above_zero() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0' || !(v > 0)) return "expected a number > 0, found " + s;
        return "";
      },
      ">0");
}

// The one error line of a tool; returns its exit status (1).
inline int tool_error(const char* tool, const std::exception& e) {
  std::fprintf(stderr, "%s: error: %s\n", tool, error_text(e).c_str());
  return 1;
}

}  // namespace grpo
