// Commands on the runs a journal holds: runs, report.

#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/journal.hpp"

namespace troupe::cli {

std::string journal_flags::resolve() const {
  if (off)
    return {};
  return path.empty() ? default_journal_path(".") : path;
}

bool open_journal(const journal_flags& flags, journal::access how,
                  std::shared_ptr<journal>& out) {
  auto path = flags.resolve();
  if (path.empty())
    return true;
  try {
    out = journal::open(path, how);
    return true;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return false;
  }
}

namespace {

// Opens the journal to read, or says why not.
std::unique_ptr<journal> open_to_read(const journal_flags& flags) {
  auto path = flags.path.empty() ? default_journal_path(".") : flags.path;
  try {
    return journal::open_read_only(path);
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return nullptr;
  }
}

std::string local_time(double unix_s) {
  auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// A run's status as the journal tells it: one still `running` there
// that no process runs is `interrupted` (`troupe resume` continues it).
std::string shown_status(journal& j, const journaled_run& r) {
  if (r.status == "running" && !j.run_owner(r.id))
    return "interrupted";
  return r.status;
}

nlohmann::json run_json(journal& j, const journaled_run& r) {
  return {{"id", r.id},
          {"plan", r.plan_name},
          {"status", shown_status(j, r)},
          {"started_at", r.started_at},
          {"finished_at", r.finished_at},
          {"workstreams", r.workstreams},
          {"ended", r.ended}};
}

} // namespace

int runs_command(const runs_flags& flags) {
  if (!flags.coordinator.empty())
    return remote_runs(flags);
  auto j = open_to_read(flags.journal);
  if (!j)
    return exit_bad_input;
  try {
    auto runs = j->runs();
    if (flags.json) {
      auto out = nlohmann::json::array();
      for (auto& r : runs)
        out.push_back(run_json(*j, r));
      std::cout << json_text(out, 2) << '\n';
      return exit_ok;
    }
    if (runs.empty()) {
      std::cout << "no runs in " << j->path() << '\n';
      return exit_ok;
    }
    std::printf("%-36s %-11s %-19s %9s  %s\n", "RUN", "STATUS", "STARTED",
                "PROGRESS", "PLAN");
    for (auto& r : runs) {
      auto progress = std::to_string(r.ended) + "/"
                      + std::to_string(r.workstreams);
      std::printf("%-36s %-11s %-19s %9s  %s\n", r.id.c_str(),
                  shown_status(*j, r).c_str(),
                  local_time(r.started_at).c_str(),
                  progress.c_str(), terminal_text(r.plan_name).c_str());
    }
    return exit_ok;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_run_failed;
  }
}

int report_command(const runs_flags& flags) {
  if (!flags.coordinator.empty())
    return remote_report(flags);
  auto j = open_to_read(flags.journal);
  if (!j)
    return exit_bad_input;
  try {
    auto run = j->find_run(flags.run_id);
    if (!run) {
      std::cerr << "troupe: no run " << flags.run_id << " in " << j->path()
                << '\n';
      return exit_bad_input;
    }
    auto report = j->report(run->id);
    if (!report) {
      auto status = shown_status(*j, *run);
      std::cerr << "troupe: run " << run->id << " has not finished (it is "
                << status << "); `troupe "
                << (status == "interrupted" ? "resume " : "status ")
                << run->id << "` "
                << (status == "interrupted" ? "continues it" : "shows where "
                                                               "it is")
                << '\n';
      return exit_run_failed;
    }
    if (flags.json)
      std::cout << json_text(*report, 2) << '\n';
    else
      std::cout << report->markdown << std::flush;
    return report->status == run_status::succeeded ? exit_ok
                                                   : exit_run_failed;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_run_failed;
  }
}

} // namespace troupe::cli
