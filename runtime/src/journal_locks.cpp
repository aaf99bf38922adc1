// The journal's locks: who writes a journal, and who runs each run.

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "journal_locks.hpp"

namespace troupe::locks {

// The first line of a lock file: the pid of a process that held it.
std::string holder_of(int fd) {
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  holder = holder.substr(0, holder.find('\n'));
  return holder.empty() ? "unknown" : holder;
}

// Writes this process's pid into a lock file it holds, as a hint for
// whoever finds the lock taken; the lock itself holds regardless.
void sign(int fd) {
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    // Nothing to do: the hint is missing.
  }
}

// Takes `path`.lock, shared or exclusive, or says who holds it.
int take_lock(const std::string& path, journal::access how) {
  auto lock_path = path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw journal_error("cannot open journal " + path + ": cannot create "
                        + lock_path + ": " + std::strerror(errno));
  bool exclusive = how == journal::access::exclusive;
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
    if (exclusive)
      sign(fd);
    return fd;
  }
  auto err = errno;
  // Held exclusively, by a coordinator, if a shared lock is refused.
  auto holder = exclusive ? std::string{} : holder_of(fd);
  ::close(fd);
  if (err != EWOULDBLOCK)
    throw journal_error("cannot lock journal " + path + ": "
                        + std::strerror(err));
  if (!exclusive)
    throw journal_error("journal " + path
                        + " is in use by a troupe coordinator (pid " + holder
                        + "); stop it, or give this process another "
                          "--journal (or --no-journal)");
  throw journal_error("journal " + path
                      + " is in use by other troupe processes; a coordinator "
                        "needs a journal of its own: give it another "
                        "--journal (or --no-journal)");
}

setup_guard::setup_guard(int lock_fd, const std::string& path) : fd_(lock_fd) {
  // An open-file-description lock on the lock file's first byte: it does
  // not touch the flock() writers share, and like it it belongs to this
  // open file, so threads of one process exclude each other too.
  struct flock l = {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  l.l_start = 0;
  l.l_len = 1;
  while (::fcntl(fd_, F_OFD_SETLKW, &l) != 0)
    if (errno != EINTR)
      throw journal_error("cannot lock journal " + path
                          + " to set it up: " + std::strerror(errno));
}

setup_guard::~setup_guard() {
  struct flock l = {};
  l.l_type = F_UNLCK;
  l.l_whence = SEEK_SET;
  l.l_start = 0;
  l.l_len = 1;
  ::fcntl(fd_, F_OFD_SETLK, &l);
}

std::string run_lock_path(const std::string& journal_path,
                          const std::string& run_id) {
  auto dir = std::filesystem::path(journal_path).parent_path();
  return (dir / "runs" / (run_id + ".lock")).string();
}

} // namespace troupe::locks

namespace troupe {

using locks::holder_of;
using locks::run_lock_path;
using locks::sign;

void journal::claim_run(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (run_locks_.count(run_id) > 0)
    return;
  // Run ids name files here: nothing that could leave the directory.
  if (run_id.empty() || run_id.find('/') != std::string::npos
      || run_id[0] == '.')
    throw journal_error("run id " + run_id + " cannot be journaled");
  auto lock_path = run_lock_path(path_, run_id);
  std::error_code ec;
  std::filesystem::create_directories(
    std::filesystem::path(lock_path).parent_path(), ec);
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw journal_error("cannot lock run " + run_id + ": cannot create "
                        + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = holder_of(fd);
    ::close(fd);
    throw journal_error("run " + run_id
                        + " is running in another troupe process (pid "
                        + holder + ")");
  }
  sign(fd);
  run_locks_.emplace(run_id, fd);
}

std::optional<int> journal::run_owner(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (run_locks_.count(run_id) > 0)
    return ::getpid();
  int fd = ::open(run_lock_path(path_, run_id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::optional<int> owner;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    auto holder = holder_of(fd);
    char* end = nullptr;
    auto pid = std::strtol(holder.c_str(), &end, 10);
    if (end != holder.c_str() && pid > 0)
      owner = static_cast<int>(pid);
  }
  ::close(fd);
  return owner;
}

std::optional<int> journal::coordinator() {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  int fd = ::open((path_ + ".lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::optional<int> holder;
  // Only an exclusive holder refuses a shared lock.
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    auto text = holder_of(fd);
    char* end = nullptr;
    auto pid = std::strtol(text.c_str(), &end, 10);
    holder = end != text.c_str() && pid > 0 ? static_cast<int>(pid) : -1;
  }
  ::close(fd);
  return holder;
}

} // namespace troupe
