#pragma once

// A run's directory (`.troupe/runs/<id>` by default) for a run on a git
// repository: its workspaces while it runs, the changes it accepted
// (`diffs/`), what committing them means (`changes.json`) and the decision
// taken on them (`decision.json`), so that approving or rejecting needs
// nothing but the directory and the repository.

#include <cstdint>
#include <string>
#include <vector>

namespace troupe {

class process_runner;

/// One workstream's accepted change, in the order its commit comes.
struct accepted_change {
  std::string id;
  std::string title;
  std::string persona;
  /// The commit's message.
  std::string message;
  /// The diff's file, relative to the run directory.
  std::string diff_file;
  std::vector<std::string> files;
  int64_t added = 0;
  int64_t removed = 0;
};

/// What approving a run commits, and where.
struct change_set {
  std::string run_id;
  std::string repo;
  std::string base;
  std::string branch;
  std::string author_name;
  std::string author_email;
  std::vector<accepted_change> changes;
};

/// What was decided about a run's changes: `committed` (with the commits,
/// oldest first) or `rejected`; empty while nobody decided.
struct change_decision {
  std::string decision;
  std::string branch;
  std::vector<std::string> commits;
};

/// The default run directory of run `id` in `repo`: `.troupe/runs/<id>`
/// under its top directory.
std::string default_run_dir(const std::string& repo, const std::string& id);

/// Writes `diff` as the run directory's diff file `name`; says why not, or
/// nothing.
std::string write_diff(const std::string& run_dir, const std::string& name,
                       const std::string& diff);

/// Writes and reads `changes.json`; say why not, or nothing.
std::string write_change_set(const std::string& run_dir, const change_set& c);
std::string read_change_set(const std::string& run_dir, change_set& c);

/// The decision taken so far (none: an empty one); says why it cannot be
/// read, or nothing.
std::string read_decision(const std::string& run_dir, change_decision& d);

/// Approves (`approve`) or rejects the run's changes, once: approving makes
/// one commit per change on the change set's branch, all or none of them;
/// rejecting leaves every branch as it is and keeps the diffs. Holds a lock
/// on the directory meanwhile, so two deciders cannot both commit. Says
/// why it could not, or nothing; `d` is the decision (an earlier one when
/// somebody decided first, which is an error).
std::string decide_changes(process_runner& runner, const std::string& run_dir,
                           bool approve, change_decision& d);

/// Lines of `diff` for a summary: its first `max_lines`, each cut at 200
/// bytes, made valid UTF-8.
std::string diff_head(const std::string& diff, size_t max_lines);

} // namespace troupe
