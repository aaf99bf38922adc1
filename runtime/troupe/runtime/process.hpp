#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace troupe {

/// A shell command to run in its own process group.
struct process_request {
  /// Run by `/bin/sh -c`.
  std::string command;
  /// Working directory; empty keeps the caller's.
  std::string cwd;
  /// Added to (or replacing in) the caller's environment.
  std::map<std::string, std::string> env;
  /// Zero means no limit.
  std::chrono::milliseconds timeout{0};
  /// How long SIGTERM gets before SIGKILL when the command is stopped.
  std::chrono::milliseconds kill_grace{2000};
  /// Bytes kept of each of stdout and stderr (the tail).
  size_t output_limit = 64 * 1024;
  /// What the command reads on stdin, written as it reads and then closed;
  /// without it, stdin is /dev/null.
  std::optional<std::string> input;
  /// Called with each line of stdout (without its newline) as it arrives,
  /// from the runner's thread; a last line without a newline comes when
  /// the command ends. Lines are cut at `line_limit` bytes (the rest of a
  /// cut line is skipped), so memory stays bounded whatever is printed.
  std::function<void(std::string_view line)> on_line;
  size_t line_limit = 1 << 20;
};

/// How a command ended.
struct process_outcome {
  /// Exit status, or -1 when a signal ended it (see `signal`).
  int exit_code = -1;
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  /// Set when the command could not be started at all.
  std::string spawn_error;
  std::string out;
  std::string err;
  /// Bytes dropped from the front of `out` and `err` to respect the cap.
  size_t dropped = 0;
  std::chrono::steady_clock::duration wall{};
};

/// Runs commands without blocking anybody: one thread waits on every child's
/// exit (pidfd) and output (pipes), enforces timeouts, and calls each
/// request's callback once, from that thread. When a command's main process
/// ends, whatever it left running is killed, in its process group or not;
/// so is everything when the runner's process dies, however it dies.
class process_runner {
public:
  using callback = std::function<void(process_outcome)>;

  process_runner();
  ~process_runner();
  process_runner(const process_runner&) = delete;
  process_runner& operator=(const process_runner&) = delete;

  /// The runner the built-in executors share.
  static process_runner& shared();

  /// Starts `req`; `done` runs once it has ended. Returns an id for `cancel`.
  uint64_t start(process_request req, callback done);

  /// Stops a running command: SIGTERM to its group, SIGKILL after the grace.
  void cancel(uint64_t id);

  /// Kills every running command and all it started at once; safe to call
  /// from any thread, for a process about to exit.
  void kill_all();

  /// Number of commands still running.
  size_t running() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
