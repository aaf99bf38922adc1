#pragma once

// A plan that can be stopped at any step: the crash and resume tests run
// it, kill what runs it, and check what ran again.

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

// Each step counts its runs in count.NAME. The one HANG names tells the
// test through the FIFO `at` that it runs, then hangs until killed, unless
// `crashed` exists (it runs again after the crash).
constexpr auto step_script = R"(name=$1
echo x >> "count.$name"
if [ "$HANG" = "$name" ] && [ ! -e crashed ]; then
  echo "$name" > at
  exec sleep 600
fi
if [ "$2" = flaky ] && [ "$TROUPE_ATTEMPT" = 1 ]; then
  echo "$name fails its first attempt"
  exit 1
fi
echo "$name done"
)";

// A fan-out, a flaky workstream, a gate whose check fails until its fixer
// ran, and a gather behind the gate.
constexpr auto crash_plan = R"(name: crash-test
workstreams:
  - {id: first, agent: explore, executor: {kind: command, run: "sh step.sh first"}}
  - {id: a, agent: explore, depends_on: [first], executor: {kind: command, run: "sh step.sh a"}}
  - {id: b, agent: explore, depends_on: [first], executor: {kind: command, run: "sh step.sh b"}}
  - {id: c, agent: explore, depends_on: [first], executor: {kind: command, run: "sh step.sh c"}}
  - {id: flaky, agent: explore, depends_on: [first], retries: 2, executor: {kind: command, run: "sh step.sh flaky flaky"}}
  - {id: last, agent: explore, depends_on: [a, b, c, flaky], executor: {kind: command, run: "sh step.sh last"}}
gates:
  - id: g
    after: [a, b, c, flaky]
    checks: [completion, {run: "sh step.sh check && test -e fixed"}]
    remediate: {max_attempts: 2, executor: {kind: command, run: "sh step.sh fix && touch fixed"}}
)";

// A directory holding the plan and its script.
struct crash_dir {
  temp_dir dir;
  std::string plan;
  std::string journal;

  crash_dir() {
    dir.write("step.sh", step_script);
    plan = dir.write("plan.yaml", crash_plan);
    journal = dir.str() + "/troupe.db";
    REQUIRE(::mkfifo((dir.str() + "/at").c_str(), 0600) == 0);
  }

  // How often each step ran.
  std::map<std::string, int> counts() const {
    std::map<std::string, int> out;
    for (auto& name : names_in(dir.path())) {
      if (name.rfind("count.", 0) != 0)
        continue;
      std::ifstream in{dir.str() + "/" + name};
      std::string line;
      int n = 0;
      while (std::getline(in, line))
        ++n;
      out[name.substr(6)] = n;
    }
    return out;
  }

  // The line the hanging step writes into `at`; empty if none comes within
  // a minute.
  std::string hanging_step() const {
    int fd = ::open((dir.str() + "/at").c_str(), O_RDONLY | O_NONBLOCK);
    REQUIRE(fd >= 0);
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (got.find('\n') == std::string::npos
           && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0)
        continue;
      char buf[64];
      auto n = ::read(fd, buf, sizeof(buf));
      if (n > 0)
        got.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return got.substr(0, got.find('\n'));
  }

  std::vector<std::string> run_args(const std::string& report) const {
    return {TROUPE_BINARY, "run", plan, "--workdir", dir.str(), "--journal",
            journal, "--report", report, "-q"};
  }
};

// The one run a journal holds.
inline std::string only_run(const std::string& journal) {
  auto r = run_troupe({"runs", "--journal", journal, "--json"});
  REQUIRE(r.exit_code == 0);
  auto runs = nlohmann::json::parse(r.out);
  REQUIRE(runs.size() == 1);
  return runs[0].at("id");
}

} // namespace troupe::test
