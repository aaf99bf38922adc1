// Cost and budget of agent runs, through the real `troupe` against the
// stand-in LLM server: what `troupe plan` estimates before anything runs,
// and how `max_cost_usd` shares itself among agents and stops a run.

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
using troupe::test::run_troupe;

namespace {

// Environment for a `troupe` that asks `mock` with a key of its own.
std::string anthropic_env(const test::mock_llm& mock) {
  return test::anthropic_env(mock, "sk-ant-test-budget-key");
}

} // namespace

TEST_CASE("a budget shares itself among agents, stops dispatching before it "
          "would be passed, and the report says so",
          "[integration][llm]") {
  test::temp_dir dir;
  // Every call: 1,000 tokens in (free here), 200 out at $1,000 a million:
  // $0.20.
  json script
    = {{"rules",
        {{{"match", "STEP"},
          {"times", -1},
          {"text", "done"},
          {"usage", {{"input_tokens", 1000}, {"output_tokens", 200}}}}}}};
  test::mock_llm mock{dir.path(), script};
  std::string plan = R"(name: budgeted
settings:
  max_parallel_agents: 1
  max_cost_usd: 1.0
  prices: {m: {input: 0, output: 1000}}
workstreams:
)";
  for (int i = 1; i <= 5; ++i)
    plan
      += "  - {id: s" + std::to_string(i) + ", prompt: \"STEP "
         + std::to_string(i)
         + "\", estimate_usd: [0.2, 0.3], executor: {kind: anthropic, model: m}"
         + (i > 1 ? ", depends_on: [s" + std::to_string(i - 1) + "]" : "")
         + "}\n";
  auto file = dir.write("plan.yaml", plan);
  // --max-cost wins over the plan's: $0.50 pays for two calls, and a third
  // would pass it.
  auto events = (dir.path() / "events.jsonl").string();
  auto r = run_troupe({"run", file, "-q", "--no-journal", "--max-cost", "0.5",
                       "--report", (dir.path() / "report.json").string(),
                       "--events", events},
                      dir.str(), anthropic_env(mock));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = test::read_json_file(dir.path() / "report.json");
  CHECK(report["status"] == "failed");
  CHECK(report["budget_stopped"] == true);
  CHECK(report["max_cost_usd"] == 0.5);
  CHECK(report["cost_usd"].get<double>() == Approx(0.4));
  // On the deep tier (Opus: $5 in, $25 out a million) the same tokens.
  CHECK(report["deep_tier_cost_usd"].get<double>()
        == Approx(2 * (1000 * 5 + 200 * 25) / 1e6));
  CHECK(test::workstream_of(report, "s1")["status"] == "succeeded");
  CHECK(test::workstream_of(report, "s2")["status"] == "succeeded");
  for (auto id : {"s3", "s4", "s5"}) {
    auto& w = test::workstream_of(report, id);
    CHECK(w["status"] == "cancelled");
    CHECK(w["summary"].get<std::string>().rfind(
            "not run: the budget of $0.5000 would be passed: $0.4000 spent", 0)
          == 0);
  }
  auto md = report["markdown"].get<std::string>();
  CHECK(md.find("Budget: $0.4000 of $0.5000 spent. The budget stopped the "
                "run")
        != std::string::npos);
  CHECK(md.find("the same tokens would have cost $0.0200")
        != std::string::npos);
  // Each agent got a share of what was left, and asked for no more
  // output than its share pays for: $0.50 over 5 agents is $0.10, but
  // never below the lowest estimate, $0.20: 200 tokens.
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["body"]["max_tokens"] == 200);
  CHECK(reqs[1]["body"]["max_tokens"] == 200);
  bool said = false;
  for (auto& line : test::split_lines(test::read_text(events)))
    if (auto e = json::parse(line); true)
      said = said
             || (e["kind"] == "run_cancelling"
                 && e["message"].get<std::string>().rfind("budget: ", 0) == 0);
  CHECK(said);
}

TEST_CASE("troupe plan estimates what the agents cost and warns of a budget "
          "below it",
          "[integration][llm]") {
  test::temp_dir dir;
  auto file = dir.write("plan.yaml", R"(name: estimated
settings:
  max_cost_usd: 0.5
  cost_estimates: {fast: [0.01, 0.1]}
workstreams:
  - {id: a, agent: explore, prompt: A, executor: {kind: anthropic}}
  - {id: b, agent: explore, prompt: B, executor: {kind: anthropic}}
  - {id: c, estimate_usd: [0.25, 0.5], prompt: C, owns: [x],
     executor: {kind: anthropic}}
  - {id: d, executor: {kind: command, run: "true"}}
)");
  auto r = run_troupe({"plan", file}, dir.str());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Estimated cost: $0.2700 to $0.7000 for 3 agents")
        != std::string::npos);
  CHECK(r.out.find("Budget: $0.5000, below the highest estimate: the run may "
                   "stop before every agent has run")
        != std::string::npos);
  auto j = run_troupe({"plan", file, "--json"}, dir.str());
  REQUIRE(j.exit_code == 0);
  auto a = json::parse(j.out);
  CHECK(a["agents"] == 3);
  CHECK(a["cost_usd"][0].get<double>() == Approx(0.27));
  CHECK(a["cost_usd"][1].get<double>() == Approx(0.7));
}
