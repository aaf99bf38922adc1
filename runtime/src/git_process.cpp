#include "git_process.hpp"

#include <future>

#include "process_executor.hpp"

namespace troupe::detail {

namespace {

// Settings of every git command Troupe runs: no hooks of the repository's,
// no garbage collection behind its back, and files as they are stored.
const char* const git_settings
  = "-c core.hooksPath=/dev/null -c gc.auto=0 -c core.autocrlf=false "
    "-c core.fsmonitor=false -c maintenance.auto=false "
    "-c advice.detachedHead=false";

} // namespace

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
                std::vector<std::string> args, std::string input) {
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

} // namespace troupe::detail
