#include <algorithm>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/reaper.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using troupe::test::run_troupe;
using nlohmann::json;

namespace {

json read_json(const std::string& file) {
  std::ifstream in{file};
  REQUIRE(in);
  return json::parse(in);
}

const json& ws(const json& report, const std::string& id) {
  for (auto& w : report.at("workstreams"))
    if (w.at("id") == id)
      return w;
  FAIL("no workstream " << id << " in the report");
  throw std::logic_error("unreachable");
}

std::string example(const std::string& name) {
  return std::string{TROUPE_SOURCE_DIR} + "/examples/" + name + "/plan.yaml";
}

} // namespace

TEST_CASE("every example plan validates", "[integration]") {
  for (auto name : {"quickstart", "pipeline", "scatter-gather",
                    "retry-and-block"}) {
    auto r = run_troupe({"validate", example(name)});
    INFO(name << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("valid plan") != std::string::npos);
  }
}

TEST_CASE("validate reports every error with its path and exits 2",
          "[integration]") {
  test::temp_dir dir;
  auto file = dir.write("bad.yaml", R"(name: bad
settings: {max_parallel_agents: 0}
workstreams:
  - id: a
    depends_on: [b]
    executor: {kind: command, run: "true"}
  - id: b
    depends_on: [a]
    executor: {kind: command, run: "true"}
  - id: c
    titel: typo
    depends_on: [jwtt]
    executor: {kind: command, run: "true"}
gates:
  - id: g
    after: [nope]
)");
  auto r = run_troupe({"validate", file});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("workstreams[2] (c).titel") != std::string::npos);
  CHECK(r.err.find("workstreams[2] (c).depends_on[0]: unknown workstream "
                   "\"jwtt\"")
        != std::string::npos);
  CHECK(r.err.find("a -> b -> a") != std::string::npos);
  CHECK(r.err.find("gates[0] (g).after[0]") != std::string::npos);
  CHECK(r.err.find("settings.max_parallel_agents") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("malformed YAML is refused with its line", "[integration]") {
  test::temp_dir dir;
  auto file = dir.write("broken.yaml", "name: x\nworkstreams:\n  - id: [a\n");
  auto r = run_troupe({"run", file});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("line") != std::string::npos);
}

TEST_CASE("hostile plan files are refused with one error line and exit 2",
          "[integration]") {
  test::temp_dir dir;
  std::string bomb = "l0: &l0 [x,x,x,x,x,x,x,x,x]\n";
  for (int i = 1; i < 9; ++i) {
    auto prev = "*l" + std::to_string(i - 1);
    auto name = "l" + std::to_string(i);
    bomb += name + ": &" + name + " [" + prev;
    for (int k = 1; k < 9; ++k)
      bomb += "," + prev;
    bomb += "]\n";
  }
  auto fifo = (dir.path() / "fifo.yaml").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  struct row {
    std::string file;
    std::string error;
  };
  for (auto& [file, error] : std::vector<row>{
         {dir.write("bomb.yaml", bomb),
          "plan is too large: more than 1000000 values after expanding YAML "
          "aliases"},
         {fifo, "not a regular file (a FIFO)"},
         {"/dev/zero", "not a regular file (a character device)"},
         {dir.write("binary.yaml",
                    std::string{"\x7F" "ELF\x02\x01\x01\0", 8}),
          "control character U+0002 at line 1, column 5"},
       }) {
    auto r = run_troupe({"validate", file});
    INFO(file << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    // The error, then the count.
    CHECK(r.err.rfind(file + ": error: ", 0) == 0);
    CHECK(r.err.find(error) < r.err.find('\n'));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);
    CHECK(r.err.find(file + ": 1 error, nothing was run\n")
          != std::string::npos);
  }
}

TEST_CASE("bad flags exit 2 and name the flag", "[integration]") {
  auto missing = run_troupe({"run"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("PLAN") != std::string::npos);
  auto zero = run_troupe({"run", example("pipeline"), "--max-parallel", "0"});
  CHECK(zero.exit_code == 2);
  CHECK(zero.err.find("--max-parallel") != std::string::npos);
  auto unknown = run_troupe({"frobnicate"});
  CHECK(unknown.exit_code == 2);
  auto nofile = run_troupe({"validate", "/nonexistent/plan.yaml"});
  CHECK(nofile.exit_code == 2);
  CHECK(nofile.err.find("/nonexistent/plan.yaml") != std::string::npos);
}

TEST_CASE("plan shows phases, gates, critical path and complexity",
          "[integration]") {
  auto r = run_troupe({"plan", example("quickstart")});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Phase 1 (5 in parallel)") != std::string::npos);
  CHECK(r.out.find("Phase 2") != std::string::npos);
  CHECK(r.out.find("gate hygiene") != std::string::npos);
  CHECK(r.out.find("Critical path: ") != std::string::npos);
  CHECK(r.out.find("Complexity: ") != std::string::npos);
  CHECK(r.out.find("Estimated time: ") != std::string::npos);
  auto j = run_troupe({"plan", example("quickstart"), "--json"});
  REQUIRE(j.exit_code == 0);
  auto a = json::parse(j.out);
  CHECK(a.at("phases").size() == 2);
  CHECK(a.at("phases").at(0).size() == 5);
}

TEST_CASE("the quickstart audits the repository and writes both reports",
          "[integration]") {
  test::temp_dir dir;
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  auto r = run_troupe({"run", example("quickstart"), "--report", report,
                       "--events", events});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("# codebase-audit: succeeded") != std::string::npos);
  auto j = read_json(report);
  CHECK(j.at("status") == "succeeded");
  for (auto key : {"run_id", "wall_s", "sequential_s", "critical_path_s",
                   "workstreams", "gates", "usage"})
    CHECK(j.contains(key));
  CHECK(j.at("workstreams").size() == 6);
  for (auto& w : j.at("workstreams")) {
    for (auto key : {"id", "persona", "status", "attempts", "node", "wall_s",
                     "exit_code", "summary"})
      CHECK(w.contains(key));
    CHECK(w.at("status") == "succeeded");
    CHECK(w.at("node") == "local");
  }
  CHECK(ws(j, "summary").at("summary").get<std::string>().find("5 folders")
        == 0);
  CHECK(j.at("gates").at(0).at("status") == "passed");
  // Every event is one JSON line, in order, from start to finish.
  std::ifstream in{events};
  std::string line;
  uint64_t last = 0;
  std::vector<json> evs;
  while (std::getline(in, line)) {
    auto e = json::parse(line);
    CHECK(e.at("seq").get<uint64_t>() == last + 1);
    last = e.at("seq").get<uint64_t>();
    evs.push_back(e);
  }
  REQUIRE(evs.size() > 10);
  CHECK(evs.front().at("state") == "started");
  CHECK(evs.back().at("state") == "succeeded");
  CHECK(evs.back().at("kind") == "run_finished");
}

TEST_CASE("the pipeline runs its stages in order", "[integration]") {
  test::temp_dir dir;
  auto report = dir.str() + "/report.json";
  auto r = run_troupe({"run", example("pipeline"), "--report", report});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(report);
  // 7, 14, ..., 4998: 714 multiples of 7, their squares summed.
  CHECK(ws(j, "report").at("summary")
        == "pipeline result: count=714 sum=5957736785");
  CHECK(ws(j, "extract").at("started_s").get<double>()
        < ws(j, "transform").at("started_s").get<double>());
}

TEST_CASE("scatter-gather adds up what the shards handed over",
          "[integration]") {
  test::temp_dir dir;
  auto report = dir.str() + "/report.json";
  auto r = run_troupe({"run", example("scatter-gather"), "--report", report});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(report);
  CHECK(ws(j, "gather").at("summary")
        == "8 shards: sum of squares = 170669866680000");
}

TEST_CASE("retry-and-block retries, blocks and exits 1", "[integration]") {
  test::temp_dir dir;
  auto report = dir.str() + "/report.json";
  auto r = run_troupe({"run", example("retry-and-block"), "--report",
                       report});
  CHECK(r.exit_code == 1);
  auto j = read_json(report);
  CHECK(j.at("status") == "failed");
  CHECK(ws(j, "flaky").at("status") == "succeeded");
  CHECK(ws(j, "flaky").at("attempts") == 2);
  CHECK(ws(j, "broken").at("status") == "failed");
  CHECK(ws(j, "broken").at("attempts") == 2);
  CHECK(ws(j, "broken").at("exit_code") == 7);
  CHECK(ws(j, "publish").at("status") == "blocked");
  CHECK(ws(j, "docs").at("status") == "succeeded");
  CHECK(r.out.find("Partial result") != std::string::npos);
}

TEST_CASE("no more commands run at once than --max-parallel allows",
          "[integration]") {
  test::temp_dir dir;
  std::string plan = "name: bound\nworkstreams:\n";
  for (int i = 0; i < 12; ++i)
    plan += "  - {id: w" + std::to_string(i)
            + ", agent: explore, executor: {kind: command, run: \"echo start "
              ">> log; sleep 0.1; echo end >> log\"}}\n";
  auto file = dir.write("plan.yaml", plan);
  auto r = run_troupe({"run", file, "--max-parallel", "3", "--workdir",
                       dir.str(), "-q"});
  REQUIRE(r.exit_code == 0);
  std::ifstream log{dir.str() + "/log"};
  std::string line;
  int now = 0;
  int most = 0;
  int starts = 0;
  while (std::getline(log, line)) {
    if (line == "start") {
      most = std::max(most, ++now);
      ++starts;
    } else {
      --now;
    }
  }
  CHECK(starts == 12);
  CHECK(most <= 3);
  CHECK(most >= 2);
}

TEST_CASE("a plan that asks for confirmation refuses to run without a "
          "terminal",
          "[integration]") {
  test::temp_dir dir;
  auto file = dir.write("plan.yaml", R"(name: careful
settings: {confirm_before_execute: true}
workstreams:
  - {id: a, agent: explore, executor: {kind: command, run: "echo ran > ran.txt"}}
)");
  auto refused = run_troupe({"run", file, "--workdir", dir.str()}, dir.str(),
                            "</dev/null ");
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("--yes") != std::string::npos);
  CHECK_FALSE(std::ifstream{dir.str() + "/ran.txt"}.good());
  auto yes = run_troupe({"run", file, "--workdir", dir.str(), "--yes"},
                        dir.str());
  CHECK(yes.exit_code == 0);
  CHECK(dir.read("ran.txt") == "ran\n");
}

TEST_CASE("Ctrl-C cancels the run, kills its commands and still reports",
          "[integration]") {
  test::become_subreaper();
  test::temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/cmd.pid").c_str(), 0600) == 0);
  auto file = dir.write("plan.yaml", R"(name: long
workstreams:
  - {id: long, agent: explore, executor: {kind: command, run: "echo $$ > cmd.pid; exec sleep 600"}}
  - {id: next, agent: explore, depends_on: [long], executor: {kind: command, run: "echo never"}}
)");
  auto report = dir.str() + "/report.json";
  std::promise<test::cli_result> result;
  auto finished = result.get_future();
  std::thread runner{[&] {
    result.set_value(run_troupe({"run", file, "--workdir", dir.str(),
                                 "--report", report},
                                dir.str(), "echo $$ > troupe.pid; "));
  }};
  // Reading the fifo waits until the command really runs.
  auto cmd = test::read_pid(dir.str() + "/cmd.pid");
  auto troupe_pid = test::read_pid(dir.str() + "/troupe.pid");
  REQUIRE(cmd > 0);
  REQUIRE(troupe_pid > 0);
  ::kill(troupe_pid, SIGINT);
  auto r = finished.get();
  runner.join();
  CHECK(r.exit_code == 1);
  auto j = read_json(report);
  CHECK(j.at("status") == "cancelled");
  CHECK(ws(j, "long").at("status") == "cancelled");
  CHECK(ws(j, "next").at("status") == "cancelled");
  CHECK(test::process_gone(cmd));
}

TEST_CASE("the embedding example runs a plan with its own C++ agent",
          "[integration]") {
  auto r = test::run_shell(test::sh_quote(std::string{TROUPE_BINARY_DIR}
                                          + "/examples/embedding/"
                                            "troupe_embedding"));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("reviewed by C++ agent") != std::string::npos);
  CHECK(r.out.find("reviewer reviewed 1 item(s)") != std::string::npos);
}

#ifdef TROUPE_BENCH
TEST_CASE("the benchmark prints a measurement per shape as JSON",
          "[integration]") {
  auto r = test::run_shell(test::sh_quote(TROUPE_BENCH) + " --quick");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  auto& results = j.at("results");
  REQUIRE(results.size() == 2);
  CHECK(results.at(0).at("shape") == "fan_out_gather");
  CHECK(results.at(1).at("shape") == "chain");
  for (auto& x : results) {
    CHECK(x.at("troupe_us_per_workstream").get<double>() > 0);
    CHECK(x.at("caf_floor_us_per_task").get<double>() > 0);
    CHECK(x.at("ratio").get<double>() > 0);
  }
  auto& journal = j.at("journal");
  CHECK(journal.at("journal_on_s").get<double>() > 0);
  CHECK(journal.at("journal_off_s").get<double>() > 0);
  CHECK(journal.at("ratio").get<double>() > 0);
}
#endif

#ifdef TROUPE_LLM_BENCH
TEST_CASE("the LLM benchmark measures Troupe's overhead per call",
          "[integration][llm]") {
  auto r = test::run_shell(test::sh_quote(TROUPE_LLM_BENCH) + " --quick");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  CHECK(j.at("calls") == 100);
  auto& results = j.at("results");
  REQUIRE(results.size() == 2);
  for (auto& x : results) {
    CHECK(x.at("succeeded") == true);
    CHECK(x.at("troupe_s").get<double>() > 0);
    CHECK(x.at("bare_client_s").get<double>() > 0);
    CHECK(x.contains("overhead_us_per_call"));
  }
}
#endif

#ifdef TROUPE_CLUSTER_BENCH
TEST_CASE("the cluster benchmark measures throughput, scaling and latency",
          "[integration][cluster]") {
  auto r = test::run_shell(test::sh_quote(TROUPE_CLUSTER_BENCH) + " --quick");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  CHECK(j.at("throughput").at("workstreams_per_s").get<double>() > 0);
  CHECK(j.at("latency").at("troupe_run_us_median").get<double>() > 0);
  CHECK(j.at("latency").at("caf_request_us_median").get<double>() > 0);
  REQUIRE(j.at("scaling").size() == 2);
  for (auto& s : j.at("scaling"))
    CHECK(s.at("efficiency").get<double>() > 0);
}
#endif

TEST_CASE("a report or event log that cannot be written is an error",
          "[integration]") {
  auto report = run_troupe({"run", example("pipeline"), "-q", "--report",
                            "/dev/full"});
  CHECK(report.exit_code == 1);
  CHECK(report.err.find("--report: cannot write /dev/full")
        != std::string::npos);
  CHECK(report.out.find("# number-pipeline: succeeded") != std::string::npos);
  auto events = run_troupe({"run", example("pipeline"), "-q", "--events",
                            "/dev/full"});
  CHECK(events.exit_code == 1);
  CHECK(events.err.find("--events: writing /dev/full failed")
        != std::string::npos);
}

TEST_CASE("a second Ctrl-C quits at once and takes the commands along",
          "[integration]") {
  test::become_subreaper();
  test::temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/cmd.pid").c_str(), 0600) == 0);
  // The command shrugs off SIGTERM, so the first Ctrl-C's cancel cannot end
  // it within its grace period.
  auto file = dir.write("plan.yaml", R"(name: stubborn
workstreams:
  - {id: stubborn, agent: explore, executor: {kind: command, run: "trap '' TERM; echo $$ > cmd.pid; while :; do sleep 1; done"}}
)");
  test::background troupe{{TROUPE_BINARY, "run", file, "--workdir",
                            dir.str()}};
  auto cmd = test::read_pid(dir.str() + "/cmd.pid");
  REQUIRE(cmd > 0);
  // Two signals of one kind may merge into one before they are taken; a
  // SIGTERM after the SIGINT counts as the second either way, and is taken
  // after it (lower numbers first), without waiting on the cancel's grace.
  troupe.signal(SIGINT);
  troupe.signal(SIGTERM);
  CHECK(troupe.wait() == 130);
  CHECK(troupe.err_text().find("cancelling the run") != std::string::npos);
  CHECK(troupe.err_text().find("quitting now") != std::string::npos);
  CHECK(test::process_gone(cmd));
}
