#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

namespace troupe {

/// The process's working directory, or "." when it cannot be told (gone,
/// or a path longer than 4095 bytes).
std::string current_dir();

/// Writes `text` to `path` so that a reader finds the previous file or the
/// new one, never a part: into a temporary file beside it, synced to disk,
/// then renamed over it. On failure `path` is untouched and the temporary
/// file is gone. A `path` that exists and is not a regular file (a FIFO, a
/// device such as /dev/stdout) cannot be replaced: it is written directly.
std::error_code write_file_atomically(const std::string& path,
                                      std::string_view text);

/// A file written bit by bit that appears under its name only once
/// complete: the text goes to `path` + ".partial" (which a user can tail),
/// and `commit` syncs it and renames it to `path`. Like
/// `write_file_atomically`, a `path` that exists and is not a regular file
/// is written directly. Destroyed without a commit, it removes what it
/// wrote.
class staged_file {
public:
  staged_file() = default;
  ~staged_file();
  staged_file(const staged_file&) = delete;
  staged_file& operator=(const staged_file&) = delete;

  /// Starts writing for `path`; on failure nothing was created.
  std::error_code open(const std::string& path);

  /// True between a successful `open` and `commit` or `discard`.
  bool is_open() const {
    return out_ != nullptr;
  }

  /// Where the text goes until it is committed.
  const std::string& partial_path() const {
    return partial_;
  }

  /// Appends `text`. After a failure, writes nothing more and `commit`
  /// reports the first error.
  void write(std::string_view text);

  /// Hands what was written so far to the system, so readers see it.
  void flush();

  /// Puts the file in place. On failure the previous file at `path` is
  /// untouched and the partial file is removed.
  std::error_code commit();

  /// Removes what was written, leaving `path` as it was.
  void discard();

private:
  void fail(int err);

  std::string path_;
  std::string partial_;
  std::FILE* out_ = nullptr;
  bool direct_ = false;
  std::error_code error_;
};

/// Reads the regular file `path`, at most `max` bytes, into `text`; says
/// why not, or nothing.
std::string read_small_file(const std::string& path, size_t max,
                            std::string& text);

} // namespace troupe
