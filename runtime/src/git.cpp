#include "troupe/runtime/git.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "git_process.hpp"
#include "process_executor.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe {

using namespace detail;

namespace {

// The tree of what `dir`'s worktree holds now, new files included.
bool write_tree(process_runner& runner, const std::string& dir,
                std::string& tree, std::string& why) {
  auto add = git(runner, dir, {"add", "-A", "."});
  if (!add.ok) {
    why = "git add: " + said(add.err);
    return false;
  }
  auto w = git(runner, dir, {"write-tree"});
  if (!w.ok) {
    why = "git write-tree: " + said(w.err);
    return false;
  }
  tree = first_line(w.out);
  return true;
}

// The change from tree `from` to tree `to` as a diff git can apply again,
// binary files and renames included, at most `limit` bytes.
git_outcome diff_trees(process_runner& runner, const std::string& dir,
                       const std::string& from, const std::string& to,
                       size_t limit) {
  git_call c;
  c.cwd = dir;
  c.args
    = {"diff",          "--binary",      "--full-index", "-M", "--no-color",
       "--no-ext-diff", "--no-textconv", from,           to};
  c.output_limit = limit;
  return git(runner, c);
}

// Applies `diff` to `dir`'s worktree and index, as a whole or not at all.
bool apply_patch(process_runner& runner, const std::string& dir,
                 const std::string& diff, std::string& why) {
  if (diff.empty())
    return true;
  auto a = git(runner, dir, {"apply", "--index", "--binary", "-"}, diff);
  if (a.ok)
    return true;
  // The lines around a change moved (another change in the same file):
  // a three-way merge may still place it.
  auto m = git(runner, dir, {"apply", "--3way", "--binary", "-"}, diff);
  if (m.ok)
    return true;
  why = said(a.err);
  return false;
}

bool make_worktree(process_runner& runner, const std::string& repo,
                   const std::string& base, const std::string& dir,
                   std::string& why) {
  auto w
    = git(runner, repo, {"worktree", "add", "--detach", "--quiet", dir, base});
  if (!w.ok) {
    why = "git worktree add: " + said(w.err);
    return false;
  }
  return true;
}

void remove_worktree(process_runner& runner, const std::string& repo,
                     const std::string& dir) {
  if (git(runner, repo, {"worktree", "remove", "--force", dir}).ok)
    return;
  // A read-only checkout, or directories the work made read-only: they
  // must be writable to be emptied.
  process_request chmod;
  chmod.command = "chmod -R u+w " + detail::sh_quoted(dir);
  chmod.timeout = git_timeout;
  wait_for(runner, std::move(chmod));
  if (git(runner, repo, {"worktree", "remove", "--force", dir}).ok)
    return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  git(runner, repo, {"worktree", "prune"});
}

} // namespace

attempt_worktree::attempt_worktree(process_runner& runner, workspace_spec spec,
                                   std::string dir, std::string cache)
    : runner_(runner),
      spec_(std::move(spec)),
      dir_(std::move(dir)),
      cache_(std::move(cache)) {
  git_dir_ = cache_.empty() ? spec_.repo : cache_;
}

bool attempt_worktree::fetch_base(std::string& why) {
  // One fetch at a time into the node's cache; the others then find the
  // commit there.
  std::error_code ec;
  std::filesystem::create_directories(cache_, ec);
  int fd
    = ::open((cache_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ec) {
    why = "cannot use the repository cache " + cache_ + ": "
          + (ec ? ec.message() : std::string{std::strerror(errno)});
    if (fd >= 0)
      ::close(fd);
    return false;
  }
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  auto fetched = [&] {
    if (!std::filesystem::exists(cache_ + "/HEAD")
        && !git(runner_, cache_, {"init", "-q", "--bare", "."}).ok) {
      why = "cannot make the repository cache " + cache_;
      return false;
    }
    auto commit = spec_.base + "^{commit}";
    if (git(runner_, cache_, {"cat-file", "-e", commit}).ok)
      return true;
    auto& from = spec_.url.empty() ? spec_.repo : spec_.url;
    auto f = git(runner_, cache_,
                 {"fetch", "-q", "--no-tags", "--no-write-fetch-head",
                  "--end-of-options", from, spec_.base});
    if (!f.ok) {
      why = "cannot fetch " + spec_.base.substr(0, 12) + " from " + from + ": "
            + said(f.err);
      return false;
    }
    return true;
  }();
  ::close(fd);
  return fetched;
}

attempt_worktree::~attempt_worktree() {
  remove();
}

bool attempt_worktree::open(std::string& why) {
  if (!cache_.empty() && !fetch_base(why))
    return false;
  if (!make_worktree(runner_, git_dir_, spec_.base, dir_, why))
    return false;
  made_ = true;
  if (!apply_patch(runner_, dir_, spec_.patch, why)) {
    why = "the run's integrated change does not apply: " + why;
    return false;
  }
  spec_.patch.clear();
  if (!write_tree(runner_, dir_, start_tree_, why))
    return false;
  if (!apply_patch(runner_, dir_, spec_.carry, why)) {
    why = "the change of its earlier iterations does not apply: " + why;
    return false;
  }
  spec_.carry.clear();
  if (spec_.mode == "read") {
    process_request chmod;
    chmod.command = "chmod -R a-w .";
    chmod.cwd = dir_;
    chmod.timeout = git_timeout;
    auto o = wait_for(runner_, std::move(chmod));
    if (o.exit_code != 0) {
      why = "cannot make the checkout read-only: " + first_line(o.err);
      return false;
    }
  }
  return true;
}

bool attempt_worktree::capture(std::string& diff, std::string& why) {
  std::string end_tree;
  if (!write_tree(runner_, dir_, end_tree, why))
    return false;
  auto d = diff_trees(runner_, dir_, start_tree_, end_tree, max_diff_bytes);
  if (!d.ok) {
    why = "git diff: " + said(d.err);
    if (d.err.find("output passed") != std::string::npos)
      why = "its change is bigger than the "
            + std::to_string(max_diff_bytes >> 20) + " MiB a change may be";
    return false;
  }
  diff = std::move(d.out);
  return true;
}

void attempt_worktree::remove() {
  if (!made_)
    return;
  made_ = false;
  remove_worktree(runner_, git_dir_, dir_);
}

integration_tree::integration_tree(process_runner& runner, std::string repo,
                                   std::string base, std::string dir)
    : runner_(runner),
      repo_(std::move(repo)),
      base_(std::move(base)),
      dir_(std::move(dir)) {
  // Made by `open`.
}

integration_tree::~integration_tree() {
  remove();
}

bool integration_tree::open(std::string& why) {
  if (!make_worktree(runner_, repo_, base_, dir_, why))
    return false;
  made_ = true;
  auto t = git(runner_, dir_, {"rev-parse", base_ + "^{tree}"});
  if (!t.ok) {
    why = "git rev-parse: " + said(t.err);
    return false;
  }
  base_tree_ = tree_ = first_line(t.out);
  return true;
}

bool integration_tree::reset(std::string& why) {
  auto r = git(runner_, dir_, {"read-tree", "--reset", "-u", tree_});
  auto c = git(runner_, dir_, {"clean", "-fdq"});
  if (!r.ok || !c.ok) {
    why = "cannot put the integration tree back: " + said(r.ok ? c.err : r.err);
    return false;
  }
  return true;
}

bool integration_tree::apply(const std::string& diff, std::string& why) {
  if (diff.empty())
    return true;
  if (!apply_patch(runner_, dir_, diff, why)) {
    std::string also;
    if (!reset(also))
      why += "; " + also;
    return false;
  }
  std::string tree;
  if (!write_tree(runner_, dir_, tree, why))
    return false;
  auto d = diff_trees(runner_, dir_, base_tree_, tree, 4 * max_diff_bytes);
  if (!d.ok) {
    why = "git diff: " + said(d.err);
    std::string also;
    if (!reset(also))
      why += "; " + also;
    return false;
  }
  tree_ = tree;
  patch_ = std::move(d.out);
  return true;
}

void integration_tree::remove() {
  if (!made_)
    return;
  made_ = false;
  remove_worktree(runner_, repo_, dir_);
}

} // namespace troupe
