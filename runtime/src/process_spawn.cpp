// Starting a command under its guard; the owner's side, for process.cpp.

#include "process_guard.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace troupe::detail {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

} // namespace

bool start_guarded(const std::string& command, const std::string& cwd_dir,
                   const std::map<std::string, std::string>& env,
                   bool with_input, guarded_process& out_proc,
                   std::string& error) {
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int status[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1],
                    &status[0], &status[1]})
      close_fd(*fd);
  };
  if ((with_input && ::pipe2(in, O_CLOEXEC) != 0)
      || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0
      || ::pipe2(status, O_CLOEXEC) != 0) {
    error = std::string{"pipe: "} + std::strerror(errno);
    close_all();
    return false;
  }
  // Environment: the caller's, with the request's entries on top.
  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      env_map.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  for (auto& [k, v] : env)
    env_map[k] = v;
  std::vector<std::string> env_strs;
  env_strs.reserve(env_map.size());
  for (auto& [k, v] : env_map)
    env_strs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strs)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh";
  std::string dash_c = "-c";
  std::string cmd = command;
  std::vector<char*> argv{sh.data(), dash_c.data(), cmd.data(), nullptr};
  const char* cwd = cwd_dir.empty() ? nullptr : cwd_dir.c_str();
  auto owner = ::getpid();
  auto pid = ::fork();
  if (pid == 0)
    run_guard(owner, in[0], out[1], err[1], status[1], cwd, argv.data(),
              envp.data());
  auto fork_errno = errno;
  // The guard holds the other ends now.
  for (int* fd : {&in[0], &out[1], &err[1], &status[1]})
    close_fd(*fd);
  if (pid < 0) {
    close_all();
    error = std::string{"cannot start a command (fork: "}
            + std::strerror(fork_errno) + ")";
    return false;
  }
  for (int fd : {in[1], out[0], err[0], status[0]})
    if (fd >= 0)
      ::fcntl(fd, F_SETFL, O_NONBLOCK);
  // glibc 2.36's <sys/pidfd.h> lacks C linkage; call the kernel directly.
  auto pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    // Without a pidfd its end would go unnoticed: stop it now instead.
    error = std::string{"cannot watch the command (pidfd_open: "}
            + std::strerror(errno) + ")";
    ::kill(-pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
    close_all();
    return false;
  }
  out_proc.pid = pid;
  out_proc.pidfd = pidfd;
  out_proc.in = in[1];
  out_proc.out = out[0];
  out_proc.err = err[0];
  out_proc.status = status[0];
  return true;
}

} // namespace troupe::detail
