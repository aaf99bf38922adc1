#pragma once

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace troupe::test {

/// Makes this process the reaper of orphaned descendants, so a test can
/// wait for a grandchild that a killed command left behind.
inline void become_subreaper() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/// True once `pid` has exited: reaped by us (as subreaper), a zombie, or
/// no longer present at all. Waits at most `limit` for it, on the process
/// itself (a pidfd becomes readable when it exits).
inline bool process_gone(pid_t pid, std::chrono::milliseconds limit
                                    = std::chrono::milliseconds(5000)) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return errno == ESRCH; // gone, reaped already
  pollfd p{fd, POLLIN, 0};
  auto ready = ::poll(&p, 1, static_cast<int>(limit.count())) > 0;
  ::close(fd);
  if (!ready)
    return false;
  // Ours (as subreaper): reap it, so it is not left as a zombie.
  int status = 0;
  ::waitpid(pid, &status, WNOHANG);
  return true;
}

/// True while `pid` runs: it exists and is not a zombie.
inline bool process_running(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("State:", 0) == 0)
      return line.find('Z') == std::string::npos;
  return false;
}

/// Reads a pid a command wrote to `file`; -1 if none.
inline pid_t read_pid(const std::string& file) {
  std::ifstream in{file};
  pid_t pid = -1;
  in >> pid;
  return pid;
}

/// Reads a pid a command writes to the FIFO `file` (`echo $$ > file`),
/// waiting at most `limit` for it; -1 if none came.
inline pid_t read_pid_from_fifo(const std::string& file,
                                std::chrono::milliseconds limit) {
  // Open without waiting for a writer; poll says when it has written.
  auto fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return -1;
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string text;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || text.find('\n') != std::string::npos)
      break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    char chunk[64];
    auto n = ::read(fd, chunk, sizeof(chunk));
    if (n > 0)
      text.append(chunk, static_cast<size_t>(n));
    else if (n == 0)
      break; // the writer is done
  }
  ::close(fd);
  try {
    return text.empty() ? -1 : static_cast<pid_t>(std::stoi(text));
  } catch (const std::exception&) {
    return -1;
  }
}

} // namespace troupe::test
