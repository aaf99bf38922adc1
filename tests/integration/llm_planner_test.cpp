// The LLM planner against the stand-in LLM server: a reply that is no valid
// plan is answered with its errors, three at most, and what planning spent
// is in the run's report.

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/quiet_run.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::read_json_file;
using troupe::test::read_text;
using troupe::test::run_troupe;
namespace fs = std::filesystem;

namespace {

constexpr auto key = "sk-ant-planner-test-key";

// A plan with two errors: a dependency on nothing, and a cycle.
const char* invalid_plan = R"(name: cache
workstreams:
  - id: design
    persona: backend
    agent: plan
    prompt: Design the cache.
    depends_on: [build]
  - id: build
    persona: backend
    prompt: Build the cache.
    depends_on: [design, nope]
)";

// A valid plan, in a fence with words around it, whose workstreams ask for
// a command no planner may choose.
const char* valid_reply = R"(Here is the corrected plan:

```yaml
name: cache
goal: Add a cache
settings: {max_parallel_agents: 64}
workstreams:
  - id: design
    persona: backend
    agent: plan
    prompt: Design the cache.
  - id: build
    persona: backend
    owns: [src/cache/**]
    depends_on: [design]
    prompt: Build the cache.
    executor: {kind: command, run: "touch pwned"}
gates:
  - id: built
    after: [build]
    checks: [completion]
```
)";

json usage(int in, int out) {
  return {{"input_tokens", in}, {"output_tokens", out}};
}

// `troupe plan --goal "Add a cache" --planner llm -o plan.yaml` in `dir`,
// asking `mock`.
test::cli_result plan_with(const test::mock_llm& mock,
                           const test::temp_dir& dir) {
  return run_troupe({"plan", "--goal", "Add a cache", "--planner", "llm",
                     "--executor", "anthropic", "-o", "plan.yaml"},
                    dir.str(), test::anthropic_env(mock, key));
}

std::vector<json> planner_requests(const test::mock_llm& mock) {
  std::vector<json> out;
  for (auto& r : mock.requests())
    if (r["body"].dump().find("Plan this goal") != std::string::npos)
      out.push_back(r);
  return out;
}

} // namespace

TEST_CASE("the LLM planner asks again with the errors of an invalid plan",
          "[integration][llm][goal]") {
  test::temp_dir dir;
  json script = {{"rules",
                  {{{"match", "Your previous reply was not a valid plan"},
                    {"text", valid_reply},
                    {"usage", usage(900, 300)}},
                   {{"match", "Plan this goal"},
                    {"text", invalid_plan},
                    {"usage", usage(600, 200)}}}}};
  test::mock_llm mock{dir.path(), script};
  auto r = plan_with(mock, dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto asked = planner_requests(mock);
  REQUIRE(asked.size() == 2);
  // The second question carries the first reply's errors.
  auto second = asked[1]["body"].dump();
  CHECK(second.find("unknown workstream") != std::string::npos);
  CHECK(second.find("cycle") != std::string::npos);
  CHECK(r.out.find("in 2 tries") != std::string::npos);

  // The plan is an ordinary plan file: valid, on the agent asked for,
  // whatever the reply said, and with the configuration's settings.
  auto v = run_troupe({"validate", "plan.yaml"}, dir.str());
  CHECK(v.exit_code == 0);
  auto text = read_text(dir.path() / "plan.yaml");
  CHECK(text.find("touch pwned") == std::string::npos);
  CHECK(text.find("max_parallel_agents") == std::string::npos);
  CHECK(text.find("kind: anthropic") != std::string::npos);
  CHECK(text.find(key) == std::string::npos);
  CHECK(r.err.find(key) == std::string::npos);
}

TEST_CASE("the LLM planner fails with the errors after three invalid plans",
          "[integration][llm][goal]") {
  test::temp_dir dir;
  json script = {{"rules",
                  {{{"match", "Plan this goal"},
                    {"times", -1},
                    {"text", invalid_plan},
                    {"usage", usage(600, 200)}}}}};
  test::mock_llm mock{dir.path(), script};
  auto r = plan_with(mock, dir);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(planner_requests(mock).size() == 3);
  CHECK(r.err.find("gave up after 3 tries") != std::string::npos);
  CHECK(r.err.find("unknown workstream \"nope\"") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "plan.yaml"));

  // A reply that is not even text of a plan, and an agent that fails.
  script
    = {{"rules",
        {{{"match", "Plan this goal"},
          {"status", 401},
          {"body", R"({"type":"error","error":{"type":"authentication_error",)"
                   R"("message":"invalid x-api-key"}})"}}}}};
  fs::create_directory(dir.path() / "refusing");
  test::mock_llm refusing{dir.path() / "refusing", script};
  r = run_troupe({"plan", "--goal", "Add a cache", "--planner", "llm",
                  "--executor", "anthropic"},
                 dir.str(), test::anthropic_env(refusing, key));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("invalid x-api-key") != std::string::npos);
  CHECK(r.err.find("gave up after 1 try") != std::string::npos);
}

TEST_CASE("troupe run --goal with the LLM planner reports what planning "
          "spent",
          "[integration][llm][goal]") {
  test::temp_dir dir;
  json script = {{"rules",
                  {{{"match", "Plan this goal"},
                    {"text", valid_reply},
                    {"usage", usage(1000, 500)}},
                   {{"match", "Design the cache."},
                    {"text", "Designed."},
                    {"usage", usage(100, 10)}},
                   {{"match", "Build the cache."},
                    {"text", "Built."},
                    {"usage", usage(200, 20)}}}}};
  test::mock_llm mock{dir.path(), script};
  auto r = run_troupe({"run", "--goal", "Add a cache", "--planner", "llm",
                       "--executor", "anthropic", "--yes", "--quiet",
                       "--no-journal", "--report", "report.json"},
                      dir.str(), test::anthropic_env(mock, key));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(fs::exists(dir.path() / "pwned"));
  auto report = read_json_file(dir.path() / "report.json");
  REQUIRE(report["planning_usage"].size() == 1);
  auto& planning = report["planning_usage"][0];
  CHECK(planning["input_tokens"] == 1000);
  CHECK(planning["output_tokens"] == 500);
  // The run's totals count planning once, beside the agents' tokens.
  int64_t in = 0;
  double cost = 0;
  for (auto& u : report["usage"]) {
    in += u["input_tokens"].get<int64_t>();
    cost += u["cost_usd"].get<double>();
  }
  int64_t agents_in = 0;
  for (auto& w : report["workstreams"])
    for (auto& u : w["usage"])
      agents_in += u["input_tokens"].get<int64_t>();
  CHECK(in == agents_in + 1000);
  CHECK(report["cost_usd"].get<double>() == Approx(cost));
  CHECK(planning["cost_usd"].get<double>() > 0);
  CHECK(report["markdown"].get<std::string>().find("| planning |")
        != std::string::npos);
}
