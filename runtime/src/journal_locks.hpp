#pragma once

// The journal's locks, as files beside it: PATH.lock (shared by writers,
// exclusive for a coordinator) and runs/ID.lock (whoever runs the run).
// Each holder writes its pid into the file, for whoever finds it taken.

#include <string>

#include "troupe/runtime/journal.hpp"

namespace troupe::locks {

/// The pid written in a lock file, or "unknown".
std::string holder_of(int fd);

/// Writes this process's pid into a lock file it holds.
void sign(int fd);

/// Takes `path`.lock, or throws journal_error saying who holds it.
int take_lock(const std::string& path, journal::access how);

/// Holds the setting up of a journal (its WAL mode and schema) to one
/// process at a time: SQLite refuses, rather than waits, a switch to WAL
/// while another connection sets the same new file up.
class setup_guard {
public:
  setup_guard(int lock_fd, const std::string& path);
  ~setup_guard();
  setup_guard(const setup_guard&) = delete;
  setup_guard& operator=(const setup_guard&) = delete;

private:
  int fd_;
};

/// The lock file of run `run_id` of the journal at `journal_path`.
std::string run_lock_path(const std::string& journal_path,
                          const std::string& run_id);

} // namespace troupe::locks
