#pragma once

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "troupe/runtime/process.hpp"

namespace troupe::test {

/// Quotes `s` for /bin/sh.
inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (auto c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// The lines of `text`, without their newlines.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// How a started program ended.
struct cli_result {
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
  /// The signal that ended it, if one did (`exit_code` is -1 then).
  int signal = 0;
};

/// Runs a shell command line (the program and its arguments, quoted) in
/// `cwd`, waiting at most `limit`; the process group is killed past it.
inline cli_result run_shell(const std::string& command_line,
                            const std::string& cwd = {},
                            std::chrono::seconds limit
                            = std::chrono::seconds(300)) {
  static process_runner runner;
  process_request req;
  req.command = command_line;
  req.cwd = cwd;
  req.timeout = limit;
  req.output_limit = 4 * 1024 * 1024;
  std::promise<process_outcome> done;
  auto f = done.get_future();
  runner.start(req, [&done](process_outcome o) { done.set_value(std::move(o)); });
  auto o = f.get();
  return {o.exit_code, o.out, o.err, o.timed_out, o.signal};
}

/// Runs the `troupe` executable with `args`.
inline cli_result run_troupe(const std::vector<std::string>& args,
                             const std::string& cwd = TROUPE_SOURCE_DIR,
                             const std::string& prefix = {}) {
  std::string line = prefix + "exec " + sh_quote(TROUPE_BINARY);
  for (auto& a : args)
    line += " " + sh_quote(a);
  return run_shell(line, cwd);
}

} // namespace troupe::test
