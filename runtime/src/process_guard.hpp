#pragma once

// The guard a command runs under, and starting a command under one; for
// process.cpp.

#include <map>
#include <string>

#include <sys/types.h>

namespace troupe::detail {

/// What a guard tells its owner on the status pipe: records of two ints,
/// a kind and a value.
enum guard_report : int {
  /// The command's wait status.
  exited = 1,
  /// chdir to the working directory failed with this errno.
  no_cwd,
  /// execve failed with this errno.
  no_exec,
};

/// Becomes the guard of a command, in a child just forked from `owner`;
/// never returns.
///
/// The guard is a forked copy of its owner that never execs. It runs the
/// command (`argv`, `envp`, in `cwd` unless null) as its child, in a process
/// group of the command's own, with `in` (or /dev/null when negative) as
/// its stdin and `out` and `err` as its stdout and stderr, and is the reaper of everything the command starts
/// (PR_SET_CHILD_SUBREAPER), so even a daemon that left the group is still
/// its descendant. When the command's main process ends, when the owner
/// asks, or when the owner dies by any signal, SIGKILL included (the kernel
/// tells the guard through PR_SET_PDEATHSIG), the guard kills the command's
/// group and every descendant left, then exits. The owner talks to it with
/// signals (SIGTERM: stop the command gently; SIGUSR1: kill it), which it
/// takes from the owner only, and hears back on `status` (`guard_report`
/// records). Only async-signal-safe calls are made: the owner has threads.
[[noreturn]] void run_guard(pid_t owner, int in, int out, int err,
                            int status, const char* cwd, char** argv,
                            char** envp);

/// A command started under its guard: the guard's pid, a pidfd on it, and
/// this process's ends of the pipes, non-blocking (`in` is -1 without
/// input).
struct guarded_process {
  pid_t pid = -1;
  int pidfd = -1;
  int in = -1;
  int out = -1;
  int err = -1;
  int status = -1;
};

/// Starts `command` with `/bin/sh -c` under a guard (`run_guard`), in `cwd`
/// (empty: this process's), with this process's environment and `env` on
/// top, its stdin a pipe when `with_input` and /dev/null otherwise. False,
/// saying why in `error` and leaving nothing open, when it cannot.
bool start_guarded(const std::string& command, const std::string& cwd,
                   const std::map<std::string, std::string>& env,
                   bool with_input, guarded_process& out, std::string& error);

} // namespace troupe::detail
