#pragma once

// Git for runs on a repository: a worktree per attempt, its change captured
// as a diff, the diffs integrated onto one tree, and the commits made, all
// or nothing. Every call runs `git` on a process runner and waits for it:
// call these from a thread of their own (a detached actor), never from a
// scheduler's.

#include <cstdint>
#include <string>
#include <vector>

#include "troupe/protocol/result.hpp"

namespace troupe {

class process_runner;

/// The most bytes a workstream's change may take as a diff.
constexpr size_t max_diff_bytes = size_t{32} << 20;

/// What a diff changes, as `git apply --numstat` reads it: every path it
/// touches (both names of a rename), and the lines it adds and removes
/// (binary files count none).
struct diff_stat {
  std::vector<std::string> files;
  int64_t added = 0;
  int64_t removed = 0;
};

/// How `git` ended: `ok` when it exited 0; `out` its standard output,
/// `err` what it said (or why it could not run).
struct git_outcome {
  bool ok = false;
  std::string out;
  std::string err;
};

/// Runs `git ARGS` in `cwd` with `input` on its standard input, without
/// hooks, auto-gc or the caller's GIT_DIR, GIT_INDEX_FILE and the like;
/// `index_file`, when set, is the index it uses.
git_outcome run_git(process_runner& runner, const std::string& cwd,
                    const std::vector<std::string>& args,
                    const std::string& input = {},
                    const std::string& index_file = {});

/// The top directory of the repository `path` is in, and the full id of
/// commit `rev` there; false, saying why, when either is not so.
bool find_repository(process_runner& runner, const std::string& path,
                     std::string& top, std::string& why);
bool resolve_commit(process_runner& runner, const std::string& repo,
                    const std::string& rev, std::string& id, std::string& why);

/// Reads what `diff` changes; false, saying why, when git cannot read it.
bool read_diff_stat(process_runner& runner, const std::string& repo,
                    const std::string& diff, diff_stat& out, std::string& why);

/// One attempt's worktree: made at the run's base with its patches
/// applied, its change captured, then removed.
class attempt_worktree {
public:
  /// A worktree at `dir`, made from `spec.repo` itself, or with `cache`
  /// set, from that bare repository of the node's own, into which the
  /// base commit is fetched from `spec.url` (else `spec.repo`) first.
  attempt_worktree(process_runner& runner, workspace_spec spec, std::string dir,
                   std::string cache = {});
  ~attempt_worktree();
  attempt_worktree(const attempt_worktree&) = delete;
  attempt_worktree& operator=(const attempt_worktree&) = delete;

  /// Makes the worktree; false, saying why, when it cannot be made.
  bool open(std::string& why);

  /// The change the work made since `patch` was applied (with `carry`),
  /// at most `max_diff_bytes`; false, saying why, when it cannot be read
  /// or is too big.
  bool capture(std::string& diff, std::string& why);

  /// Removes the worktree and its entry in the repository; done by the
  /// destructor too.
  void remove();

  const std::string& dir() const {
    return dir_;
  }

private:
  bool fetch_base(std::string& why);

  process_runner& runner_;
  workspace_spec spec_;
  std::string dir_;
  /// The repository the worktree belongs to: `spec_.repo`, or the cache.
  std::string git_dir_;
  std::string cache_;
  std::string start_tree_;
  bool made_ = false;
};

/// The run's integration tree: a worktree at the base onto which accepted
/// changes are applied in the order they are accepted.
class integration_tree {
public:
  integration_tree(process_runner& runner, std::string repo, std::string base,
                   std::string dir);
  ~integration_tree();
  integration_tree(const integration_tree&) = delete;
  integration_tree& operator=(const integration_tree&) = delete;

  bool open(std::string& why);

  /// Applies `diff`; false, saying why, when it does not apply (a
  /// conflict), leaving the tree as it was.
  bool apply(const std::string& diff, std::string& why);

  /// Everything integrated so far, as one diff from the base.
  const std::string& patch() const {
    return patch_;
  }

  const std::string& dir() const {
    return dir_;
  }

  void remove();

private:
  bool reset(std::string& why);

  process_runner& runner_;
  std::string repo_;
  std::string base_;
  std::string dir_;
  std::string base_tree_;
  std::string tree_;
  std::string patch_;
  bool made_ = false;
};

/// One commit to make: a change and its message.
struct planned_commit {
  std::string diff;
  std::string message;
};

/// Makes `commits`, each on the one before, from `base` in `repo` and moves
/// `branch` to the last at once: either every commit lands or the branch
/// stays where it was. The branch must not exist yet, or point at `base`;
/// a branch checked out in some worktree is refused. `index_file` is a
/// scratch file for the commits' index. Sets `ids` to the commits made.
bool commit_changes(process_runner& runner, const std::string& repo,
                    const std::string& base, const std::string& branch,
                    const std::vector<planned_commit>& commits,
                    const std::string& author_name,
                    const std::string& author_email,
                    const std::string& index_file,
                    std::vector<std::string>& ids, std::string& why);

/// Whether `name` can be a branch; false, saying why, when not.
bool valid_branch(process_runner& runner, const std::string& repo,
                  const std::string& name, std::string& why);

} // namespace troupe
