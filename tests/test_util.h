// test_util.h: helpers shared by the test files.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "grpo/base/common.h"
#include "grpo/tokenizer/tokenizer.h"
#include "test_models.h"

namespace grpo::test {

// Test double: one id per byte (0..255), specials from 256 on; enough to check template assembly.
class ByteTokenizer : public grpo::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool match_special) const override {
    std::vector<int32_t> out;
    for (size_t i = 0; i < text.size();) {
      bool matched = false;
      if (match_special)
        for (const auto& [s, id] : specials_)
          if (text.substr(i, s.size()) == s) {
            out.push_back(id);
            i += s.size();
            matched = true;
            break;
          }
      if (!matched) out.push_back(static_cast<unsigned char>(text[i++]));
    }
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t id : ids) s += id < 256 ? std::string(1, char(id)) : id_to_token(id);
    return s;
  }
  std::optional<int32_t> token_to_id(std::string_view t) const override {
    auto it = specials_.find(std::string(t));
    return it == specials_.end() ? std::nullopt : std::optional<int32_t>(it->second);
  }
  std::string id_to_token(int32_t id) const override {
    for (const auto& [s, i] : specials_)
      if (i == id) return s;
    return std::string(1, char(id));
  }
  size_t vocab_size() const override { return 259; }
  bool is_special(int32_t id) const override { return id >= 256; }

 private:
  std::map<std::string, int32_t> specials_ = {{"<|im_start|>", 256}, {"<|im_end|>", 257}, {"<|endoftext|>", 258}};
};

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

inline std::string source_path(const std::string& rel) {
  return std::string(GRPO_SOURCE_DIR) + "/" + rel;
}

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

// Starts argv in a fresh process (posix_spawn: never fork() a process whose LibTorch thread pools
// are running; the child could deadlock on a lock another thread held) with extra "KEY=VALUE"
// environment entries and stdout/stderr to `output` (default /dev/null). Returns its pid.
inline pid_t spawn_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                           const std::string& output = "/dev/null") {
  std::vector<char*> args, env;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e; ++e) env.push_back(*e);
  env.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// waitpid's status of pid; after timeout_s (> 0) the process is killed and -1 returned.
inline int wait_process(pid_t pid, double timeout_s = 0) {
  int status = 0;
  for (double waited = 0;; waited += 0.05) {
    const pid_t r = waitpid(pid, &status, timeout_s > 0 ? WNOHANG : 0);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) throw std::runtime_error("waitpid: " + std::string(std::strerror(errno)));
    if (timeout_s > 0 && waited >= timeout_s) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    if (timeout_s > 0) ::usleep(50000);
  }
}

inline int run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                       const std::string& output = "/dev/null") {
  return wait_process(spawn_process(argv, extra_env, output));
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

#define GRPO_INSTANTIATE_ON_DEVICES(Fixture)                                                    \
  INSTANTIATE_TEST_SUITE_P(Devices, Fixture, ::testing::ValuesIn(::grpo::test::test_devices()), \
                           [](const ::testing::TestParamInfo<std::string>& i) {                 \
                             std::string n = i.param;                                           \
                             for (char& c : n)                                                  \
                               if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';       \
                             return n;                                                          \
                           })

// The first preset written once per test process, for the tests that load a tiny model.
inline const std::string& tiny_test_model_dir() {
  static const std::string dir = [] {
    std::string d = temp_dir() + "/tiny";
    write_test_model(d, test_presets()[0]);
    return d;
  }();
  return dir;
}

}  // namespace grpo::test
