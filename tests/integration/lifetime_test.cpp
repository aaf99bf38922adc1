// Processes never outlive their owner: whatever ends `troupe run` or a
// worker, SIGKILL included, the commands it started end with it.

#include <fstream>
#include <string>
#include <utility>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/reaper.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

// A command that starts a background child, tells the test both pids
// through the FIFO `pids` (blocking until the test reads them) and waits.
constexpr auto stubborn_command
  = "sleep 1000 & echo \"$$ $!\" > pids; wait";

// Reads the two pids the command wrote.
std::pair<pid_t, pid_t> read_pids(const temp_dir& dir) {
  std::ifstream in{dir.str() + "/pids"};
  pid_t shell = -1;
  pid_t child = -1;
  in >> shell >> child;
  return {shell, child};
}

std::string plan_with(const std::string& command) {
  return "name: lifetime\nworkstreams:\n  - id: stubborn\n    agent: "
         "explore\n    executor: {kind: command, run: "
         + json(command).dump() + "}\n";
}

} // namespace

TEST_CASE("kill -9 of troupe run takes its commands along", "[integration]") {
  become_subreaper();
  temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/pids").c_str(), 0600) == 0);
  auto plan = dir.write("plan.yaml", plan_with(stubborn_command));
  background troupe{{TROUPE_BINARY, "run", plan, "--workdir", dir.str()}};
  auto [shell, child] = read_pids(dir);
  REQUIRE(shell > 0);
  REQUIRE(child > 0);
  troupe.signal(SIGKILL);
  CHECK(troupe.wait() == 128 + SIGKILL);
  CHECK(process_gone(shell));
  CHECK(process_gone(child));
}

TEST_CASE("SIGHUP cancels troupe run cleanly and writes its report",
          "[integration]") {
  become_subreaper();
  temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/pids").c_str(), 0600) == 0);
  auto plan = dir.write("plan.yaml", plan_with(stubborn_command));
  auto report = dir.str() + "/report.json";
  background troupe{{TROUPE_BINARY, "run", plan, "--workdir", dir.str(),
                     "--report", report}};
  auto [shell, child] = read_pids(dir);
  REQUIRE(shell > 0);
  troupe.signal(SIGHUP);
  CHECK(troupe.wait() == 1);
  CHECK(troupe.err_text().find("cancelling the run") != std::string::npos);
  CHECK(read_json(report).at("status") == "cancelled");
  CHECK(process_gone(shell));
  CHECK(process_gone(child));
}

TEST_CASE("a worker killed with SIGKILL leaves no command running, so its "
          "work never runs twice at once",
          "[integration][cluster]") {
  temp_dir dir;
  REQUIRE(::mkfifo((dir.str() + "/pids").c_str(), 0600) == 0);
  // The second copy, on another worker, records whether the first copy's
  // processes still run (a zombie has ended) when it starts.
  auto command = R"(if [ -e first ]; then
  for p in $(cat first); do
    s=$(sed -n 's/^State:[[:space:]]*//p' /proc/$p/status 2>/dev/null)
    case "$s" in ""|Z*) ;; *) echo "alive $p" >> verdict ;; esac
  done
  echo checked >> verdict
  exit 0
fi
sleep 1000 & echo "$$ $!" > first; echo "$$ $!" > pids; wait)";
  auto plan = dir.write("plan.yaml", plan_with(command));
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1", 1);
  submission run{{"submit", plan, "--coordinator", c.address(), "--report",
                  dir.str() + "/report.json"},
                 dir.str()};
  auto [shell, child] = read_pids(dir);
  REQUIRE(shell > 0);
  auto w2 = start_worker(c, "w2", 1);
  w1->signal(SIGKILL);
  CHECK(w1->wait() == 128 + SIGKILL);
  auto r = run.get();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  auto report = read_json(dir.str() + "/report.json");
  CHECK(report.at("workstreams").at(0).at("node") == "w2");
  std::ifstream verdict{dir.str() + "/verdict"};
  std::string text{std::istreambuf_iterator<char>(verdict),
                   std::istreambuf_iterator<char>()};
  CHECK(text == "checked\n");
  CHECK(process_gone(shell));
  CHECK(process_gone(child));
}

TEST_CASE("SIGHUP drains a worker like SIGTERM", "[integration][cluster]") {
  coordinator c{{"--slots", "0"}};
  auto w = start_worker(c, "w1", 1);
  w->signal(SIGHUP);
  CHECK(w->wait() == 0);
  CHECK(w->err_text().find("draining") != std::string::npos);
}

TEST_CASE("troupe run that ends well ends quietly: its own pool going away "
          "is no node lost",
          "[integration]") {
  temp_dir dir;
  auto plan = dir.write("plan.yaml", plan_with("echo done"));
  // The pool and the orchestrator stop one after the other; whichever
  // order they take, several runs show it.
  for (int i = 0; i < 8; ++i) {
    auto r = run_troupe({"run", plan, "--no-journal"}, dir.str());
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("warning") == std::string::npos);
    CHECK(r.err.find("lost") == std::string::npos);
  }
}
