// cli.h: what every tool's main shares, so that no tool differs in how it fails:
//   - an argument the parser refuses (unknown option, a value out of its range) exits 1 like any
//     other error (CLI11's own codes, 105-114, would tell scripts nothing more);
//   - every exception ends as one line "<tool>: error: <message>", never a LibTorch stack trace.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "grpo/base/common.h"
#include "grpo/base/device.h"
#include "grpo/base/hub_cache.h"
#include "grpo/config/config.h"

// In place of CLI11_PARSE: --help and --version exit 0; every parse error exits 1 with the one
// error line every other error has ("<tool>: error: ...", the tool named by argv[0]).
#define GRPO_CLI_PARSE(app, argc, argv)                                                              \
  try {                                                                                              \
    (app).parse((argc), (argv));                                                                     \
  } catch (const CLI::ParseError& parse_error) {                                                     \
    if (parse_error.get_exit_code() == 0) return (app).exit(parse_error);                            \
    std::fprintf(stderr, "%s: error: %s\n", grpo::tool_name((argv)[0]).c_str(), parse_error.what()); \
    return 1;                                                                                        \
  }

namespace grpo {

// A tool's name from its argv[0] ("build/grpo_eval" -> "grpo_eval").
inline std::string tool_name(const char* argv0) {
  const std::string path = argv0 ? argv0 : "grpo";
  return path.substr(path.find_last_of('/') + 1);
}

// --version on every tool: "<tool> <version>, <the build's LibTorch, CUDA and threads>".
inline void add_version_flag(CLI::App& app, const std::string& tool) {
  app.set_version_flag("--version", [tool] { return tool + " " GRPO_VERSION ", " + build_summary(); });
}

// Integer options: "expected an integer in [lo, hi]" (or ">= lo" when hi is the type's maximum);
// a number too large for 64 bits says "out of range", not that it is no integer.
inline CLI::Validator integer_in(long long lo, long long hi = LLONG_MAX) {
  const std::string want =
      hi == LLONG_MAX ? "an integer >= " + std::to_string(lo) : "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, want](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (end == s.c_str() || *end != '\0') return "expected " + want + ", found " + s;
        if (errno == ERANGE) return "out of range: expected " + want + ", found " + s;
        if (v < lo || v > hi) return "expected " + want + ", found " + s;
        return "";
      },
      want);
}
// Real-valued options bounded on both sides: "expected a number in [lo, hi], found x".
inline CLI::Validator number_in(double lo, double hi) {
  char text[64];
  std::snprintf(text, sizeof text, "[%g, %g]", lo, hi);
  const std::string range = text;
  return CLI::Validator(
      [lo, hi, range](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0' || !(v >= lo && v <= hi)) return "expected a number in " + range + ", found " + s;
        return "";
      },
      range);
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

// -c/--config (repeatable: later files override earlier ones) and --set key=value (after the files),
// as every tool that reads a config takes them.
struct ConfigOptions {
  std::vector<std::string> files, overrides;
  void add_to(CLI::App& app, const std::string& what = "YAML (.yaml/.yml) or JSON (.json) config file") {
    app.add_option("-c,--config", files, what + "; repeatable, later files override earlier ones")->expected(1)->take_all();
    app.add_option("--set", overrides, "override one config key: --set key=value (repeatable, after the files)")->expected(1)->take_all();
  }
  void apply(TrainConfig& cfg) const { apply_config_sources(cfg, files, overrides); }
};

// The one error line of a tool; returns its exit status (1).
// --chat-template, --chat-template-kwargs and --enable-thinking: the config keys of the same names for
// the tools that render prompts without a config file (grpo_generate, grpo_tokenize).
struct ChatOptions {
  std::string chat_template = "auto", kwargs = "{}", enable_thinking = "auto";
  void add_to(CLI::App& app) {
    app.add_option("--chat-template", chat_template, "auto | chatml | FILE.jinja (as the config key)")->capture_default_str();
    app.add_option("--chat-template-kwargs", kwargs, "JSON map of template variables, e.g. '{\"enable_thinking\": false}'")
        ->capture_default_str();
    app.add_option("--enable-thinking", enable_thinking, "auto | true | false (chat_template_kwargs.enable_thinking)")
        ->capture_default_str();
  }
  ChatSettings settings() const {  // errors name the flag
    TrainConfig keys;
    set_config_value(keys, "chat_template", chat_template, "--chat-template");
    set_config_value(keys, "chat_template_kwargs", kwargs, "--chat-template-kwargs");
    set_config_value(keys, "enable_thinking", enable_thinking, "--enable-thinking");
    validate_chat_settings(keys);
    return chat_settings(keys);
  }
};

inline int tool_error(const char* tool, const std::exception& e) {
  std::fprintf(stderr, "%s: error: %s\n", tool, error_text(e).c_str());
  return 1;
}

}  // namespace grpo
