#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"

namespace {

using strings = std::vector<std::string>;

troupe::plan load(const std::string& yaml) {
  troupe::diagnostics d;
  auto p = troupe::load_plan_text(yaml, "yaml", {}, d);
  std::string all;
  for (auto& x : d.items())
    all += troupe::to_string(x) + "\n";
  INFO(all);
  REQUIRE(d.ok());
  return p;
}

// a -> {b, c} -> d, with c the longer branch.
const char* diamond = R"(
name: diamond
goal: Add an API with tests and docs
settings: {max_parallel_agents: 2}
workstreams:
  - {id: a, owns: [src/types.ts], estimate_s: 10, executor: {kind: noop}}
  - {id: b, owns: [src/api.ts], depends_on: [a], estimate_s: 20,
     executor: {kind: noop}}
  - {id: c, owns: [tests/api.test.ts], depends_on: [a],
     executor: {kind: sleep, seconds: 30}}
  - {id: d, owns: [docs/api.md], depends_on: [b, c], estimate_s: 5,
     executor: {kind: noop}}
)";

} // namespace

TEST_CASE("a diamond plan is assessed into phases, a critical path and "
          "estimates",
          "[protocol]") {
  auto p = load(diamond);
  auto a = troupe::assess(p);
  CHECK(a.phases == std::vector<strings>{{"a"}, {"b", "c"}, {"d"}});
  CHECK(a.critical_path == strings{"a", "c", "d"});
  CHECK(a.critical_path_s == Approx(45));
  CHECK(a.sequential_s == Approx(65));
  CHECK(a.parallel_s == Approx(45));
  // Deliverables, personas (backend, qa, docs), file types and domains,
  // and d joining b and c.
  CHECK(a.score == 4);
  CHECK(a.level == troupe::complexity::complex);
  CHECK(a.indicators
        == strings{"several distinct deliverables", "cross-cutting concerns",
                   "several file types or domains",
                   "integration requirements"});
  CHECK(a.strategy == "feature");
}

TEST_CASE("the parallel estimate respects max_parallel_agents", "[protocol]") {
  auto p = load(diamond);
  p.settings.max_parallel_agents = 1;
  CHECK(troupe::assess(p).parallel_s == Approx(65));
  p.settings.max_parallel_agents = 8;
  CHECK(troupe::assess(p).parallel_s == Approx(45));
}

TEST_CASE("work guarded by a gate comes after every workstream the gate "
          "waits for",
          "[protocol]") {
  auto p = load(R"(
workstreams:
  - {id: a, estimate_s: 1, executor: {kind: noop}}
  - {id: x, estimate_s: 1, executor: {kind: noop}}
  - {id: y, depends_on: [x], estimate_s: 10, executor: {kind: noop}}
  - {id: z, depends_on: [a], estimate_s: 1, executor: {kind: noop}}
gates:
  - {id: g, after: [a, y]}
)");
  auto a = troupe::assess(p);
  CHECK(a.phases == std::vector<strings>{{"a", "x"}, {"y"}, {"z"}});
  CHECK(a.critical_path == strings{"x", "y", "z"});
  CHECK(a.critical_path_s == Approx(12));
}

TEST_CASE("a single read-only workstream is SIMPLE", "[protocol]") {
  auto p = load("goal: Look around\nworkstreams:\n"
                "  - {id: look, executor: {kind: noop}}\n");
  auto a = troupe::assess(p);
  CHECK(a.level == troupe::complexity::simple);
  CHECK(a.score == 0);
  CHECK(a.indicators.empty());
  CHECK(a.phases == std::vector<strings>{{"look"}});
  CHECK(a.critical_path == strings{"look"});
  CHECK(a.critical_path_s == 0);
  CHECK(a.parallel_s == 0);
}

TEST_CASE("a large plan with many phases is EPIC", "[protocol]") {
  std::string yaml = "workstreams:\n";
  std::string prev;
  for (int i = 0; i < 12; ++i) {
    auto id = "w" + std::to_string(i);
    yaml += "  - {id: " + id + ", owns: [mod" + std::to_string(i) + "/x."
      + (i % 2 ? "ts" : "py") + "], persona: " + (i % 3 ? "backend" : "qa")
      + ", estimate_s: 600"
      + (i >= 2 ? ", depends_on: [w" + std::to_string(i - 2) + "]" : "")
      + ", executor: {kind: noop}}\n";
  }
  auto a = troupe::assess(load(yaml));
  CHECK(a.phases.size() == 6);
  CHECK(a.score == 6);
  CHECK(a.level == troupe::complexity::epic);
}

TEST_CASE("the strategy follows the words of the plan", "[protocol]") {
  auto strategy = [](const std::string& goal) {
    troupe::plan p;
    p.goal = goal;
    return troupe::assess(p).strategy;
  };
  CHECK(strategy("Fix the crash on login") == "bug investigation");
  CHECK(strategy("Audit the API for security vulnerabilities")
        == "security audit");
  CHECK(strategy("Reduce latency and optimize queries") == "performance");
  CHECK(strategy("Refactor the session module") == "refactor");
  CHECK(strategy("Release 2.0 and deploy it") == "deployment");
  CHECK(strategy("Build an ETL pipeline to ingest events") == "data pipeline");
  CHECK(strategy("Add JWT authentication with fixtures") == "feature");
}

TEST_CASE("an assessment has a JSON form", "[protocol]") {
  auto a = troupe::assess(load(diamond));
  nlohmann::json j = a;
  CHECK(j["level"] == "COMPLEX");
  CHECK(j["phases"] == nlohmann::json{{"a"}, {"b", "c"}, {"d"}});
  CHECK(j["critical_path_s"] == 45.0);
  CHECK(j["strategy"] == "feature");
}

TEST_CASE("assessing a plan with a cycle terminates", "[protocol]") {
  troupe::plan p;
  for (auto id : {"a", "b", "c"}) {
    troupe::workstream w;
    w.id = id;
    w.estimate_s = 1;
    p.workstreams.push_back(w);
  }
  p.workstreams[0].depends_on = {"c"};
  p.workstreams[1].depends_on = {"a"};
  p.workstreams[2].depends_on = {"b"};
  auto a = troupe::assess(p);
  CHECK(a.sequential_s == 3);
  CHECK(a.phases.size() == 3);
}
