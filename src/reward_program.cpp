// reward_program.cpp: the external reward program (protocol and failure policy in
// include/grpo/reward_program.h). Plain POSIX: posix_spawn, two pipes, poll with a deadline.
#include "grpo/reward_program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "grpo/common.h"

extern char** environ;

namespace grpo {

namespace {

using Clock = std::chrono::steady_clock;

std::string quote_line(const std::string& line) {
  std::string s = line.size() > 200 ? line.substr(0, 200) + "..." : line;
  return json_text(nlohmann::json(s));
}

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reply parsing

std::map<std::string, std::vector<float>> parse_reward_reply(const std::string& line, size_t n, const std::string& who) {
  auto bad = [&](const std::string& what) { return Error("reward_command " + who + ": bad reply (" + what + "): " + quote_line(line)); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw bad("not JSON; NaN and Infinity are not JSON either");
  }
  if (!j.is_object() || !j.contains("rewards")) throw bad("expected an object with \"rewards\"");
  auto values = [&](const nlohmann::json& a, const std::string& name) {
    if (!a.is_array()) throw bad("\"" + name + "\": expected an array of numbers");
    if (a.size() != n) throw bad("\"" + name + "\": expected " + std::to_string(n) + " rewards, found " + std::to_string(a.size()));
    std::vector<float> out;
    for (size_t i = 0; i < n; ++i) {
      if (a[i].is_null()) {  // the program could not score this one completion: it scores 0, counted
        out.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      if (!a[i].is_number()) throw bad("\"" + name + "\"[" + std::to_string(i) + "]: expected a number or null, found " + json_text(a[i]));
      const double v = a[i].get<double>();
      if (!std::isfinite(v) || std::abs(v) > 3e38) throw bad("\"" + name + "\"[" + std::to_string(i) + "]: not a finite float");
      out.push_back(static_cast<float>(v));
    }
    return out;
  };
  std::map<std::string, std::vector<float>> out;
  const auto& r = j["rewards"];
  if (r.is_array()) {
    out["external"] = values(r, "rewards");
  } else if (r.is_object() && !r.empty()) {
    for (const auto& [name, a] : r.items()) {
      if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
        throw bad("component name " + json_text(nlohmann::json(name)) + ": expected [a-z0-9_]+");
      out[name] = values(a, name);
    }
  } else {
    throw bad("\"rewards\": expected an array or an object of arrays");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Process

RewardProgram::RewardProgram(std::vector<std::string> argv, double timeout_s, int max_restarts)
    : argv_(std::move(argv)), timeout_s_(timeout_s), max_restarts_(max_restarts) {
  if (argv_.empty()) throw Error("reward_command: empty argv");
  // A program that dies while we write would raise SIGPIPE and end the trainer without a word;
  // with it ignored, write() fails with EPIPE and the restart policy takes over.
  ::signal(SIGPIPE, SIG_IGN);
  start();
}

RewardProgram::~RewardProgram() {
  stop();
}

std::string RewardProgram::describe() const {
  return json_text(nlohmann::json(argv_));
}

void RewardProgram::start() {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw Error("reward_command " + describe() + ": pipe: " + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]);
    throw Error("reward_command " + describe() + ": pipe: " + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);  // dup2 clears O_CLOEXEC on the new fd
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<char*> args;
  for (const auto& a : argv_) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Its own process group, so that a kill reaches what it started too (a shell wrapper's children
  // would otherwise outlive it, holding our stderr open), and a terminal's Ctrl-C reaches only us:
  // the trainer saves a checkpoint and the program then sees EOF.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]), ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]), ::close(out[0]);
    throw Error("reward_command " + describe() + ": cannot start " + argv_[0] + ": " + std::strerror(rc));
  }
  pid_ = pgid_ = pid, to_child_ = in[1], from_child_ = out[0];
  ::fcntl(to_child_, F_SETFL, ::fcntl(to_child_, F_GETFL) | O_NONBLOCK);
  ::fcntl(from_child_, F_SETFL, ::fcntl(from_child_, F_GETFL) | O_NONBLOCK);
  pending_.clear();
}

void RewardProgram::stop() {
  if (to_child_ >= 0) ::close(to_child_), to_child_ = -1;
  if (from_child_ >= 0) ::close(from_child_), from_child_ = -1;
  if (pgid_ <= 0) return;
  // EOF on its stdin asks it to finish; 0.5 s later it is killed, with its process group (what it
  // started); an exited program's leftover children too.
  int status = 0;
  bool reaped = pid_ <= 0;
  for (int i = 0; i < 50 && !reaped; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_)
      reaped = true;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pgid_, SIGKILL);
  if (!reaped)
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  pid_ = -1, pgid_ = -1;
}

bool RewardProgram::exchange(const std::string& request, std::string& reply, std::string& why) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
  size_t written = 0;
  auto died = [&](const std::string& what) {
    // Give a dying program a moment to be reaped, so the message can say how it ended.
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 20 && (r = ::waitpid(pid_, &status, WNOHANG)) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    why = r == pid_ ? what + " (it " + status_text(status) + ")" : what;
    if (r == pid_) pid_ = -1;
    return false;
  };
  for (;;) {
    size_t nl = pending_.find('\n');
    if (nl != std::string::npos && written == request.size()) {
      reply = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      char t[32];
      std::snprintf(t, sizeof t, "%g", timeout_s_);
      why = std::string("no reply within reward_timeout = ") + t + " s";
      return false;
    }
    pollfd fds[2] = {{from_child_, POLLIN, 0}, {written < request.size() ? to_child_ : -1, POLLOUT, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (rc < 0 && errno != EINTR) throw Error("reward_command " + describe() + ": poll: " + std::strerror(errno));
    if (rc <= 0) continue;
    if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t w = ::write(to_child_, request.data() + written, request.size() - written);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return died("it closed its stdin");
      if (w > 0) written += static_cast<size_t>(w);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      const ssize_t r = ::read(from_child_, buf, sizeof buf);
      if (r == 0) return died("it closed its stdout before replying");
      if (r < 0 && errno != EAGAIN && errno != EINTR) return died(std::string("read: ") + std::strerror(errno));
      if (r > 0) pending_.append(buf, static_cast<size_t>(r));
    }
  }
}

std::map<std::string, std::vector<float>> RewardProgram::score(const RewardRequest& req) {
  const size_t n = req.completions.size();
  nlohmann::json j;
  j["prompts"] = req.prompts;
  j["completions"] = req.completions;
  j["golds"] = nlohmann::json::array();
  for (const auto& g : req.golds) j["golds"].push_back(gold_json(g));
  // The examples' other columns (as TRL passes dataset columns to reward functions), only when a line had any.
  if (std::any_of(req.columns.begin(), req.columns.end(), [](const std::string& c) { return !c.empty(); })) {
    j["columns"] = nlohmann::json::array();
    for (const auto& c : req.columns) j["columns"].push_back(c.empty() ? nlohmann::json::object() : nlohmann::json::parse(c));
  }
  j["step"] = req.step;
  const std::string request = json_text(j) + "\n";
  for (;;) {
    if (pgid_ <= 0) start();
    std::string reply, why;
    if (exchange(request, reply, why)) return parse_reward_reply(reply, n, describe());
    stop();
    if (restarts_ >= max_restarts_)
      throw Error("reward_command " + describe() + ": " + why + "; gave up after " + std::to_string(restarts_) +
                  " restart(s) (reward_restarts = " + std::to_string(max_restarts_) + ")");
    ++restarts_;
    std::fprintf(stderr, "warning: reward_command %s: %s; restarting it (%d of %d) and sending step %lld's batch again\n",
                 describe().c_str(), why.c_str(), restarts_, max_restarts_, static_cast<long long>(req.step));
  }
}

}  // namespace grpo
