#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace troupe::test {

/// A program started in the background: its stdout and stderr are read
/// line by line, it is stopped by PID at the end (SIGKILL if still there).
class background {
public:
  explicit background(const std::vector<std::string>& argv) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<std::string> args = argv;
    std::vector<char*> cargs;
    for (auto& a : args)
      cargs.push_back(a.data());
    cargs.push_back(nullptr);
    auto rc = ::posix_spawn(&pid_, cargs[0], &fa, &attr, cargs.data(),
                            environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (rc != 0)
      throw std::runtime_error("cannot start " + args[0]);
  }

  ~background() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  background(const background&) = delete;
  background& operator=(const background&) = delete;

  pid_t pid() const {
    return pid_;
  }

  /// The next line on stdout (`err` false) or stderr; empty at end of file
  /// or when `limit` passes first.
  std::string line(bool err = false,
                   std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    auto fd = err ? err_ : out_;
    auto& buf = err ? err_buf_ : out_buf_;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        auto l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        (err ? err_seen_ : out_seen_) += l + "\n";
        return l;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return {};
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      char chunk[4096];
      auto n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0)
        return {};
      buf.append(chunk, static_cast<size_t>(n));
    }
  }

  /// Reads stderr until a line contains `text`; false if it never does.
  bool wait_for_err(const std::string& text,
                    std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto l = line(true, std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now()));
      if (l.find(text) != std::string::npos)
        return true;
      if (l.empty() && eof(err_))
        return false;
    }
    return false;
  }

  /// Everything read from stderr so far, and the rest once it has exited.
  std::string err_text() {
    drain(err_, err_buf_);
    return err_seen_ + err_buf_;
  }

  void signal(int sig) {
    ::kill(pid_, sig);
  }

  /// Waits for the exit; its code, 128 + signal, or -1 past `limit`.
  int wait(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int status = 0;
      auto r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status)
                                 : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return -1;
      // Its stderr closes when it exits; until then keep reading it so a
      // chatty process never blocks on a full pipe.
      pollfd p{err_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char chunk[4096];
        auto n = ::read(err_, chunk, sizeof(chunk));
        if (n > 0)
          err_buf_.append(chunk, static_cast<size_t>(n));
      }
    }
  }

private:
  bool eof(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP)
           && !(p.revents & POLLIN);
  }

  void drain(int fd, std::string& buf) {
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0)
        return;
      char chunk[4096];
      auto n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0)
        return;
      buf.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool reaped_ = false;
  std::string out_buf_;
  std::string err_buf_;
  std::string out_seen_;
  std::string err_seen_;
};

} // namespace troupe::test
