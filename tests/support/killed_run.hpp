#pragma once

// A `troupe run` killed with SIGKILL right after it journaled a given
// event (TROUPE_JOURNAL_KILL_AFTER), then resumed to its end.

#include <csignal>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

/// Runs `plan` in `dir`, journaled in `dir`, until the process is killed
/// after journaling `kill_after` (`KIND` or `KIND:SUBJECT`); resumes it and
/// returns the resumed run's JSON report (`dir`/report.json). The resumed
/// run must exit with `exit_code`.
inline nlohmann::json kill_and_resume(const temp_dir& dir,
                                      const std::string& plan,
                                      const std::string& kill_after,
                                      int exit_code = 0) {
  auto journal = dir.str() + "/journal.db";
  background first{{"/usr/bin/env", "TROUPE_JOURNAL_KILL_AFTER=" + kill_after,
                    TROUPE_BINARY, "run", plan, "-q", "--journal", journal,
                    "--workdir", dir.str()}};
  REQUIRE(first.wait() == 128 + SIGKILL);
  auto runs = run_troupe({"runs", "--json", "--journal", journal}, dir.str());
  REQUIRE(runs.exit_code == 0);
  auto id = nlohmann::json::parse(runs.out).at(0).at("id").get<std::string>();
  auto r = run_troupe(
    {"resume", id, "-q", "--journal", journal, "--report", "report.json"},
    dir.str());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == exit_code);
  return read_json_file(dir.path() / "report.json");
}

} // namespace troupe::test
