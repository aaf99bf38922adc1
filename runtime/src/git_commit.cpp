// Git for what a run on a repository starts and ends with: the repository
// and its base, what a diff changes, and the commits made on approval.

#include <cstdio>

#include "git_process.hpp"
#include "troupe/runtime/git.hpp"

namespace troupe {

using namespace detail;

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
