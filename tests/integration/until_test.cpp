// Iterative workstreams: `until` runs a check after each iteration and
// repeats the work, with the iteration's output and the check's failure in
// its context, until the check passes or the bound is reached.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/killed_run.hpp"
#include "support/mock_llm.hpp"
#include "support/quiet_run.hpp"
#include "support/reaper.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::read_json_file;
using troupe::test::read_text;
using troupe::test::run_troupe;
using troupe::test::workstream_of;
namespace fs = std::filesystem;

namespace {

// `fix` counts its iterations in the file `n` and logs what its context
// says about the iteration before; its check passes once the count
// reaches `pass_at`.
std::string counting_plan(int pass_at, int max_iterations, int retries = 0) {
  std::string plan = R"plan(name: iterate
workstreams:
  - id: fix
    prompt: Make the count reach PASS_AT.
    executor:
      kind: command
      run: |
        n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n
        grep -o 'count is [0-9]*, want [0-9]*' "$TROUPE_CONTEXT" >> seen || echo none >> seen
        echo "did iteration $((n+1))"
    until:
      run: 'test "$(cat n)" -ge PASS_AT || { echo "count is $(cat n), want PASS_AT"; exit 1; }'
      timeout_s: 30
    max_iterations: MAX
    retries: RETRIES
  - id: after
    depends_on: [fix]
    executor: {kind: command, run: echo after}
)plan";
  auto put = [&](const std::string& key, int value) {
    for (auto at = plan.find(key); at != std::string::npos; at = plan.find(key))
      plan.replace(at, key.size(), std::to_string(value));
  };
  put("PASS_AT", pass_at);
  put("MAX", max_iterations);
  put("RETRIES", retries);
  return plan;
}

std::vector<json> events_of(const fs::path& file, const std::string& kind) {
  std::vector<json> out;
  std::ifstream in{file};
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) {
      auto ev = json::parse(line);
      if (ev["kind"] == kind)
        out.push_back(std::move(ev));
    }
  return out;
}

} // namespace

TEST_CASE("an until workstream repeats until its check passes",
          "[integration][until]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", counting_plan(3, 5));
  auto r = run_troupe({"run", plan, "--no-journal", "-q", "--report",
                       "report.json", "--events", "events.jsonl"},
                      dir.str());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json_file(dir.path() / "report.json");
  auto& fix = workstream_of(report, "fix");
  CHECK(fix["status"] == "succeeded");
  CHECK(fix["summary"] == "did iteration 3");
  // Iterations are no failed attempts.
  CHECK(fix["attempts"] == 1);
  REQUIRE(fix["iterations"].size() == 3);
  CHECK(fix["iterations"][0]["passed"] == false);
  CHECK(
    fix["iterations"][0]["detail"].get<std::string>().find("count is 1, want 3")
    != std::string::npos);
  CHECK(fix["iterations"][1]["passed"] == false);
  CHECK(fix["iterations"][2]["passed"] == true);
  CHECK(workstream_of(report, "after")["status"] == "succeeded");
  // Each iteration saw the one before it: its output and its check.
  CHECK(read_text(dir.path() / "seen")
        == "none\ncount is 1, want 3\ncount is 2, want 3\n");
  // Each repeat is an event, and in the report's Markdown.
  auto iterating = events_of(dir.path() / "events.jsonl", "ws_iterating");
  REQUIRE(iterating.size() == 2);
  CHECK(iterating[0]["attempt"] == 1);
  CHECK(iterating[1]["attempt"] == 2);
  CHECK(iterating[1]["result"]["check"]["passed"] == false);
  CHECK(r.out.find("| fix | iteration 3 | passed |") != std::string::npos);
}

TEST_CASE("an until workstream fails when its bound is reached",
          "[integration][until]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", counting_plan(10, 2));
  auto r = run_troupe(
    {"run", plan, "--no-journal", "-q", "--report", "report.json"}, dir.str());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = read_json_file(dir.path() / "report.json");
  auto& fix = workstream_of(report, "fix");
  CHECK(fix["status"] == "failed");
  CHECK(fix["summary"].get<std::string>().find("still fails after 2 "
                                               "iterations: count is 2, "
                                               "want 10")
        != std::string::npos);
  CHECK(fix["iterations"].size() == 2);
  CHECK(read_text(dir.path() / "n") == "2\n");
  CHECK(workstream_of(report, "after")["status"] == "blocked");
}

TEST_CASE("an until loop resumes where it was after kill -9",
          "[integration][until][journal]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", counting_plan(3, 5));
  auto report = test::kill_and_resume(dir, plan, "ws_iterating:fix");
  auto& fix = workstream_of(report, "fix");
  CHECK(fix["status"] == "succeeded");
  // The first iteration, journaled, was not run again.
  CHECK(fix["iterations"].size() == 3);
  CHECK(read_text(dir.path() / "n") == "3\n");
}

TEST_CASE("an until loop that reached its bound stays failed after kill -9",
          "[integration][until][journal]") {
  test::temp_dir dir;
  // Retries are for failed work: a check that still fails at the bound is
  // no reason to run the loop again, before the kill or after it.
  auto plan = dir.write("plan.yaml", counting_plan(10, 2, 1));
  auto report = test::kill_and_resume(dir, plan, "ws_ended:fix", 1);
  auto& fix = workstream_of(report, "fix");
  CHECK(fix["status"] == "failed");
  CHECK(fix["iterations"].size() == 2);
  CHECK(read_text(dir.path() / "n") == "2\n");
  CHECK(workstream_of(report, "after")["status"] == "blocked");
}

TEST_CASE("work cancelled while its check runs did not succeed",
          "[integration][until]") {
  test::become_subreaper();
  test::temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/check.pid").c_str(), 0600) == 0);
  auto plan = dir.write("plan.yaml", R"(name: cancelled-check
workstreams:
  - id: fix
    executor: {kind: command, run: "echo fixed"}
    until: {run: "echo $$ > check.pid; exec sleep 600"}
)");
  test::background troupe{{TROUPE_BINARY, "run", plan, "--no-journal", "-q",
                           "--workdir", dir.str(), "--report",
                           dir.str() + "/report.json"}};
  // Reading the fifo waits until the check really runs.
  auto check = test::read_pid(dir.str() + "/check.pid");
  REQUIRE(check > 0);
  troupe.signal(SIGINT);
  CHECK(troupe.wait() != 0);
  auto report = read_json_file(dir.path() / "report.json");
  CHECK(report["status"] == "cancelled");
  CHECK(workstream_of(report, "fix")["status"] == "cancelled");
  CHECK(test::process_gone(check));
}

TEST_CASE("an agent that iterates is told what its check said",
          "[integration][until][llm]") {
  test::temp_dir dir;
  test::mock_llm mock{dir.path()};
  auto plan = dir.write("plan.yaml", R"(name: agent-loop
workstreams:
  - id: fix
    prompt: Fix the failing test.
    executor: {kind: anthropic}
    until: 'n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test $((n+1)) -ge 2 || { echo "1 test failed: test_parse"; exit 1; }'
)");
  auto r = test::run_quietly(dir, plan, test::anthropic_env(mock, "k"));
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  auto asked = mock.requests();
  REQUIRE(asked.size() == 2);
  auto second = asked[1]["body"].dump();
  CHECK(second.find("Your previous iteration (1): its check still fails")
        != std::string::npos);
  CHECK(second.find("1 test failed: test_parse") != std::string::npos);
  CHECK(asked[0]["body"].dump().find("previous iteration")
        == std::string::npos);
  auto& fix = workstream_of(r.report, "fix");
  CHECK(fix["iterations"].size() == 2);
  // Both iterations' tokens count.
  int64_t in = 0;
  for (auto& u : fix["usage"])
    in += u["input_tokens"].get<int64_t>();
  CHECK(in > 0);
}

TEST_CASE("until and max_iterations are checked like the rest of a plan",
          "[integration][until]") {
  test::temp_dir dir;
  auto refused = [&](const std::string& ws, const std::string& why) {
    auto plan
      = dir.write("bad.yaml", "name: bad\nworkstreams:\n  - " + ws + "\n");
    auto r = run_troupe({"validate", plan}, dir.str());
    INFO(r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(why) != std::string::npos);
  };
  refused("{id: a, max_iterations: 3}",
          "workstreams[0] (a).max_iterations: needs `until`");
  refused("{id: a, until: ''}", "workstreams[0] (a).until: must not be empty");
  refused("{id: a, until: {run: make, timeout_s: -1}}",
          "workstreams[0] (a).until.timeout_s");
  refused("{id: a, until: {cwd: src}}", "workstreams[0] (a).until.run");
  refused("{id: a, until: {run: make, every: 2}}", "every");
  refused("{id: a, until: make, max_iterations: 0}",
          "workstreams[0] (a).max_iterations");
  refused("{id: a, until: make, max_iterations: 5000}",
          "workstreams[0] (a).max_iterations: must be from 1 to 1000");
}
