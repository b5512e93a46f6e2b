// line_program.cpp: a helper program over pipes (protocol and failure policy in
// include/grpo/line_program.h). Plain POSIX: posix_spawn, two pipes, poll with a deadline.
#include "grpo/base/line_program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "grpo/base/common.h"

extern char** environ;

namespace grpo {

namespace line_impl {

using Clock = std::chrono::steady_clock;

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace line_impl

using line_impl::Clock;
using line_impl::status_text;

std::string quote_reply(const std::string& line) {
  std::string s = line.size() > 200 ? line.substr(0, 200) + "..." : line;
  return json_text(nlohmann::json(s));
}

// ---------------------------------------------------------------------------------------------
// Process

LineProgram::LineProgram(std::string key, std::string timeout_key, std::string restarts_key, std::vector<std::string> argv,
                         double timeout_s, int max_restarts)
    : key_(std::move(key)),
      timeout_key_(std::move(timeout_key)),
      restarts_key_(std::move(restarts_key)),
      argv_(std::move(argv)),
      timeout_s_(timeout_s),
      max_restarts_(max_restarts) {
  if (argv_.empty()) throw Error(key_ + ": empty argv");
  // A program that dies while we write would raise SIGPIPE and end the trainer without a word;
  // with it ignored, write() fails with EPIPE and the restart policy takes over.
  ::signal(SIGPIPE, SIG_IGN);
  start();
}

LineProgram::~LineProgram() {
  stop();
}

std::string LineProgram::describe() const {
  return key_ + " " + json_text(nlohmann::json(argv_));
}

void LineProgram::start() {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw Error(describe() + ": pipe: " + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw Error(describe() + ": pipe: " + std::strerror(errno));
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
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    throw Error(describe() + ": cannot start " + argv_[0] + ": " + std::strerror(rc));
  }
  pid_ = pgid_ = pid;
  to_child_ = in[1];
  from_child_ = out[0];
  ::fcntl(to_child_, F_SETFL, ::fcntl(to_child_, F_GETFL) | O_NONBLOCK);
  ::fcntl(from_child_, F_SETFL, ::fcntl(from_child_, F_GETFL) | O_NONBLOCK);
  pending_.clear();
}

void LineProgram::stop() {
  if (to_child_ >= 0) {
    ::close(to_child_);
    to_child_ = -1;
  }
  if (from_child_ >= 0) {
    ::close(from_child_);
    from_child_ = -1;
  }
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
  pid_ = -1;
  pgid_ = -1;
}

bool LineProgram::exchange(const std::string& request, std::string& reply, std::string& why) {
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
      why = "no reply within " + timeout_key_ + " = " + t + " s";
      return false;
    }
    pollfd fds[2] = {{from_child_, POLLIN, 0}, {written < request.size() ? to_child_ : -1, POLLOUT, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (rc < 0 && errno != EINTR) throw Error(describe() + ": poll: " + std::strerror(errno));
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

std::string LineProgram::ask(const std::string& request, int64_t step) {
  const std::string line = request + "\n";
  for (;;) {
    if (pgid_ <= 0) start();
    std::string reply, why;
    if (exchange(line, reply, why)) return reply;
    stop();
    if (restarts_ >= max_restarts_)
      throw Error(describe() + ": " + why + "; gave up after " + std::to_string(restarts_) + " restart(s) (" + restarts_key_ + " = " +
                  std::to_string(max_restarts_) + ")");
    ++restarts_;
    std::fprintf(stderr, "warning: %s: %s; restarting it (%d of %d) and sending step %lld's request again\n", describe().c_str(),
                 why.c_str(), restarts_, max_restarts_, static_cast<long long>(step));
  }
}

}  // namespace grpo
