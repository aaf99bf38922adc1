// Which node work goes to: personas, executors, models and the run's limits.
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;

TEST_CASE("work goes to nodes that offer its persona, and waits for one",
          "[integration][cluster]") {
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto qa = start_worker(c, "qa-node", 2, {"--personas", "qa"});
  auto be = start_worker(c, "backend-node", 2, {"--personas", "backend,devops"});
  auto file = dir.write("plan.yaml", R"(name: routing
settings: {max_parallel_agents: 4}
workstreams:
  - {id: api, persona: backend, agent: explore, executor: {kind: command, run: "echo api"}}
  - {id: tests, persona: qa, agent: explore, executor: {kind: command, run: "echo tests"}}
  - {id: ci, persona: devops, agent: explore, executor: {kind: command, run: "echo ci"}}
  - {id: docs, persona: docs, agent: explore, executor: {kind: command, run: "echo docs"}}
)");
  auto report = dir.str() + "/report.json";
  // Not quiet: the progress lines go to stderr, where the wait is explained.
  submission sub{{"submit", file, "--coordinator", c.address(), "--report",
                  report, "--workdir", dir.str()},
                 dir.str()};
  // `docs` can only wait: the coordinator says so in its log.
  REQUIRE(c.proc->wait_for_err("workstream docs is waiting: no node offers "
                               "persona \"docs\""));
  auto docs = start_worker(c, "docs-node", 1, {"--personas", "docs"});
  auto r = sub.get();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("waiting: no node offers persona \"docs\"")
        != std::string::npos);
  auto j = read_json(report);
  std::map<std::string, std::string> node_of;
  for (auto& w : j.at("workstreams"))
    node_of[w.at("id").get<std::string>()] = w.at("node").get<std::string>();
  CHECK(node_of["api"] == "backend-node");
  CHECK(node_of["ci"] == "backend-node");
  CHECK(node_of["tests"] == "qa-node");
  CHECK(node_of["docs"] == "docs-node");
}

TEST_CASE("a gate's command runs on a node that offers commands, never on "
          "a coordinator without slots",
          "[integration][cluster]") {
  temp_dir dir;
  temp_dir worker_dir;
  coordinator c{{"--slots", "0"}};
  auto sleeper = start_worker(c, "sleeper", 1, {"--executors", "sleep"});
  auto file = dir.write("plan.yaml", R"(name: gated
workstreams:
  - {id: build, agent: explore, executor: {kind: sleep, seconds: 0.01}}
  - {id: ship, agent: explore, depends_on: [build], executor: {kind: sleep, seconds: 0.01}}
gates:
  - {id: tests, after: [build], checks: [completion, {run: "pwd > where"}]}
)");
  auto report = dir.str() + "/report.json";
  background submit{{TROUPE_BINARY, "submit", file, "--coordinator",
                     c.address(), "--report", report, "--workdir",
                     dir.str()}};
  // Only the sleeper is there: the check waits, saying why.
  REQUIRE(submit.wait_for_err("tests.check1 ready: waiting: no node offers "
                              "executor \"command\""));
  auto runner = start_worker(c, "runner", 1,
                             {"--workdir", worker_dir.str()});
  CHECK(submit.wait() == 0);
  auto j = read_json(report);
  CHECK(j.at("status") == "succeeded");
  CHECK(j.at("workstreams").size() == 2);
  auto gate = j.at("gates").at(0);
  CHECK(gate.at("status") == "passed");
  CHECK(gate.at("checks").at(1).at("detail") == "exit 0 (on node runner)");
  // It ran in the worker's directory, not where the submitter is.
  CHECK(worker_dir.read("where") == worker_dir.str() + "\n");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "where"));
}

TEST_CASE("limits per persona and model hold across workers, and work "
          "that names a model goes to workers that serve it",
          "[integration][cluster]") {
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1", 3, {"--models", "claude-sonnet-4-5"});
  auto w2 = start_worker(c, "w2", 3, {"--models", "claude-sonnet-4-5"});
  auto local = start_worker(c, "local", 2, {"--models", "llama3"});
  std::string plan = "name: limited\nsettings:\n  max_parallel_agents: 8\n"
                     "  max_phase_width: 20\n"
                     "  limits: {persona: {qa: 2}, model: {deep: 1}}\n"
                     "workstreams:\n";
  for (int i = 0; i < 5; ++i)
    plan += "  - {id: qa" + std::to_string(i)
            + ", persona: qa, executor: {kind: sleep, seconds: 0.2}}\n";
  for (int i = 0; i < 3; ++i)
    plan += "  - {id: deep" + std::to_string(i)
            + ", model: deep, agent: explore, executor: {kind: sleep, "
              "seconds: 0.2}}\n";
  for (int i = 0; i < 3; ++i)
    plan += "  - {id: llama" + std::to_string(i)
            + ", agent: explore, executor: {kind: sleep, seconds: 0.1, "
              "model: llama3}}\n";
  auto file = dir.write("plan.yaml", plan);
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  auto r = run_troupe({"submit", file, "--coordinator", c.address(),
                       "--report", report, "--events", events, "-q",
                       "--workdir", dir.str()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // How many of each kind ran at once, and where.
  std::map<std::string, int> now;
  std::map<std::string, int> most;
  for (auto& e : read_events(events)) {
    auto id = e.at("subject").get<std::string>();
    auto kind = id.substr(0, id.find_first_of("0123456789"));
    if (e.at("kind") == "ws_dispatched")
      most[kind] = std::max(most[kind], ++now[kind]);
    else if (e.at("kind") == "ws_ended")
      --now[kind];
  }
  CHECK(most["qa"] == 2);
  CHECK(most["deep"] == 1);
  auto j = read_json(report);
  std::set<std::string> qa_nodes;
  for (auto& w : j.at("workstreams")) {
    auto id = w.at("id").get<std::string>();
    auto node = w.at("node").get<std::string>();
    // Work that names a model goes only to nodes that serve it (a node's
    // models do not keep other work away).
    if (id.rfind("llama", 0) == 0)
      CHECK(node == "local");
    if (id.rfind("qa", 0) == 0)
      qa_nodes.insert(node);
  }
  // The limit is the run's, not a node's: qa work ran on several nodes.
  CHECK(qa_nodes.size() >= 2);
}
