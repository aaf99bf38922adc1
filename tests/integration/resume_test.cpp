// Durable runs: a run is journaled as it goes, `troupe runs` and
// `troupe report` read the journal, and a run whose process was killed
// (kill -9) at any point goes on with `troupe resume` without running
// again what succeeded.

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/crash_dir.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

// What must be equal between an interrupted run's report and an
// uninterrupted one's: everything but timings and nodes.
json comparable(const json& report) {
  json out;
  out["status"] = report.at("status");
  for (auto& w : report.at("workstreams"))
    out["workstreams"].push_back({w.at("id"), w.at("status"),
                                  w.at("attempts"), w.at("summary"),
                                  w.at("exit_code")});
  for (auto& g : report.at("gates")) {
    json checks = json::array();
    for (auto& c : g.at("checks"))
      checks.push_back({c.at("name"), c.at("passed")});
    out["gates"].push_back({g.at("id"), g.at("status"), g.at("attempts"),
                            checks});
  }
  return out;
}

// The uninterrupted run every crash is compared with.
struct reference_run {
  json report;
  std::map<std::string, int> counts;

  reference_run() {
    crash_dir d;
    auto file = d.dir.str() + "/report.json";
    auto args = d.run_args(file);
    args.erase(args.begin());
    auto r = run_troupe(args, d.dir.str());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    report = read_json(file);
    counts = d.counts();
  }
};

const reference_run& reference() {
  static reference_run ref;
  return ref;
}

// Resumes the one run in `d`'s journal and checks the report against an
// uninterrupted run's, and that only what was in flight ran again.
void resume_and_compare(crash_dir& d) {
  std::ofstream{d.dir.str() + "/crashed"};
  auto id = only_run(d.journal);
  // Running when it was killed, and no process runs it now.
  auto status = run_troupe({"runs", "--journal", d.journal, "--json"});
  CHECK(json::parse(status.out)[0].at("status") == "interrupted");
  auto file = d.dir.str() + "/resumed.json";
  auto r = run_troupe({"resume", id.substr(0, 20), "--journal", d.journal,
                       "--report", file, "-q"},
                      d.dir.str());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json(file);
  CHECK(report.at("run_id") == id);
  CHECK(comparable(report) == comparable(reference().report));
  // Each step ran as often as in the reference, and at most once more for
  // each of its workstreams that was in flight at the crash (dispatched;
  // its command may not have started).
  std::map<std::string, int> reruns;
  for (auto& rerun : report.at("rerun")) {
    auto ws = rerun.get<std::string>();
    auto step = ws.rfind("g.check", 0) == 0 ? "check"
                : ws.rfind("g.fix", 0) == 0 ? "fix"
                                             : ws;
    reruns[step] += 1;
  }
  auto counts = d.counts();
  INFO("ran: " << json(counts).dump() << ", uninterrupted: "
               << json(reference().counts).dump()
               << ", rerun: " << report.at("rerun").dump());
  CHECK(counts.size() == reference().counts.size());
  for (auto& [step, n] : reference().counts) {
    CHECK(counts[step] >= n);
    CHECK(counts[step] <= n + reruns[step]);
  }
  // The journal has the report now, and a second resume is refused.
  auto again = run_troupe({"report", id, "--journal", d.journal, "--json"});
  CHECK(again.exit_code == 0);
  CHECK(comparable(json::parse(again.out)) == comparable(report));
  auto twice = run_troupe({"resume", id, "--journal", d.journal});
  CHECK(twice.exit_code == 2);
  CHECK_THAT(twice.err, Catch::Contains("finished (succeeded)"));
}

// Runs the plan with `env` until the step HANG names hangs, kills
// `troupe run` with SIGKILL, and resumes it.
void crash_while_hanging(const std::string& step) {
  crash_dir d;
  auto args = d.run_args(d.dir.str() + "/report.json");
  args.insert(args.begin(), {"/usr/bin/env", "HANG=" + step});
  background troupe{args};
  REQUIRE(d.hanging_step() == step);
  troupe.signal(SIGKILL);
  REQUIRE(troupe.wait() == 128 + SIGKILL);
  CHECK_FALSE(std::ifstream{d.dir.str() + "/report.json"}.good());
  resume_and_compare(d);
}

// Runs the plan until `troupe run` kills itself right after journaling
// the event `at` names, and resumes it.
void crash_after_event(const std::string& at) {
  crash_dir d;
  auto args = d.run_args(d.dir.str() + "/report.json");
  args.insert(args.begin(),
              {"/usr/bin/env", "TROUPE_JOURNAL_KILL_AFTER=" + at});
  background troupe{args};
  REQUIRE(troupe.wait() == 128 + SIGKILL);
  resume_and_compare(d);
}

} // namespace

TEST_CASE("troupe run journals the run: runs and report read it back",
          "[integration][journal]") {
  temp_dir dir;
  auto report = dir.str() + "/report.json";
  auto r = run_troupe({"run", TROUPE_SOURCE_DIR "/examples/pipeline/plan.yaml",
                       "--workdir", TROUPE_SOURCE_DIR, "--report", report},
                      dir.str());
  REQUIRE(r.exit_code == 0);
  auto id = read_json(report).at("run_id").get<std::string>();
  CHECK_THAT(r.err, Catch::Contains("run " + id + " is journaled in "
                                    ".troupe/troupe.db"));
  // The default journal is .troupe/troupe.db where troupe ran.
  auto runs = run_troupe({"runs", "--json"}, dir.str());
  REQUIRE(runs.exit_code == 0);
  auto listed = json::parse(runs.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].at("id") == id);
  CHECK(listed[0].at("status") == "succeeded");
  CHECK(listed[0].at("plan") == "number-pipeline");
  CHECK(listed[0].at("ended") == 4);
  CHECK(listed[0].at("workstreams") == 4);
  auto table = run_troupe({"runs"}, dir.str());
  CHECK_THAT(table.out, Catch::Contains(id));
  CHECK_THAT(table.out, Catch::Contains("4/4"));
  auto again = run_troupe({"report", id.substr(0, 24), "--json"}, dir.str());
  REQUIRE(again.exit_code == 0);
  CHECK(json::parse(again.out) == read_json(report));
  auto md = run_troupe({"report", id}, dir.str());
  CHECK(md.exit_code == 0);
  CHECK_THAT(md.out, Catch::StartsWith("# number-pipeline: succeeded"));
  auto unknown = run_troupe({"report", "run-nope"}, dir.str());
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("no run run-nope in"));
}

TEST_CASE("troupe run --no-journal journals nothing, and an unusable journal is "
          "refused clearly",
          "[integration][journal]") {
  temp_dir dir;
  auto plan = TROUPE_SOURCE_DIR "/examples/pipeline/plan.yaml";
  auto r = run_troupe({"run", plan, "--workdir", TROUPE_SOURCE_DIR,
                       "--no-journal", "-q"},
                      dir.str());
  CHECK(r.exit_code == 0);
  CHECK(names_in(dir.path()).empty());
  auto none = run_troupe({"runs"}, dir.str());
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("no journal at"));
  auto garbage = dir.write("garbage.db", std::string(4096, 'G'));
  auto bad = run_troupe({"run", plan, "--workdir", TROUPE_SOURCE_DIR,
                         "--journal", garbage, "-q"},
                        dir.str());
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("journal " + garbage
                                      + " is corrupt or not a Troupe journal"));
  CHECK(bad.out.empty());
  auto both = run_troupe({"run", plan, "--journal", "j.db", "--no-journal"},
                         dir.str());
  CHECK(both.exit_code == 2);
}

TEST_CASE("a journal a coordinator holds is refused to others, naming it",
          "[integration][journal][cluster]") {
  coordinator c;
  auto r = run_troupe({"run", TROUPE_SOURCE_DIR "/examples/pipeline/plan.yaml",
                       "--workdir", TROUPE_SOURCE_DIR, "--journal",
                       c.journal(), "-q"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("journal " + c.journal()
                                    + " is in use by a troupe coordinator "
                                      "(pid "
                                    + std::to_string(c.proc->pid()) + ")"));
  auto second = run_troupe({"coordinator", "--journal", c.journal()});
  CHECK(second.exit_code == 2);
  CHECK_THAT(second.err, Catch::Contains("in use by"));
}

TEST_CASE("kill -9 mid fan-out, then resume: what succeeded is not rerun",
          "[integration][journal]") {
  crash_while_hanging("b");
}

TEST_CASE("kill -9 while a gate's check runs, then resume",
          "[integration][journal]") {
  crash_while_hanging("check");
}

TEST_CASE("kill -9 during remediation, then resume",
          "[integration][journal]") {
  crash_while_hanging("fix");
}

TEST_CASE("kill -9 just after a result was journaled, then resume",
          "[integration][journal]") {
  crash_after_event("ws_ended:a");
}

TEST_CASE("kill -9 just after a retry was journaled, then resume",
          "[integration][journal]") {
  crash_after_event("ws_retrying:flaky");
}

TEST_CASE("kill -9 just before the report, then resume",
          "[integration][journal]") {
  crash_after_event("run_finished");
}

namespace {

// Runs the plan on a coordinator and one worker until the coordinator
// dies: killed by the test once the step `hang` hangs on the worker, or by
// itself right after journaling the event `kill_after` names. Then starts
// a coordinator on the same address and journal, which resumes the run as
// the worker rejoins, and follows the run to its end.
void crash_coordinator(const std::string& hang, const std::string& kill_after) {
  crash_dir d;
  std::vector<std::string> args{"/usr/bin/env",
                                "TROUPE_JOURNAL_KILL_AFTER=" + kill_after,
                                TROUPE_BINARY, "coordinator", "--listen",
                                "127.0.0.1:0", "--slots", "0", "--journal",
                                d.journal};
  background first{args};
  auto line = first.line();
  REQUIRE(line.find("troupe coordinator listening on 127.0.0.1:") == 0);
  auto address = line.substr(line.rfind(' ') + 1);
  background worker{{"/usr/bin/env", "HANG=" + hang, TROUPE_BINARY,
                     "--log-level", "info", "worker", "--join", address,
                     "--name", "w1", "--slots", "4"}};
  REQUIRE(worker.wait_for_err("joined coordinator"));
  background submitter{{TROUPE_BINARY, "submit", d.plan, "--coordinator",
                        address, "--workdir", d.dir.str(), "-q"}};
  if (!hang.empty()) {
    REQUIRE(d.hanging_step() == hang);
    first.signal(SIGKILL);
  }
  REQUIRE(first.wait() == 128 + SIGKILL);
  // Its observers get events before the journal does: a submitter may have
  // had the report from a coordinator killed right after the run ended.
  auto submitted = submitter.wait();
  CHECK((submitted == 1 || (kill_after == "run_finished" && submitted == 0)));
  std::ofstream{d.dir.str() + "/crashed"};
  auto id = only_run(d.journal);
  // The same address, the same journal: the worker finds it again.
  coordinator again{{"--slots", "0", "--journal", d.journal}, address};
  auto follow = run_troupe({"status", id, "--follow", "--json",
                            "--coordinator", again.address()});
  INFO(follow.err);
  // However far the resumed run got before the follower came (running, its
  // report being written, or finished), the follower ends with its report.
  REQUIRE(follow.exit_code == 0);
  REQUIRE(!follow.out.empty());
  auto lines = split_lines(follow.out);
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    CHECK(json::parse(lines[i]).contains("kind"));
  auto report = json::parse(lines.back());
  CHECK(comparable(report) == comparable(reference().report));
  auto counts = d.counts();
  for (auto& [step, n] : reference().counts)
    CHECK(counts[step] >= n);
  // What succeeded before the crash did not run again.
  CHECK(counts["first"] == 1);
}

} // namespace

TEST_CASE("kill -9 of a coordinator mid fan-out: restarted on its journal, "
          "it resumes the run as its worker rejoins, and a follower sees it "
          "end",
          "[integration][journal][cluster]") {
  crash_coordinator("b", "");
}

TEST_CASE("a coordinator killed just after a result, then restarted",
          "[integration][journal][cluster]") {
  crash_coordinator("", "ws_ended:a");
}

TEST_CASE("a coordinator killed during remediation, then restarted",
          "[integration][journal][cluster]") {
  crash_coordinator("", "gate_remediating:g");
}

TEST_CASE("a coordinator killed just before the report, then restarted",
          "[integration][journal][cluster]") {
  crash_coordinator("", "run_finished");
}
