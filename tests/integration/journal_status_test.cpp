// The journal read from other processes: `troupe status`, `logs` and
// `abort` on a run that `troupe run` or a coordinator is running.

#include <map>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/crash_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

TEST_CASE("status, logs and abort read a run in another process through the "
          "journal",
          "[integration][journal]") {
  crash_dir d;
  auto args = d.run_args(d.dir.str() + "/report.json");
  args.insert(args.begin(), {"/usr/bin/env", "HANG=b"});
  background troupe{args};
  REQUIRE(d.hanging_step() == "b");
  auto id = only_run(d.journal);
  auto status = run_troupe({"status", id, "--journal", d.journal, "--json"});
  REQUIRE(status.exit_code == 0);
  auto s = json::parse(status.out);
  CHECK(s.at("status") == "running");
  std::map<std::string, std::string> states;
  for (auto& w : s.at("workstreams"))
    states[w.at("id")] = w.at("status");
  CHECK(states["first"] == "succeeded");
  CHECK(states["b"] == "running");
  CHECK(states["last"] == "pending");
  auto logs = run_troupe({"logs", id, "first", "--journal", d.journal});
  CHECK(logs.exit_code == 0);
  CHECK_THAT(logs.out, Catch::Contains("== first attempt 1: succeeded"));
  CHECK_THAT(logs.out, Catch::Contains("first done"));
  auto none = run_troupe({"logs", id, "last", "--journal", d.journal});
  CHECK(none.exit_code == 1);
  CHECK_THAT(none.err, Catch::Contains("has no output yet"));
  // A follower in a third process sees the run to its end.
  background follower{{TROUPE_BINARY, "status", id.substr(0, 20), "--follow",
                       "--journal", d.journal}};
  auto aborted = run_troupe({"abort", id, "--journal", d.journal});
  CHECK(aborted.exit_code == 0);
  CHECK_THAT(aborted.err, Catch::Contains("asked process "
                                          + std::to_string(troupe.pid())));
  CHECK(troupe.wait() == 1);
  CHECK(read_json(d.dir.str() + "/report.json").at("status") == "cancelled");
  CHECK(follower.wait() == 1);
  auto after = run_troupe({"status", id, "--journal", d.journal, "--json"});
  CHECK(json::parse(after.out).at("status") == "cancelled");
  auto again = run_troupe({"abort", id, "--journal", d.journal});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("finished (cancelled)"));
}

TEST_CASE("status, logs and abort against a coordinator",
          "[integration][journal][cluster]") {
  crash_dir d;
  coordinator c{{"--slots", "0"}};
  background worker{{"/usr/bin/env", "HANG=b", TROUPE_BINARY, "--log-level",
                     "info", "worker", "--join", c.address(), "--name", "w1",
                     "--slots", "4"}};
  REQUIRE(worker.wait_for_err("joined coordinator"));
  background submitter{{TROUPE_BINARY, "submit", d.plan, "--coordinator",
                        c.address(), "--workdir", d.dir.str(), "-q",
                        "--report", d.dir.str() + "/report.json"}};
  REQUIRE(d.hanging_step() == "b");
  auto list = run_troupe({"status", "--json", "--coordinator", c.address()});
  REQUIRE(list.exit_code == 0);
  auto runs = json::parse(list.out);
  REQUIRE(runs.size() == 1);
  auto id = runs[0].at("run_id").get<std::string>();
  CHECK(runs[0].at("status") == "running");
  auto one = run_troupe({"status", id, "--json", "--coordinator",
                         c.address()});
  REQUIRE(one.exit_code == 0);
  CHECK(json::parse(one.out).at("total") == 6);
  auto logs = run_troupe({"logs", id, "first", "--coordinator", c.address()});
  CHECK(logs.exit_code == 0);
  CHECK_THAT(logs.out, Catch::Contains("first done"));
  background follower{{TROUPE_BINARY, "status", id, "--follow",
                       "--coordinator", c.address()}};
  REQUIRE(follower.wait_for_err("run " + id + " running"));
  auto aborted = run_troupe({"abort", id, "--coordinator", c.address()});
  CHECK(aborted.exit_code == 0);
  CHECK(submitter.wait() == 1);
  CHECK(read_json(d.dir.str() + "/report.json").at("status") == "cancelled");
  CHECK(follower.wait() == 1);
  // Aborting through the coordinator's journal would signal the
  // coordinator itself: refused.
  auto local = run_troupe({"abort", id, "--journal", c.journal()});
  CHECK(local.exit_code == 2);
  CHECK_THAT(local.err, Catch::Contains("belongs to a coordinator"));
  auto report = run_troupe({"report", id, "--json", "--coordinator",
                            c.address()});
  CHECK(report.exit_code == 1);
  CHECK(json::parse(report.out).at("status") == "cancelled");
  auto finished = run_troupe({"runs", "--json", "--coordinator",
                              c.address()});
  REQUIRE(finished.exit_code == 0);
  CHECK(json::parse(finished.out).at(0).at("status") == "cancelled");
  auto unknown = run_troupe({"status", "run-nope", "--coordinator",
                             c.address()});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("no run run-nope"));
}
