// The run's synthesis written by an agent (`synthesis: {executor: ...}`),
// run by the real `troupe` against the stand-in LLM server: it comes after
// everything else, reads every result and gate, runs on the deep tier, and
// its words and tokens are in the report; how it ends never changes how
// the work went; it survives its coordinator's death like any work.

#include <filesystem>
#include <string>

#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/crash_dir.hpp"
#include "support/mock_llm.hpp"
#include "support/quiet_run.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_quietly;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

constexpr auto secret_key = "sk-ant-synthesis-k3y-never-printed";

std::string anthropic_env(const test::mock_llm& mock) {
  return test::anthropic_env(mock, secret_key);
}

constexpr auto synthesis_reply
  = "The scout found the entry point, main.cpp.\n\nThe lint step failed: 2 "
    "warnings. Fix them next.";

// A scout on an LLM, a command that fails, a gate, and a synthesis agent;
// `synthesis` is the plan's synthesis section.
std::string team_plan(const std::string& synthesis,
                      const std::string& on_failure = "block_dependents") {
  return "name: synth-team\n"
         "goal: Say what the code does\n"
         "settings: {max_parallel_agents: 2, on_failure: "
         + on_failure
         + "}\n"
           "workstreams:\n"
           "  - {id: scout, agent: explore, prompt: \"Find the entry "
           "points.\",\n"
           "     executor: {kind: anthropic}}\n"
           "  - {id: lint, executor: {kind: command, run: \"echo 'lint: 2 "
           "warnings'; exit 3\"}}\n"
           "gates:\n"
           "  - {id: review, after: [scout], checks: [completion]}\n"
           "synthesis: "
         + synthesis + "\n";
}

json team_script(json synthesis_rule) {
  synthesis_rule["match"] = "Write the synthesis of this run";
  return {{"rules",
           {synthesis_rule,
            {{"match", "Find the entry points."},
             {"text", "The entry point is main.cpp.\nentry: main.cpp"},
             {"usage", {{"input_tokens", 1000}, {"output_tokens", 200}}}}}}};
}

// The requests whose prompt is the synthesis's.
std::vector<json> synthesis_requests(const test::mock_llm& mock) {
  std::vector<json> out;
  for (auto& q : mock.requests())
    if (q["body"]["messages"][0]["content"].get<std::string>().find(
          "Write the synthesis of this run")
        != std::string::npos)
      out.push_back(q);
  return out;
}

} // namespace

TEST_CASE("an agent on the deep tier writes the run's synthesis from every "
          "result and gate, and its tokens are the report's",
          "[integration][llm][synthesis]") {
  test::temp_dir dir;
  test::mock_llm mock{
    dir.path(),
    team_script({{"text", synthesis_reply},
                 {"usage", {{"input_tokens", 5000}, {"output_tokens", 300}}}})};
  auto plan
    = dir.write("plan.yaml", team_plan("{persona: analyzer, executor: {kind: "
                                       "anthropic}}"));
  auto [r, report] = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.out << r.err);
  // The work failed (lint), and so does the run, synthesis or not.
  CHECK(r.exit_code == 1);
  CHECK(report["status"] == "failed");
  CHECK(report["synthesis"] == synthesis_reply);

  // It ran last, on the deep tier, with the synthesis persona's prompt.
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  auto& body = reqs.back()["body"];
  CHECK(body["model"] == "claude-opus-4-5");
  CHECK(body["system"]
        == test::read_text(fs::path{TROUPE_SOURCE_DIR}
                           / "runtime/personas/analyzer.md"));
  // What it read: how the work ended, every result, every gate.
  auto prompt = body["messages"][0]["content"].get<std::string>();
  CHECK_THAT(prompt, Catch::StartsWith("Write the synthesis of this run"));
  CHECK_THAT(prompt, Catch::Contains("Plan: synth-team\nGoal: Say what the "
                                     "code does"));
  CHECK_THAT(prompt, Catch::Contains("## How the run's work ended\nfailed: 1 "
                                     "of 2 workstreams succeeded, 1 of 1 "
                                     "gates passed"));
  CHECK_THAT(prompt, Catch::Contains("### scout (succeeded)\nentry: main.cpp"));
  CHECK_THAT(prompt, Catch::Contains("The entry point is main.cpp."));
  CHECK_THAT(prompt, Catch::Contains("### lint (failed)"));
  CHECK_THAT(prompt, Catch::Contains("lint: 2 warnings"));
  CHECK_THAT(prompt, Catch::Contains("## Gates\n\n### review (passed)\n- "
                                     "completion: passed"));

  // Its work is in the report like any agent's: its row, its tokens at
  // the deep tier's price, in the run's totals; last on the critical path.
  auto& s = test::workstream_of(report, "synthesis");
  CHECK(s["status"] == "succeeded");
  CHECK(s["persona"] == "analyzer");
  REQUIRE(s["usage"].size() == 1);
  CHECK(s["usage"][0]["model"] == "claude-opus-4-5");
  CHECK(s["usage"][0]["input_tokens"] == 5000);
  // claude-opus-4-5: $5 and $25 per million tokens in and out.
  CHECK(s["usage"][0]["cost_usd"].get<double>()
        == Approx((5000 * 5 + 300 * 25) / 1e6));
  double total = 0;
  for (auto& w : report["workstreams"])
    for (auto& u : w["usage"])
      total += u["cost_usd"].get<double>();
  CHECK(report["cost_usd"].get<double>() == Approx(total));
  CHECK(report["usage"].size() == 2);
  CHECK(report["critical_path"].back() == "synthesis");

  // The Markdown report opens with it, then Troupe's own account.
  auto md = report["markdown"].get<std::string>();
  auto at = md.find(std::string{"## Synthesis\n\n"} + synthesis_reply
                    + "\n\n## Workstreams\n");
  CHECK(at != std::string::npos);
  CHECK(at < md.find("| synthesis | analyzer | succeeded |"));
  CHECK(test::text_under(dir.path()).find(secret_key) == std::string::npos);
}

TEST_CASE("a synthesis agent that fails leaves Troupe's account, and the "
          "run's status is its work's",
          "[integration][llm][synthesis]") {
  test::temp_dir dir;
  test::mock_llm mock{
    dir.path(),
    team_script(
      {{"status", 400},
       {"times", -1},
       {"error",
        {{"type", "invalid_request_error"},
         {"message", "prompt is too long: 300000 tokens > 200000"}}}})};
  // The lint step succeeds this time: everything but the synthesis did.
  auto text = team_plan("{executor: {kind: anthropic}, retries: 1}");
  text.replace(text.find("exit 3"), 6, "exit 0");
  auto plan = dir.write("plan.yaml", text);
  auto [r, report] = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(report["status"] == "succeeded");
  CHECK_FALSE(report.contains("synthesis"));
  auto& s = test::workstream_of(report, "synthesis");
  CHECK(s["status"] == "failed");
  // Its retry came to the same.
  CHECK(s["attempts"] == 2);
  CHECK(synthesis_requests(mock).size() == 2);
  auto md = report["markdown"].get<std::string>();
  CHECK_THAT(md, Catch::Contains("## Synthesis\n\nNot written: its agent "
                                 "ended failed ("));
  CHECK_THAT(md, Catch::Contains("prompt is too long"));
  CHECK_THAT(md, Catch::Contains("What follows is Troupe's own account."));
}

TEST_CASE("a run that is cancelled writes no synthesis",
          "[integration][llm][synthesis]") {
  test::temp_dir dir;
  test::mock_llm mock{dir.path(), team_script({{"text", "never asked"}})};
  auto plan = dir.write(
    "plan.yaml", team_plan("{executor: {kind: anthropic}}", "fail_fast"));
  auto [r, report] = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(report["status"] == "failed");
  CHECK(synthesis_requests(mock).empty());
  CHECK_FALSE(report.contains("synthesis"));
  for (auto& w : report["workstreams"])
    CHECK(w["id"] != "synthesis");
  CHECK_THAT(report["markdown"].get<std::string>(),
             Catch::Contains("Not written: the run stopped before its "
                             "synthesis agent started."));
}

TEST_CASE("kill -9 around the synthesis, then resume: it runs again only if "
          "its result was not journaled",
          "[integration][llm][synthesis][journal]") {
  auto after = GENERATE(as<std::string>{}, "ws_ended:scout",
                        "ws_dispatched:synthesis", "ws_ended:synthesis");
  INFO("killed after " << after);
  test::temp_dir dir;
  test::mock_llm mock{
    dir.path(),
    team_script({{"text", synthesis_reply},
                 {"usage", {{"input_tokens", 5000}, {"output_tokens", 300}}}})};
  auto text = team_plan("{executor: {kind: anthropic}}");
  text.replace(text.find("exit 3"), 6, "exit 0");
  // Lint waits for `go`, so that a run killed after the scout's end still
  // has lint running and cannot have started its synthesis: were lint
  // done, the synthesis could start right after the scout's end and be
  // journaled in the same commit.
  text.replace(text.find("echo 'lint"), 4,
               "test -e go || exec sleep 600; echo");
  auto plan = dir.write("plan.yaml", text);
  if (after != "ws_ended:scout")
    dir.write("go", "");
  auto journal = (dir.path() / "journal.db").string();
  auto killed = run_troupe(
    {"run", plan, "--workdir", dir.str(), "--journal", journal, "-q"},
    dir.str(),
    anthropic_env(mock)
      + "export "
        "TROUPE_JOURNAL_KILL_AFTER="
      + after + "; ");
  INFO(killed.err);
  REQUIRE(killed.signal == SIGKILL);
  auto asked_before = synthesis_requests(mock).size();
  auto id = test::only_run(journal);
  dir.write("go", "");
  auto report_file = dir.path() / "report.json";
  auto r = run_troupe({"resume", id, "--journal", journal, "--report",
                       report_file.string(), "-q"},
                      dir.str(), anthropic_env(mock));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = test::read_json_file(report_file);
  CHECK(report["status"] == "succeeded");
  CHECK(report["synthesis"] == synthesis_reply);
  // The scout's journaled result stands: it was asked once.
  CHECK(mock.requests().size() - synthesis_requests(mock).size() == 1);
  auto asked = synthesis_requests(mock).size();
  if (after == "ws_ended:synthesis") {
    CHECK(asked_before == 1);
    CHECK(asked == 1);
  } else {
    CHECK(asked == asked_before + 1);
  }
  bool rerun = false;
  for (auto& w : report["rerun"])
    rerun = rerun || w == "synthesis";
  CHECK(rerun == (after == "ws_dispatched:synthesis"));
}

TEST_CASE("troupe plan shows who writes the synthesis, what it is asked and "
          "what it may cost",
          "[integration][synthesis]") {
  test::temp_dir dir;
  auto with
    = dir.write("with.yaml", team_plan("{persona: docs, executor: {kind: "
                                       "anthropic}, prompt: Tell the team.}"));
  auto r = run_troupe({"plan", with, "--show-prompts"}, dir.str());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Synthesis: an agent (docs, anthropic, "
                                    "claude-opus-4-5) writes it from every "
                                    "result once everything else has ended"));
  CHECK_THAT(r.out, Catch::Contains("for 2 agents"));
  CHECK_THAT(
    r.out, Catch::Contains("=== synthesis (docs, anthropic, claude-opus-4-5)\n"
                           "--- system prompt (built-in)\n"));
  CHECK_THAT(r.out, Catch::Contains("--- task\nTell the team.\n\nPlan: "
                                    "synth-team\nGoal: Say what the code "
                                    "does\n"));
  CHECK_THAT(r.out, Catch::Contains("## Gates"));

  auto without = dir.write("without.yaml", team_plan("{persona: docs}"));
  auto plain = run_troupe({"plan", without, "--show-prompts"}, dir.str());
  REQUIRE(plain.exit_code == 0);
  CHECK_THAT(plain.out, Catch::Contains("Synthesis: Troupe's account of the "
                                        "results"));
  CHECK_THAT(plain.out, Catch::Contains("for 1 agent "));
  CHECK(plain.out.find("=== synthesis") == std::string::npos);
}

TEST_CASE("a command can write the synthesis from what TROUPE_CONTEXT holds",
          "[integration][synthesis]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", R"yaml(name: by-command
workstreams:
  - {id: a, executor: {kind: command, run: "echo made a"}}
  - {id: b, depends_on: [a], executor: {kind: command, run: "echo made b"}}
gates:
  - {id: g, after: [a], checks: [completion]}
synthesis:
  executor:
    kind: command
    run: >-
      grep -o '"outcome":"[^"]*"' "$TROUPE_CONTEXT";
      grep -o '"id":"[abg]"' "$TROUPE_CONTEXT" | sort | uniq -c | tr -s ' ' 
)yaml");
  auto [r, report] = run_quietly(dir, plan);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(report["synthesis"]
        == "\"outcome\":\"succeeded: 2 of 2 workstreams succeeded, 1 of 1 "
           "gates passed\"\n 1 \"id\":\"a\"\n 1 \"id\":\"b\"\n 1 "
           "\"id\":\"g\"");
}

TEST_CASE("the synthesis reads a huge run within its bound, counting what "
          "does not fit",
          "[integration][synthesis]") {
  test::temp_dir dir;
  // A result of a megabyte, and thousands of small ones.
  std::string text = R"yaml(name: huge
workstreams:
  - id: big
    executor:
      kind: command
      run: head -c 1000000 /dev/zero | tr '\0' x; echo
gates:
  - id: g
    after: [big]
    checks:
      - completion
      - {run: "head -c 1000000 /dev/zero | tr '\\0' y; exit 1"}
synthesis:
  executor:
    kind: command
    run: >-
      wc -c < "$TROUPE_CONTEXT";
      grep -o '"left_out":[0-9]*' "$TROUPE_CONTEXT";
      grep -o '"id":"w[0-9]*"' "$TROUPE_CONTEXT" | wc -l;
      grep -o '"id":"g"' "$TROUPE_CONTEXT" | wc -l
)yaml";
  text.insert(text.find("gates:"), [] {
    std::string ws;
    for (int i = 0; i < 4000; ++i)
      ws += "  - {id: w" + std::to_string(i) + "}\n";
    return ws;
  }());
  auto plan = dir.write("plan.yaml", text);
  auto [r, report] = run_quietly(dir, plan);
  INFO(r.err);
  // The gate's command failed: the run is blocked, and synthesized.
  REQUIRE(report["status"] == "blocked");
  auto lines = test::split_lines(report["synthesis"].get<std::string>());
  REQUIRE(lines.size() == 4);
  // The gate is there, its huge output cut to a quarter of the bound.
  CHECK(lines[3] == "1");
  // The context stays within the bound, with room for the rest of it.
  auto bytes = std::stoul(lines[0]);
  CHECK(bytes <= 256 * 1024 + 4096);
  CHECK(bytes > 128 * 1024);
  // What did not fit is counted; what did is there, and nothing twice.
  REQUIRE(lines[1].rfind("\"left_out\":", 0) == 0);
  auto left_out = std::stoul(lines[1].substr(11));
  auto listed = std::stoul(lines[2]);
  CHECK(left_out > 0);
  CHECK(listed + left_out == 4000);
}

TEST_CASE("under a budget, the synthesis agent's share is kept for it",
          "[integration][llm][synthesis]") {
  test::temp_dir dir;
  test::mock_llm mock{
    dir.path(),
    {{"rules",
      {{{"match", "Write the synthesis of this run"}, {"text", "all done"}},
       {{"match", "STEP"},
        {"text", "step done"},
        {"usage", {{"input_tokens", 1000}, {"output_tokens", 200}}}}}}}};
  auto plan = dir.write("plan.yaml", R"yaml(name: budgeted
settings:
  max_cost_usd: 1.0
  prices: {m: {input: 0, output: 1000}}
workstreams:
  - {id: a, prompt: "STEP", estimate_usd: [0.01, 0.02],
     executor: {kind: anthropic, model: m}}
synthesis: {executor: {kind: anthropic, model: m}}
)yaml");
  auto [r, report] = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(report["synthesis"] == "all done");
  // $1 between two agents: $0.50 for the first, 500 tokens at $1,000 a
  // million; what is left after its $0.20 for the synthesis, 800 tokens.
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["body"]["max_tokens"] == 500);
  CHECK(reqs[1]["body"]["max_tokens"] == 800);
}

TEST_CASE("kill -9 after a retried agent ended, then resume: every "
          "attempt's tokens count once",
          "[integration][llm][journal]") {
  // The first attempt's stream is cut after its start, with its input
  // tokens counted, and the provider is not asked again within the
  // attempt; the workstream's retry succeeds. The run goes on to a command.
  json script
    = {{"rules",
        {{{"match", "STEP"},
          {"unless", "Earlier attempts"},
          {"cut_after_events", 1},
          {"usage", {{"input_tokens", 700}, {"output_tokens", 50}}}},
         {{"match", "STEP"},
          {"text", "done"},
          {"usage", {{"input_tokens", 1000}, {"output_tokens", 200}}}}}}};
  auto plan_text = R"yaml(name: retried
settings: {max_cost_usd: 5}
workstreams:
  - {id: a, prompt: "STEP", retries: 1, executor: {kind: anthropic}}
  - {id: b, depends_on: [a], executor: {kind: command, run: "echo b"}}
)yaml";
  auto env = [](const test::mock_llm& mock, const test::temp_dir& d) {
    return anthropic_env(mock) + "export TROUPE_CONFIG="
           + sh_quote(
             d.write("config.yaml", "providers: {anthropic: {retries: 0}}\n"))
           + "; ";
  };
  // Uninterrupted, for reference.
  test::temp_dir ref_dir;
  test::mock_llm ref_mock{ref_dir.path(), script};
  auto [ref, ref_report] = run_quietly(
    ref_dir, ref_dir.write("plan.yaml", plan_text), env(ref_mock, ref_dir));
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);
  auto& ref_a = test::workstream_of(ref_report, "a");
  REQUIRE(ref_a["attempts"] == 2);
  REQUIRE(ref_a["usage"][0]["input_tokens"] == 1700);

  test::temp_dir dir;
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", plan_text);
  auto journal = (dir.path() / "journal.db").string();
  auto killed = run_troupe(
    {"run", plan, "--workdir", dir.str(), "--journal", journal, "-q"},
    dir.str(),
    env(mock, dir) + "export TROUPE_JOURNAL_KILL_AFTER=ws_ended:a; ");
  REQUIRE(killed.signal == SIGKILL);
  auto report_file = dir.path() / "report.json";
  auto r = run_troupe({"resume", test::only_run(journal), "--journal", journal,
                       "--report", report_file.string(), "-q"},
                      dir.str(), env(mock, dir));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto report = test::read_json_file(report_file);
  CHECK(mock.requests().size() == 2);
  CHECK(test::workstream_of(report, "a")["usage"] == ref_a["usage"]);
  CHECK(report["usage"] == ref_report["usage"]);
  CHECK(report["cost_usd"] == ref_report["cost_usd"]);
}
