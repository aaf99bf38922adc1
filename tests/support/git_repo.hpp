#pragma once

// A real git repository in a temp dir, for tests of runs on a repository,
// and what a user would notice changed in it.

#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include <sys/stat.h>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

class git_repo {
public:
  /// A repository with one commit holding `files` (path to content).
  explicit git_repo(const std::map<std::string, std::string>& files) {
    git("init -q -b main .");
    git("config user.name Tester");
    git("config user.email tester@example.com");
    for (auto& [path, text] : files)
      write(path, text);
    git("add -A");
    git("commit -q -m initial");
  }

  std::string str() const {
    return dir_.str();
  }

  const temp_dir& dir() const {
    return dir_;
  }

  /// Runs `git ARGS` (a shell line) here; throws if it fails.
  std::string git(const std::string& args) const {
    auto r = try_git(args);
    if (r.exit_code != 0)
      throw std::runtime_error("git " + args + ": " + r.err);
    return r.out;
  }

  cli_result try_git(const std::string& args) const {
    // Looking must not change what is looked at: no index refresh.
    return run_shell("GIT_OPTIONAL_LOCKS=0 git " + args, dir_.str());
  }

  /// Writes `text` (bytes) to `path` in the working tree.
  void write(const std::string& path, const std::string& text) const {
    auto p = dir_.path() / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out{p, std::ios::binary};
    out << text;
  }

  std::string read(const std::string& path) const {
    std::ifstream in{dir_.path() / path, std::ios::binary};
    return {std::istreambuf_iterator<char>(in),
            std::istreambuf_iterator<char>()};
  }

  /// Every file of the working tree but git's and Troupe's own, with its
  /// mode and bytes: what a user sees of it.
  std::map<std::string, std::string> tree() const {
    std::map<std::string, std::string> out;
    for (auto i = std::filesystem::recursive_directory_iterator{dir_.path()};
         i != std::filesystem::recursive_directory_iterator{}; ++i) {
      auto rel = i->path().lexically_relative(dir_.path()).string();
      if (rel == ".git" || rel == ".troupe") {
        i.disable_recursion_pending();
        continue;
      }
      if (!i->is_regular_file())
        continue;
      struct stat st;
      ::stat(i->path().c_str(), &st);
      out[rel] = std::to_string(st.st_mode) + ":" + read(rel);
    }
    return out;
  }

  /// What else a user would notice: the index, the branch checked out,
  /// the stash, every ref and the worktrees.
  std::string state() const {
    return git("ls-files -s") + "HEAD " + git("symbolic-ref HEAD")
           + git("rev-parse HEAD") + "stash " + git("stash list") + "refs "
           + git("for-each-ref") + "status " + git("status --porcelain")
           + "worktrees " + git("worktree list --porcelain");
  }

  /// Branches made by runs (`troupe/...`).
  std::string run_branches() const {
    return git("for-each-ref --format='%(refname)' refs/heads/troupe");
  }

private:
  temp_dir dir_;
};

} // namespace troupe::test
