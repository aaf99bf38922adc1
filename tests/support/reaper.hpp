#pragma once

#include <chrono>
#include <fstream>
#include <string>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace troupe::test {

/// Makes this process the reaper of orphaned descendants, so a test can
/// wait for a grandchild that a killed command left behind.
inline void become_subreaper() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/// True once `pid` has exited: reaped by us (as subreaper), or no longer
/// present at all. Waits at most `limit` for the kernel to finish it.
inline bool process_gone(pid_t pid, std::chrono::milliseconds limit
                                    = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return true;
    if (r < 0 && ::kill(pid, 0) != 0)
      return true; // not our child and gone
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    // Not yet: the kill was sent, the kernel is still tearing it down.
    ::usleep(10000);
  }
}

/// Reads a pid a command wrote to `file`; -1 if none.
inline pid_t read_pid(const std::string& file) {
  std::ifstream in{file};
  pid_t pid = -1;
  in >> pid;
  return pid;
}

} // namespace troupe::test
