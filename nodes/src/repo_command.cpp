// Runs on a git repository from the command line: the repository, base and
// branch a run works on (`--repo`, `--base`, `--branch`), the decision on
// its changes once it has run (asked on the terminal, or `--yes`), and
// `troupe approve` / `troupe reject` from any shell afterwards.

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "commands.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/git.hpp"
#include "troupe/runtime/process.hpp"
#include "troupe/runtime/run_dir.hpp"

namespace troupe::cli {

namespace {

// Lines of each change's diff the summary shows.
constexpr size_t shown_diff_lines = 12;

std::string plural(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// What the run's changes are, as the terminal shows them before asking;
// what the run wrote is shown with control characters made spaces.
std::string change_summary(const std::string& run_dir, const change_set& c) {
  auto t = [](const std::string& s) { return terminal_text(s); };
  std::string out = "Changes of run " + c.run_id + ", on "
                    + c.base.substr(0, 12) + ", for branch " + t(c.branch)
                    + ":\n";
  for (auto& x : c.changes) {
    out += "\n  " + t(x.id) + " (" + t(x.persona.empty() ? "none" : x.persona)
           + "): " + t(x.title) + "\n    " + plural(x.files.size(), "file")
           + ", +" + std::to_string(x.added) + " -" + std::to_string(x.removed)
           + ":";
    for (auto& f : x.files)
      out += " " + t(f);
    out += "\n";
    std::string diff;
    if (!read_small_file(run_dir + "/" + x.diff_file, max_diff_bytes, diff)
           .empty())
      continue;
    auto head = diff_head(diff, shown_diff_lines);
    size_t pos = 0;
    while (pos < head.size()) {
      auto end = head.find('\n', pos);
      out += "      " + t(head.substr(pos, end - pos)) + "\n";
      pos = end + 1;
    }
  }
  return out;
}

// The run directory of run `id` (or the one its start names) in `repo`.
bool find_run_dir(const std::string& repo, const std::string& id,
                  std::string& dir) {
  auto runs = repo + "/.troupe/runs";
  if (id.empty() || id.find('/') != std::string::npos) {
    std::cerr << "troupe: \"" << id << "\" is not a run id\n";
    return false;
  }
  if (std::filesystem::is_directory(runs + "/" + id)) {
    dir = runs + "/" + id;
    return true;
  }
  std::error_code ec;
  std::vector<std::string> found;
  for (auto& e : std::filesystem::directory_iterator(runs, ec))
    if (e.path().filename().string().compare(0, id.size(), id) == 0)
      found.push_back(e.path().string());
  if (found.size() == 1) {
    dir = found.front();
    return true;
  }
  std::cerr << "troupe: "
            << (found.empty() ? "no run " + id + " in " + runs
                              : "\"" + id + "\" names several runs in " + runs)
            << '\n';
  return false;
}

int decide(const std::string& run_dir, bool approve) {
  change_decision d;
  auto why = decide_changes(process_runner::shared(), run_dir, approve, d);
  if (!why.empty()) {
    std::cerr << "troupe: " << (approve ? "approving" : "rejecting")
              << " failed: " << why
              << (approve && d.decision.empty() ? "; no branch was changed"
                                                : "")
              << '\n';
    return exit_run_failed;
  }
  if (approve)
    std::cerr << "troupe: committed " << plural(d.commits.size(), "change")
              << " onto branch " << d.branch << '\n';
  else
    std::cerr << "troupe: rejected; no branch was changed, and the diffs stay "
                 "in "
              << run_dir << "/diffs\n";
  return exit_ok;
}

enum class waited { answer, decided, nothing };

// Waits for a line on the terminal, a decision taken from another shell
// (`decision.json` appearing in `run_dir`), or Ctrl-C (the signals are
// blocked in every thread: a signalfd takes them here).
waited wait_for_answer(const std::string& run_dir, std::string& answer) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  int ifd = ::inotify_init1(IN_CLOEXEC);
  if (ifd >= 0)
    ::inotify_add_watch(ifd, run_dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
  auto done = [&](waited w) {
    if (sfd >= 0)
      ::close(sfd);
    if (ifd >= 0)
      ::close(ifd);
    return w;
  };
  for (;;) {
    // Decided before the watch began?
    change_decision d;
    if (read_decision(run_dir, d).empty() && !d.decision.empty())
      return done(waited::decided);
    pollfd fds[3]
      = {{STDIN_FILENO, POLLIN, 0}, {ifd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      return done(waited::nothing);
    }
    if (fds[2].revents != 0)
      return done(waited::nothing);
    if (fds[0].revents != 0)
      return done(std::getline(std::cin, answer) ? waited::answer
                                                 : waited::nothing);
    if (fds[1].revents != 0) {
      char buf[4096];
      [[maybe_unused]] auto n = ::read(ifd, buf, sizeof buf);
    }
  }
}

} // namespace

bool prepare_repository(const run_flags& flags, const repo_spec& planned,
                        repo_options& out) {
  // The command line's over the plan's; the plan's path is relative to
  // the plan file.
  auto repo = flags.repo;
  std::string named = "--repo";
  if (repo.empty() && !planned.path.empty()) {
    named
      = (flags.plan_file.empty() ? std::string{"the plan"} : flags.plan_file)
        + ": repo";
    repo = planned.path;
    if (repo.front() != '/' && !flags.plan_file.empty()) {
      auto dir = std::filesystem::path{flags.plan_file}.parent_path();
      repo = (dir.empty() ? std::filesystem::path{"."} : dir) / repo;
    }
  }
  auto base = flags.base.empty() ? planned.base : flags.base;
  auto branch = flags.branch.empty() ? planned.branch : flags.branch;
  if (repo.empty()) {
    if (!flags.base.empty() || !flags.branch.empty()) {
      std::cerr << (flags.base.empty() ? "--branch" : "--base")
                << ": needs --repo\n";
      return false;
    }
    return true;
  }
  // A runner of its own, gone before the run blocks the signals that the
  // shared one's thread must never take.
  process_runner runner;
  std::string why;
  if (!std::filesystem::is_directory(repo)) {
    std::cerr << named << ": " << repo << " is not a directory\n";
    return false;
  }
  if (!find_repository(runner, repo, out.path, why)) {
    std::cerr << named << ": " << repo << ": " << why << '\n';
    return false;
  }
  if (!resolve_commit(runner, out.path, base.empty() ? "HEAD" : base, out.base,
                      why)) {
    std::cerr << (flags.base.empty() && !planned.base.empty() ? "repo.base"
                                                              : "--base")
              << ": " << why
              << (base.empty() ? " (a repository with no commit yet?)" : "")
              << '\n';
    return false;
  }
  if (!branch.empty() && !valid_branch(runner, out.path, branch, why)) {
    std::cerr << (flags.branch.empty() ? "repo.branch" : "--branch") << ": "
              << why << '\n';
    return false;
  }
  out.branch = branch;
  out.url = planned.url;
  out.approved = flags.yes;
  out.author_name = configuration().git_author_name;
  out.author_email = configuration().git_author_email;
  return true;
}

int settle_changes(const run_report& report, const run_flags& flags) {
  if (report.run_dir.empty() || report.status != run_status::succeeded)
    return exit_ok;
  if (!report.commit_error.empty()) {
    std::cerr << "troupe: the changes were not committed: "
              << report.commit_error << "; they wait in " << report.run_dir
              << '\n';
    return exit_run_failed;
  }
  if (report.approval == "committed") {
    std::cerr << "troupe: committed " << plural(report.commits.size(), "change")
              << " onto branch " << report.branch << '\n';
    return exit_ok;
  }
  if (report.approval != "awaiting")
    return exit_ok;
  change_set c;
  if (auto why = read_change_set(report.run_dir, c); !why.empty()) {
    std::cerr << "troupe: " << why << '\n';
    return exit_run_failed;
  }
  if (c.changes.empty()) {
    std::cerr << "troupe: the run changed no file; nothing to commit\n";
    return exit_ok;
  }
  auto later = "troupe approve " + report.run_id + " --repo " + c.repo
               + "` commits them, `troupe reject " + report.run_id + " --repo "
               + c.repo + "` drops them";
  if (!isatty(STDIN_FILENO)) {
    std::cerr << "troupe: the run's changes await approval: `" << later << '\n';
    return exit_ok;
  }
  std::cerr << change_summary(report.run_dir, c) << "\nCommit "
            << plural(c.changes.size(), "change") << " onto branch " << c.branch
            << "? [y/N] (or `troupe approve` from another shell) "
            << std::flush;
  std::string answer;
  switch (wait_for_answer(report.run_dir, answer)) {
  case waited::answer:
    break;
  case waited::decided: {
    change_decision d;
    read_decision(report.run_dir, d);
    std::cerr << "\ntroupe: " << d.decision << " from another shell"
              << (d.decision == "committed"
                    ? ": " + plural(d.commits.size(), "change")
                        + " onto branch " + d.branch
                    : std::string{})
              << '\n';
    return exit_ok;
  }
  case waited::nothing:
    std::cerr << "\ntroupe: not committed; `" << later << '\n';
    return exit_ok;
  }
  bool yes = answer == "y" || answer == "Y" || answer == "yes";
  if (!yes) {
    std::cerr << "troupe: not committed; `" << later << '\n';
    return exit_ok;
  }
  return decide(report.run_dir, true);
}

int approve_command(const approve_flags& flags) {
  auto& runner = process_runner::shared();
  std::string top, why;
  auto where = flags.repo.empty() ? current_dir() : flags.repo;
  if (!find_repository(runner, where, top, why)) {
    std::cerr << "troupe: " << where << ": " << why
              << (flags.repo.empty() ? " (pass --repo)" : "") << '\n';
    return exit_bad_input;
  }
  std::string dir;
  if (!find_run_dir(top, flags.run_id, dir))
    return exit_bad_input;
  change_set c;
  if (auto e = read_change_set(dir, c); !e.empty()) {
    std::cerr << "troupe: run " << flags.run_id
              << " has no changes to decide on: " << e << '\n';
    return exit_bad_input;
  }
  return decide(dir, flags.approve);
}

} // namespace troupe::cli
