#pragma once

// Running git for runtime/git*.cpp: every command with the same settings,
// from a thread that may wait.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "troupe/runtime/git.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe::detail {

/// How long one git command may take.
constexpr auto git_timeout = std::chrono::minutes(30);

/// One git command: its arguments (after `git` and Troupe's settings),
/// where it runs, its standard input, the index it uses (empty: the
/// worktree's own), extra environment, and the bytes of output kept.
struct git_call {
  std::string cwd;
  std::vector<std::string> args;
  std::string input;
  std::string index_file;
  std::map<std::string, std::string> env;
  size_t output_limit = 1 << 20;
};

/// Runs `req` on `runner` and waits for its end.
process_outcome wait_for(process_runner& runner, process_request req);

git_outcome git(process_runner& runner, const git_call& c);
git_outcome git(process_runner& runner, const std::string& cwd,
                std::vector<std::string> args, std::string input = {});

/// The first line of `s`, without its newline.
std::string first_line(const std::string& s);

/// "fatal: x" as "x": what git said, for an error of ours.
std::string said(const std::string& err);

} // namespace troupe::detail
