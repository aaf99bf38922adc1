// The guard a command runs under (see process_guard.hpp). It runs in a
// forked copy of a process with threads, so everything here is
// async-signal-safe: system calls, no allocation, no locks.

#include "process_guard.hpp"

#include <cerrno>
#include <initializer_list>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace troupe::detail {

namespace {

void report(int fd, int kind, int value) {
  int record[2] = {kind, value};
  [[maybe_unused]] auto n = ::write(fd, record, sizeof(record));
}

// Appends `x` in decimal to the C string `buf` (room assumed).
void append_number(char* buf, long x) {
  size_t n = 0;
  while (buf[n] != '\0')
    ++n;
  char digits[24];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + x % 10);
    x /= 10;
  } while (x > 0);
  while (d > 0)
    buf[n++] = digits[--d];
  buf[n] = '\0';
}

// Kills the command's group and every process left below the guard (all
// of them are its children or were reparented to it), until none is left
// or a bound of rounds passes.
void kill_descendants(pid_t cmd) {
  ::kill(-cmd, SIGKILL);
  char path[64] = "/proc/self/task/";
  append_number(path, ::getpid());
  size_t n = 0;
  while (path[n] != '\0')
    ++n;
  const char tail[] = "/children";
  for (size_t k = 0; k < sizeof(tail); ++k)
    path[n + k] = tail[k];
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (int round = 0; round < 1000; ++round) {
    // Reap whatever died; stop once no child is left at all.
    for (;;) {
      int st = 0;
      auto r = ::waitpid(-1, &st, WNOHANG);
      if (r < 0 && errno == ECHILD)
        return;
      if (r <= 0)
        break;
    }
    // Kill every child there is now, and the groups they lead.
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return; // no children list: the group kill is all we can do
    char buf[4096];
    pid_t pid = 0;
    for (;;) {
      auto got = ::read(fd, buf, sizeof(buf));
      if (got <= 0)
        break;
      for (ssize_t k = 0; k < got; ++k) {
        if (buf[k] >= '0' && buf[k] <= '9') {
          pid = pid * 10 + (buf[k] - '0');
        } else if (pid > 0) {
          ::kill(-pid, SIGKILL);
          ::kill(pid, SIGKILL);
          pid = 0;
        }
      }
    }
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    ::close(fd);
    // Wait a moment for them to die (and for their orphans to arrive).
    timespec wait{0, 10 * 1000 * 1000};
    ::sigtimedwait(&chld, nullptr, &wait);
  }
}

// Closes every descriptor from `first` on.
void close_from(int first) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, first, ~0u, 0) == 0)
    return;
#endif
  rlimit lim{};
  int max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY
      && lim.rlim_cur < static_cast<rlim_t>(max))
    max = static_cast<int>(lim.rlim_cur);
  for (int fd = first; fd < max; ++fd)
    ::close(fd);
}

} // namespace

[[noreturn]] void run_guard(pid_t owner, int in, int out, int err,
                            int status, const char* cwd, char** argv,
                            char** envp) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  // An ignored signal is dropped even while blocked (the owner may run
  // under nohup, or ignore SIGCHLD): the guard waits for these.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGHUP, SIGCHLD, SIGTERM, SIGUSR1})
    ::sigaction(sig, &dfl, nullptr);
  // Out of the owner's group, so a terminal's signals to it (and the
  // owner's to its own group) pass the guard by.
  ::setpgid(0, 0);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // SIGHUP when the owner dies; it may have died already.
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() != owner)
    ::_exit(1);
  // stdin from its pipe or /dev/null, the pipes as stdout, stderr and fd
  // 3; nothing else of the owner's (sockets, other commands' pipes) stays
  // open here.
  if (in >= 0)
    in = ::fcntl(in, F_DUPFD, 10);
  out = ::fcntl(out, F_DUPFD, 10);
  err = ::fcntl(err, F_DUPFD, 10);
  status = ::fcntl(status, F_DUPFD, 10);
  int null = ::open("/dev/null", O_RDONLY);
  ::dup2(in >= 0 ? in : null, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::dup2(status, 3);
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  close_from(4);
  auto cmd = ::fork();
  if (cmd == 0) {
    ::setpgid(0, 0);
    // Should the guard itself be killed, the command goes with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int sig = 1; sig < NSIG; ++sig)
      ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      report(3, no_cwd, errno);
      ::_exit(127);
    }
    ::execve(argv[0], argv, envp);
    report(3, no_exec, errno);
    ::_exit(127);
  }
  // The command holds the pipes now: their ends come when it and what it
  // started close them (and a command that stops reading its stdin makes
  // its writer fail at once).
  null = ::open("/dev/null", O_RDONLY);
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::dup2(null, 2);
  if (cmd < 0) {
    report(3, no_exec, errno);
    ::_exit(1);
  }
  ::setpgid(cmd, cmd);
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGUSR1})
    sigaddset(&wanted, sig);
  for (;;) {
    siginfo_t info;
    if (::sigwaitinfo(&wanted, &info) < 0)
      continue;
    if (info.si_signo == SIGHUP)
      break; // the owner is gone
    if (info.si_signo == SIGTERM || info.si_signo == SIGUSR1) {
      if (info.si_pid != owner)
        continue; // only the owner gives orders
      if (info.si_signo == SIGUSR1)
        break;
      ::kill(-cmd, SIGTERM);
      continue;
    }
    // SIGCHLD: reap what ended, the command and orphans it left to us.
    bool done = false;
    for (;;) {
      int st = 0;
      auto r = ::waitpid(-1, &st, WNOHANG);
      if (r <= 0)
        break;
      if (r == cmd) {
        report(3, exited, st);
        done = true;
      }
    }
    if (done)
      break;
  }
  kill_descendants(cmd);
  ::_exit(0);
}

} // namespace troupe::detail
