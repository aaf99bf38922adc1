// A claude-code agent that starts sub-agents (the CLI's Agent tool): the
// real CLI against the stand-in server, its sub-agents' usage reported
// apart from its own, every token counted once per model.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/claude_cli.hpp"
#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The agent marked `marker` starts one sub-agent (on the CLI's alias
// `sub_model`) that answers with `sub_in` and `sub_out` tokens, then ends
// once the sub-agent's report is back.
json sub_agent_rules(const std::string& marker, const std::string& sub_model,
                     int sub_in, int sub_out) {
  auto sub = "SUB-" + marker;
  return json::array(
    {{{"match", sub},
      {"unless", "tool_result"},
      {"text", "the sub-agent's findings for " + marker},
      {"usage", {{"input_tokens", sub_in}, {"output_tokens", sub_out}}}},
     {{"match", marker},
      {"unless", "tool_result"},
      {"tool_calls",
       {{{"name", "Agent"},
         {"input",
          {{"description", "look around"},
           {"prompt", sub + ": look around"},
           {"subagent_type", "general-purpose"},
           {"model", sub_model},
           {"run_in_background", false}}}}}},
      {"usage", {{"input_tokens", 100}, {"output_tokens", 20}}}},
     {{"match", marker},
      {"text", "Done with " + marker},
      {"usage", {{"input_tokens", 7}, {"output_tokens", 3}}}}});
}

json script() {
  json rules = json::array();
  for (auto& r : sub_agent_rules("TASK-APART", "haiku", 11, 5))
    rules.push_back(r);
  for (auto& r : sub_agent_rules("TASK-SHARED", "sonnet", 13, 6))
    rules.push_back(r);
  return {{"rules", rules}};
}

// The CLI's own account of a task, run by hand: its result line.
json printed_by_hand(const std::string& cli, const std::string& model,
                     const std::string& prompt) {
  test::temp_dir dir;
  test::mock_llm mock{dir.path(), script()};
  auto r = test::run_shell(
    test::claude_cli_env(mock, dir.path() / "home") + "exec "
      + test::sh_quote(cli) + " -p --output-format json --model "
      + test::sh_quote(model) + " " + test::sh_quote(prompt) + " </dev/null",
    dir.str());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

// `usage` entries of the report, by model.
json by_model(const json& entries) {
  json out = json::object();
  for (auto& u : entries)
    out[u["model"].get<std::string>()] = u;
  return out;
}

void check_matches_cli(const json& ours, const json& printed) {
  auto& mu = printed["modelUsage"];
  REQUIRE(ours.size() == mu.size());
  for (auto& [model, m] : mu.items()) {
    INFO(model);
    REQUIRE(ours.contains(model));
    auto& u = ours[model];
    CHECK(u["input_tokens"] == m["inputTokens"]);
    CHECK(u["output_tokens"] == m["outputTokens"]);
    CHECK(u["cost_usd"].get<double>() == Approx(m["costUSD"].get<double>()));
  }
}

} // namespace

TEST_CASE("an agent's sub-agents' usage is reported apart from its own, "
          "each token counted once",
          "[integration][claude]") {
  auto cli = test::claude_cli();
  test::temp_dir dir;
  test::mock_llm mock{dir.path(), script()};
  auto plan = dir.write("plan.yaml", R"(name: sub-agents
settings: {max_parallel_agents: 2}
workstreams:
  - id: apart
    prompt: "TASK-APART: look around"
    model: claude-sonnet-4-5
    executor: {kind: claude-code}
  - id: shared
    prompt: "TASK-SHARED: look around"
    model: sonnet
    executor: {kind: claude-code}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto events_file = dir.path() / "events.jsonl";
  auto r = test::run_troupe(
    {"run", plan, "--no-journal", "--report", report_file, "--events",
     events_file.string()},
    dir.str(), test::claude_troupe_env(mock, dir.path() / "home", cli));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = test::read_json_file(report_file);

  // Sub-agents on another model: the agent's own calls are what the
  // result's usage says, its sub-agent's the rest.
  auto& apart = test::workstream_of(report, "apart");
  CHECK(apart["summary"] == "Done with TASK-APART");
  CHECK(apart["outputs"]["sub_agents"] == "1");
  auto printed = printed_by_hand(cli, "claude-sonnet-4-5",
                                 "TASK-APART: look "
                                 "around");
  auto total = by_model(apart["usage"]);
  check_matches_cli(total, printed);
  REQUIRE(total.size() == 2);
  REQUIRE(apart["sub_agent_usage"].size() == 1);
  auto& sub = apart["sub_agent_usage"][0];
  CHECK(sub["model"] != "claude-sonnet-4-5");
  CHECK(sub["input_tokens"] == 11);
  CHECK(sub["output_tokens"] == 5);
  CHECK(
    sub["cost_usd"].get<double>()
    == Approx(printed["modelUsage"][sub["model"].get<std::string>()]["costUSD"]
                .get<double>()));
  CHECK(total["claude-sonnet-4-5"]["input_tokens"] == 107);
  CHECK(total["claude-sonnet-4-5"]["output_tokens"] == 23);

  // Sub-agents on the agent's own model: the model's tokens are split,
  // and its cost by what the tokens are worth.
  auto& shared = test::workstream_of(report, "shared");
  CHECK(shared["outputs"]["sub_agents"] == "1");
  auto printed_shared
    = printed_by_hand(cli, "sonnet", "TASK-SHARED: look around");
  auto shared_total = by_model(shared["usage"]);
  check_matches_cli(shared_total, printed_shared);
  REQUIRE(shared_total.size() == 1);
  auto& whole = shared_total.begin().value();
  CHECK(whole["input_tokens"] == 120);
  CHECK(whole["output_tokens"] == 29);
  REQUIRE(shared["sub_agent_usage"].size() == 1);
  auto& shared_sub = shared["sub_agent_usage"][0];
  CHECK(shared_sub["model"] == whole["model"]);
  CHECK(shared_sub["input_tokens"] == 13);
  CHECK(shared_sub["output_tokens"] == 6);
  // Sonnet's input costs a fifth of its output, at the CLI's prices as at
  // Troupe's: 13 + 5 * 6 of 120 + 5 * 29 units.
  CHECK(shared_sub["cost_usd"].get<double>()
        == Approx(whole["cost_usd"].get<double>() * 43 / 265));

  // The run's totals count each token once per model, and say which part
  // the sub-agents spent.
  std::map<std::string, std::pair<int64_t, double>> expected;
  for (auto* w : {&apart, &shared})
    for (auto& u : (*w)["usage"]) {
      auto& [tokens, cost] = expected[u["model"].get<std::string>()];
      tokens += u["input_tokens"].get<int64_t>();
      cost += u["cost_usd"].get<double>();
    }
  auto run_total = by_model(report["usage"]);
  REQUIRE(run_total.size() == expected.size());
  for (auto& [model, e] : expected) {
    CHECK(run_total[model]["input_tokens"] == e.first);
    CHECK(run_total[model]["cost_usd"].get<double>() == Approx(e.second));
  }
  CHECK(report["cost_usd"].get<double>()
        == Approx(printed["total_cost_usd"].get<double>()
                  + printed_shared["total_cost_usd"].get<double>()));
  auto run_sub = by_model(report["sub_agent_usage"]);
  int64_t sub_in = 0;
  for (auto& [model, u] : run_sub.items())
    sub_in += u["input_tokens"].get<int64_t>();
  CHECK(sub_in == 11 + 13);

  // The Markdown shows each agent's own row and its sub-agents' apart.
  auto md = report["markdown"].get<std::string>();
  CHECK(md.find("| apart | claude-sonnet-4-5 | 107 | 23 |")
        != std::string::npos);
  CHECK(md.find("| apart (sub-agents) | " + sub["model"].get<std::string>()
                + " | 11 | 5 |")
        != std::string::npos);
  CHECK(md.find("| shared (sub-agents) | "
                + shared_sub["model"].get<std::string>() + " | 13 | 6 |")
        != std::string::npos);
  CHECK(md.find("| of which sub-agents |") != std::string::npos);

  // The progress said when a sub-agent started.
  bool told = false;
  for (auto& line : test::split_lines(test::read_text(events_file))) {
    auto e = json::parse(line);
    told = told
           || (e["kind"] == "ws_progress" && e["subject"] == "apart"
               && e["message"].get<std::string>().find(", 1 sub-agent")
                    != std::string::npos);
  }
  CHECK(told);
}
