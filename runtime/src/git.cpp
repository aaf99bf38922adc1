#include "troupe/runtime/git.hpp"

#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <system_error>

#include "process_executor.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe {

namespace {

// How long one git command may take.
constexpr auto git_timeout = std::chrono::minutes(30);

// Settings of every git command Troupe runs: no hooks of the repository's,
// no garbage collection behind its back, and files as they are stored.
const char* const git_settings
  = "-c core.hooksPath=/dev/null -c gc.auto=0 -c core.autocrlf=false "
    "-c core.fsmonitor=false -c maintenance.auto=false "
    "-c advice.detachedHead=false";

struct git_call {
  std::string cwd;
  std::vector<std::string> args;
  std::string input;
  std::string index_file;
  std::map<std::string, std::string> env;
  size_t output_limit = 1 << 20;
};

process_outcome wait_for(process_runner& runner, process_request req) {
  std::promise<process_outcome> done;
  auto result = done.get_future();
  runner.start(std::move(req),
               [&done](process_outcome o) { done.set_value(std::move(o)); });
  return result.get();
}

git_outcome git(process_runner& runner, const git_call& c) {
  process_request req;
  // The caller's GIT_DIR and the like would point git elsewhere.
  req.command = "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE "
                "GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES "
                "GIT_COMMON_DIR GIT_NAMESPACE GIT_CEILING_DIRECTORIES; ";
  if (!c.index_file.empty())
    req.command += "GIT_INDEX_FILE=" + detail::sh_quoted(c.index_file) + " ";
  req.command += "exec git ";
  req.command += git_settings;
  for (auto& a : c.args)
    req.command += " " + detail::sh_quoted(a);
  req.cwd = c.cwd;
  req.env = c.env;
  req.env["LC_ALL"] = "C";
  req.env["GIT_TERMINAL_PROMPT"] = "0";
  req.timeout = git_timeout;
  req.output_limit = c.output_limit;
  if (!c.input.empty())
    req.input = c.input;
  auto o = wait_for(runner, std::move(req));
  git_outcome r;
  r.ok = o.spawn_error.empty() && o.exit_code == 0 && o.dropped == 0;
  r.out = std::move(o.out);
  r.err = std::move(o.err);
  if (!o.spawn_error.empty())
    r.err = "git could not start: " + o.spawn_error;
  else if (o.timed_out)
    r.err = "git took longer than 30 minutes";
  else if (o.dropped != 0 && o.exit_code == 0)
    r.err = "its output passed " + std::to_string(c.output_limit) + " bytes";
  while (!r.err.empty() && (r.err.back() == '\n' || r.err.back() == ' '))
    r.err.pop_back();
  if (!r.ok && r.err.empty())
    r.err = "git exited " + std::to_string(o.exit_code);
  return r;
}

git_outcome git(process_runner& runner, const std::string& cwd,
                std::vector<std::string> args, std::string input = {}) {
  git_call c;
  c.cwd = cwd;
  c.args = std::move(args);
  c.input = std::move(input);
  return git(runner, c);
}

// The first line of `s`, without its newline.
std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// "fatal: x" as "x": what git said, for an error of ours.
std::string said(const std::string& err) {
  auto line = first_line(err);
  for (auto* prefix : {"fatal: ", "error: "})
    if (line.compare(0, std::string{prefix}.size(), prefix) == 0)
      return line.substr(std::string{prefix}.size());
  return line;
}

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

git_outcome run_git(process_runner& runner, const std::string& cwd,
                    const std::vector<std::string>& args,
                    const std::string& input, const std::string& index_file) {
  git_call c;
  c.cwd = cwd;
  c.args = args;
  c.input = input;
  c.index_file = index_file;
  return git(runner, c);
}

bool find_repository(process_runner& runner, const std::string& path,
                     std::string& top, std::string& why) {
  auto r = git(runner, path, {"rev-parse", "--show-toplevel"});
  if (!r.ok) {
    why = r.err.find("not a git repository") != std::string::npos
            ? "not in a git repository"
            : said(r.err);
    return false;
  }
  top = first_line(r.out);
  return true;
}

bool resolve_commit(process_runner& runner, const std::string& repo,
                    const std::string& rev, std::string& id, std::string& why) {
  if (rev.empty() || rev[0] == '-') {
    why = "\"" + rev + "\" is not a revision";
    return false;
  }
  auto r = git(runner, repo,
               {"rev-parse", "--verify", "--quiet", "--end-of-options",
                rev + "^{commit}"});
  if (!r.ok) {
    why = "no commit \"" + rev + "\" in " + repo;
    return false;
  }
  id = first_line(r.out);
  return true;
}

bool read_diff_stat(process_runner& runner, const std::string& repo,
                    const std::string& diff, diff_stat& out, std::string& why) {
  out = {};
  if (diff.empty())
    return true;
  auto r = git(runner, repo, {"apply", "--numstat", "-z", "-"}, diff);
  if (!r.ok) {
    why = "not a change git can read: " + said(r.err);
    return false;
  }
  // "added\tremoved\tpath\0", or for a rename "added\tremoved\t\0old\0new\0";
  // a binary file counts "-".
  auto& s = r.out;
  size_t i = 0;
  auto field = [&](char end) {
    auto j = s.find(end, i);
    if (j == std::string::npos)
      j = s.size();
    auto f = s.substr(i, j - i);
    i = j + 1;
    return f;
  };
  auto count = [](const std::string& n) -> int64_t {
    return n == "-" || n.empty() ? 0 : std::stoll(n);
  };
  while (i < s.size()) {
    auto added = field('\t');
    auto removed = field('\t');
    out.added += count(added);
    out.removed += count(removed);
    auto path = field('\0');
    if (path.empty()) {
      out.files.push_back(field('\0'));
      out.files.push_back(field('\0'));
    } else {
      out.files.push_back(path);
    }
  }
  return true;
}

attempt_worktree::attempt_worktree(process_runner& runner, workspace_spec spec,
                                   std::string dir)
    : runner_(runner), spec_(std::move(spec)), dir_(std::move(dir)) {
  // Only the change is needed once the worktree is made.
}

attempt_worktree::~attempt_worktree() {
  remove();
}

bool attempt_worktree::open(std::string& why) {
  if (!make_worktree(runner_, spec_.repo, spec_.base, dir_, why))
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
  remove_worktree(runner_, spec_.repo, dir_);
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

bool valid_branch(process_runner& runner, const std::string& repo,
                  const std::string& name, std::string& why) {
  auto r = git(runner, repo, {"check-ref-format", "--branch", name});
  if (!r.ok || name.empty() || name[0] == '-') {
    why = "\"" + name + "\" cannot be a branch name";
    return false;
  }
  return true;
}

bool commit_changes(process_runner& runner, const std::string& repo,
                    const std::string& base, const std::string& branch,
                    const std::vector<planned_commit>& commits,
                    const std::string& author_name,
                    const std::string& author_email,
                    const std::string& index_file,
                    std::vector<std::string>& ids, std::string& why) {
  ids.clear();
  auto ref = "refs/heads/" + branch;
  // A branch checked out somewhere would leave that worktree behind.
  auto list = git(runner, repo, {"worktree", "list", "--porcelain"});
  if (!list.ok) {
    why = "git worktree list: " + said(list.err);
    return false;
  }
  if (list.out.find("branch " + ref + "\n") != std::string::npos) {
    why = "branch " + branch
          + " is checked out in a worktree; Troupe does not move a branch "
            "that is checked out";
    return false;
  }
  std::string old;
  auto cur = git(runner, repo,
                 {"rev-parse", "--verify", "--quiet", ref + "^{commit}"});
  if (cur.ok) {
    old = first_line(cur.out);
    if (old != base) {
      why = "branch " + branch + " is at " + old.substr(0, 12)
            + ", not at the run's base " + base.substr(0, 12);
      return false;
    }
  }
  std::remove(index_file.c_str());
  git_call c;
  c.cwd = repo;
  c.index_file = index_file;
  c.env = {{"GIT_AUTHOR_NAME", author_name},
           {"GIT_AUTHOR_EMAIL", author_email},
           {"GIT_COMMITTER_NAME", author_name},
           {"GIT_COMMITTER_EMAIL", author_email}};
  auto step
    = [&](std::vector<std::string> args, std::string input, std::string& out) {
        c.args = std::move(args);
        c.input = std::move(input);
        auto r = git(runner, c);
        if (!r.ok) {
          why = "git " + c.args.front() + ": " + said(r.err);
          return false;
        }
        out = first_line(r.out);
        return true;
      };
  std::string parent = base, ignored;
  bool ok = step({"read-tree", base}, {}, ignored);
  for (size_t i = 0; ok && i < commits.size(); ++i) {
    auto& k = commits[i];
    std::string tree, commit;
    ok = (k.diff.empty()
          || step({"apply", "--cached", "--binary", "-"}, k.diff, ignored))
         && step({"write-tree"}, {}, tree)
         && step({"commit-tree", tree, "-p", parent, "-F", "-"}, k.message,
                 commit);
    if (ok) {
      ids.push_back(commit);
      parent = commit;
    } else {
      why = "commit " + std::to_string(i + 1) + " of "
            + std::to_string(commits.size()) + ": " + why;
    }
  }
  std::remove(index_file.c_str());
  if (ok && !commits.empty()) {
    // The one step that changes what anybody sees, and it is atomic: the
    // branch moves from where it was (or did not exist) to the last commit.
    std::string expected = old.empty() ? std::string(base.size(), '0') : old;
    ok = step({"update-ref", "-m", "troupe: commit the run's changes", ref,
               parent, expected},
              {}, ignored);
    if (!ok)
      why = "moving branch " + branch + ": " + why;
  }
  if (!ok)
    ids.clear();
  return ok;
}

} // namespace troupe
