#include "troupe/runtime/files.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace troupe {

std::string current_dir() {
  char buf[4096];
  return getcwd(buf, sizeof(buf)) != nullptr ? buf : ".";
}

namespace {

std::error_code last_error() {
  return {errno, std::generic_category()};
}

// The file a rename has to replace: a symbolic link's target, so that the
// link stays a link.
std::string resolve(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) != nullptr)
      return buf;
  }
  return path;
}

// True when `path` exists as something a rename must not replace: a FIFO,
// a device or a socket is written where it is. A directory is not: renaming
// over it fails, which is the error to report.
bool written_in_place(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)
         && !S_ISDIR(st.st_mode);
}

// Gives a file replacing `target` the permissions `target` has now.
void keep_mode(const std::string& target, int fd) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    ::fchmod(fd, st.st_mode & 07777);
}

// Makes a rename in the directory of `path` survive a crash; some file
// systems cannot sync a directory, and then there is nothing more to do.
void sync_dir(const std::string& path) {
  auto dir = fs::path{path}.parent_path();
  if (dir.empty())
    dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Creates a new file beside `target` for its next contents; -1 with errno
// set when it cannot.
int create_temp(const std::string& target, std::string& name) {
  static std::atomic<unsigned> counter{0};
  for (int tries = 0; tries < 100; ++tries) {
    name = target + ".tmp-" + std::to_string(::getpid()) + "-"
           + std::to_string(counter++);
    int fd
        = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0)
      keep_mode(target, fd);
    if (fd >= 0 || errno != EEXIST)
      return fd;
  }
  return -1;
}

std::error_code write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    auto n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return last_error();
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

std::error_code write_in_place(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0)
    return last_error();
  auto ec = write_all(fd, text);
  if (::close(fd) != 0 && !ec)
    ec = last_error();
  return ec;
}

} // namespace

std::error_code write_file_atomically(const std::string& path,
                                      std::string_view text) {
  auto target = resolve(path);
  if (written_in_place(target))
    return write_in_place(target, text);
  std::string temp;
  int fd = create_temp(target, temp);
  if (fd < 0)
    return last_error();
  auto ec = write_all(fd, text);
  // Synced before the rename: after a crash the name holds the old bytes
  // or all of the new ones.
  if (!ec && ::fsync(fd) != 0)
    ec = last_error();
  if (::close(fd) != 0 && !ec)
    ec = last_error();
  if (!ec && ::rename(temp.c_str(), target.c_str()) != 0)
    ec = last_error();
  if (ec) {
    ::unlink(temp.c_str());
    return ec;
  }
  sync_dir(target);
  return {};
}

staged_file::~staged_file() {
  discard();
}

std::error_code staged_file::open(const std::string& path) {
  discard();
  error_.clear();
  path_ = resolve(path);
  direct_ = written_in_place(path_);
  partial_ = direct_ ? path_ : path_ + ".partial";
  out_ = std::fopen(partial_.c_str(), "w");
  if (out_ == nullptr)
    return last_error();
  if (!direct_)
    keep_mode(path_, fileno(out_));
  return {};
}

void staged_file::fail(int err) {
  if (!error_)
    error_ = {err, std::generic_category()};
}

void staged_file::write(std::string_view text) {
  if (out_ == nullptr || error_)
    return;
  if (std::fwrite(text.data(), 1, text.size(), out_) != text.size())
    fail(errno);
}

void staged_file::flush() {
  if (out_ != nullptr && !error_ && std::fflush(out_) != 0)
    fail(errno);
}

std::error_code staged_file::commit() {
  if (out_ == nullptr)
    return error_ ? error_
                  : std::make_error_code(std::errc::bad_file_descriptor);
  flush();
  // A FIFO or a device cannot be synced, and has nothing to rename.
  if (!error_ && !direct_ && ::fsync(fileno(out_)) != 0)
    fail(errno);
  if (std::fclose(out_) != 0)
    fail(errno);
  out_ = nullptr;
  if (direct_)
    return error_;
  if (!error_ && ::rename(partial_.c_str(), path_.c_str()) != 0)
    fail(errno);
  if (error_) {
    ::unlink(partial_.c_str());
    return error_;
  }
  sync_dir(path_);
  return {};
}

void staged_file::discard() {
  if (out_ == nullptr)
    return;
  std::fclose(out_);
  out_ = nullptr;
  if (!direct_)
    ::unlink(partial_.c_str());
}

std::string read_small_file(const std::string& path, size_t max,
                            std::string& text) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return std::strerror(errno);
  if (S_ISDIR(st.st_mode))
    return "is a directory";
  if (!S_ISREG(st.st_mode))
    return "not a regular file";
  if (static_cast<uint64_t>(st.st_size) > max)
    return "too large: " + std::to_string(st.st_size) + " bytes (at most "
           + std::to_string(max) + ")";
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::strerror(errno);
  std::ostringstream buf;
  buf << in.rdbuf();
  text = buf.str();
  return {};
}

} // namespace troupe
