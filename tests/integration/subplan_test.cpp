// Sub-plans: a workstream whose output is a plan runs it as its children,
// nested, bounded, resumable, on one machine and on a cluster, made by a
// script or by an agent.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/killed_run.hpp"
#include "support/cluster.hpp"
#include "support/mock_llm.hpp"
#include "support/quiet_run.hpp"
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

// Three levels: `discover` prints the middle plan, whose `deeper` prints
// the leaves. In the middle, `broken` fails (and is retried once), and
// `after-broken` waits for it.
const char* three_levels = R"plan(name: three-levels
workstreams:
  - id: discover
    output: plan
    executor:
      kind: command
      run: |
        echo run >> discover.count
        cat <<'YAML'
        name: middle
        workstreams:
          - {id: fine, executor: {kind: command, run: "echo fine"}}
          - {id: broken, retries: 1, executor: {kind: command, run: "echo broken >> broken.count; exit 3"}}
          - {id: after-broken, depends_on: [broken], executor: {kind: command, run: "echo never"}}
          - id: deeper
            output: plan
            executor:
              kind: command
              run: |
                printf 'name: leaves\nworkstreams:\n  - {id: x, executor: {kind: command, run: "echo leaf x"}}\n  - {id: y, depends_on: [x], executor: {kind: command, run: "echo leaf y"}}\n'
          - {id: last, depends_on: [deeper], executor: {kind: command, run: "echo last"}}
        gates:
          - {id: leaves-done, after: [deeper], checks: [completion, {run: "test -f discover.count"}]}
        YAML
  - id: gather
    depends_on: [discover]
    executor: {kind: command, run: "echo gathered"}
  - id: aside
    executor: {kind: command, run: "echo aside"}
)plan";

std::map<std::string, std::string> statuses(const json& report) {
  std::map<std::string, std::string> out;
  for (auto& w : report["workstreams"])
    out[w["id"]] = w["status"];
  return out;
}

} // namespace

TEST_CASE("a three-level sub-plan runs, and a failure in its middle blocks "
          "what waits for it",
          "[integration][subplan]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", three_levels);
  auto r = run_troupe({"run", plan, "--no-journal", "-q", "--report",
                       "report.json", "--events", "events.jsonl"},
                      dir.str());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = read_json_file(dir.path() / "report.json");
  CHECK(report["status"] == "failed");
  CHECK(
    statuses(report)
    == std::map<std::string, std::string>{{"discover", "failed"},
                                          {"discover/fine", "succeeded"},
                                          {"discover/broken", "failed"},
                                          {"discover/after-broken", "blocked"},
                                          {"discover/deeper", "succeeded"},
                                          {"discover/deeper/x", "succeeded"},
                                          {"discover/deeper/y", "succeeded"},
                                          {"discover/last", "succeeded"},
                                          {"gather", "blocked"},
                                          {"aside", "succeeded"}});
  // Retries hold inside: the broken child ran twice, its parent once.
  CHECK(workstream_of(report, "discover/broken")["attempts"] == 2);
  CHECK(read_text(dir.path() / "broken.count") == "broken\nbroken\n");
  CHECK(read_text(dir.path() / "discover.count") == "run\n");
  auto summary
    = workstream_of(report, "discover")["summary"].get<std::string>();
  CHECK(summary.find("sub-plan middle: 3 of 5 workstreams succeeded")
        != std::string::npos);
  CHECK(summary.find("discover/broken failed") != std::string::npos);
  CHECK(workstream_of(report, "discover/deeper")["summary"]
        == "sub-plan leaves: 2 of 2 workstreams succeeded");
  // The report lists each parent with its children after it: the tree.
  std::vector<std::string> order;
  for (auto& w : report["workstreams"])
    order.push_back(w["id"]);
  CHECK(order
        == std::vector<std::string>{
          "discover", "discover/fine", "discover/broken",
          "discover/after-broken", "discover/deeper", "discover/deeper/x",
          "discover/deeper/y", "discover/last", "gather", "aside"});
  // Gates hold inside a sub-plan, their ids under its parent's.
  REQUIRE(report["gates"].size() == 1);
  CHECK(report["gates"][0]["id"] == "discover/leaves-done");
  CHECK(report["gates"][0]["status"] == "passed");
  // The expansions are events, carrying the plans.
  std::ifstream in{dir.path() / "events.jsonl"};
  std::string line;
  std::set<std::string> expanded;
  while (std::getline(in, line)) {
    auto ev = json::parse(line);
    if (ev["kind"] == "ws_expanded")
      expanded.insert(ev["subject"].get<std::string>());
  }
  CHECK(expanded == std::set<std::string>{"discover", "discover/deeper"});
}

TEST_CASE("a sub-plan deeper than allowed, too big or invalid fails its "
          "parent with why",
          "[integration][subplan]") {
  test::temp_dir dir;
  SECTION("deeper than max_subplan_depth") {
    auto text = std::string{three_levels};
    text.replace(text.find("workstreams:\n"), 0,
                 "settings: {max_subplan_depth: 1}\n");
    auto r = test::run_quietly(dir, dir.write("plan.yaml", text));
    CHECK(r.cli.exit_code == 1);
    auto& deeper = workstream_of(r.report, "discover/deeper");
    CHECK(deeper["status"] == "failed");
    CHECK(deeper["summary"]
          == "its sub-plan cannot run: it would nest 2 deep, more than "
             "settings.max_subplan_depth (1)");
    CHECK(statuses(r.report).count("discover/deeper/x") == 0);
  }
  SECTION("more workstreams than max_workstreams") {
    auto text = std::string{three_levels};
    text.replace(text.find("workstreams:\n"), 0,
                 "settings: {max_workstreams: 7}\n");
    auto r = test::run_quietly(dir, dir.write("plan.yaml", text));
    CHECK(r.cli.exit_code == 1);
    CHECK(workstream_of(r.report, "discover")["summary"]
          == "its sub-plan cannot run: the run would have 8 workstreams, "
             "more than settings.max_workstreams (7)");
  }
  SECTION("a plan that is not valid, retried as any failure") {
    auto r = test::run_quietly(dir, dir.write("plan.yaml", R"(name: bad
workstreams:
  - id: discover
    output: plan
    retries: 1
    executor:
      kind: command
      run: |
        echo run >> discover.count
        printf 'name: loop\nworkstreams:\n  - {id: a, depends_on: [b]}\n  - {id: b, depends_on: [a]}\n'
)"));
    CHECK(r.cli.exit_code == 1);
    auto& discover = workstream_of(r.report, "discover");
    CHECK(discover["status"] == "failed");
    CHECK(discover["attempts"] == 2);
    CHECK(discover["summary"].get<std::string>().find(
            "its sub-plan cannot run: 1 error in the plan it made: ")
          == 0);
    CHECK(discover["output"].get<std::string>().find("cycle")
          != std::string::npos);
    CHECK(read_text(dir.path() / "discover.count") == "run\nrun\n");
  }
}

TEST_CASE("a sub-plan's gates, fixers included, end before its parent does",
          "[integration][subplan]") {
  test::temp_dir dir;
  // The gate comes last in the sub-plan and guards nothing in it; its fixer
  // takes a while. What depends on the parent sees the fixed tree.
  auto plan = [&](const std::string& fixer) {
    return dir.write("plan.yaml", R"(name: gated
workstreams:
  - id: split
    output: plan
    executor:
      kind: command
      run: |
        cat <<'YAML'
        name: inner
        workstreams:
          - {id: work, executor: {kind: command, run: "echo work"}}
        gates:
          - id: g
            after: [work]
            checks: [{run: "test -f fixed"}]
            remediate: {max_attempts: 1, executor: {kind: command, run: ")"
                                    + fixer + R"("}}
        YAML
  - id: after
    depends_on: [split]
    executor: {kind: command, run: "test -f fixed && echo saw it fixed"}
)");
  };
  auto r = test::run_quietly(dir, plan("sleep 0.5; touch fixed"));
  INFO(r.cli.out << r.cli.err);
  CHECK(r.cli.exit_code == 0);
  CHECK(workstream_of(r.report, "split")["status"] == "succeeded");
  CHECK(workstream_of(r.report, "after")["summary"] == "saw it fixed");

  // A gate that stays failed fails its parent, and blocks what follows.
  fs::remove(dir.path() / "fixed");
  r = test::run_quietly(dir, plan("echo no luck"));
  CHECK(r.cli.exit_code == 1);
  auto& split = workstream_of(r.report, "split");
  CHECK(split["status"] == "failed");
  CHECK(split["summary"]
        == "sub-plan inner: 1 of 1 workstreams succeeded; gate split/g "
           "failed");
  CHECK(workstream_of(r.report, "after")["status"] == "blocked");
}

TEST_CASE("a sub-plan's first workstreams get what their parent got",
          "[integration][subplan]") {
  test::temp_dir dir;
  auto r = test::run_quietly(dir, dir.write("plan.yaml", R"(name: handed
workstreams:
  - {id: fetch, executor: {kind: command, run: "echo fetched 42 rows"}}
  - id: split
    depends_on: [fetch]
    output: plan
    executor:
      kind: command
      run: |
        cat <<'YAML'
        name: inner
        workstreams:
          - {id: first, executor: {kind: command, run: "grep -o 'fetched 42 rows' \"$TROUPE_CONTEXT\""}}
        YAML
)"));
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK(workstream_of(r.report, "split/first")["summary"] == "fetched 42 rows");
}

TEST_CASE("a run resumed after kill -9 keeps the sub-plan it had",
          "[integration][subplan][journal]") {
  test::temp_dir dir;
  auto text = std::string{three_levels};
  // Nothing fails this time.
  text.replace(text.find("exit 3"), 6, "true");
  auto plan = dir.write("plan.yaml", text);
  auto report = test::kill_and_resume(dir, plan, "ws_expanded:discover");
  CHECK(report["workstreams"].size() == 10);
  CHECK(workstream_of(report, "discover/deeper/y")["status"] == "succeeded");
  CHECK(workstream_of(report, "gather")["status"] == "succeeded");
  // The plan was made once: the resumed run took it from the journal.
  CHECK(read_text(dir.path() / "discover.count") == "run\n");
}

TEST_CASE("an agent's reply can be the plan of its children",
          "[integration][subplan][llm]") {
  test::temp_dir dir;
  auto shards = [](const std::string& kind) {
    return "Here are the shards:\n\n```yaml\nname: shards\nworkstreams:\n"
           "  - {id: src, prompt: \"Audit src.\", executor: {kind: "
           + kind
           + "}}\n  - {id: docs, prompt: \"Audit docs.\", "
             "executor: {kind: anthropic}}\n```\n";
  };
  json script = {{"rules",
                  {{{"match", "Split the audit by folder."},
                    {"text", shards("anthropic")},
                    {"usage", {{"input_tokens", 300}, {"output_tokens", 60}}}},
                   {{"match", "Audit src."},
                    {"text", "audited src"},
                    {"usage", {{"input_tokens", 20}, {"output_tokens", 2}}}},
                   {{"match", "Audit docs."},
                    {"text", "audited docs"},
                    {"usage", {{"input_tokens", 10}, {"output_tokens", 1}}}},
                   {{"match", "Split the work, with commands."},
                    {"text", shards("command, run: touch pwned")}}}}};
  // Commands by other routes than a workstream's executor.
  std::map<std::string, std::string> sneaked = {
    {"until", "workstreams:\n  - {id: a, prompt: x, executor: {kind: "
              "anthropic}, until: {run: "
              "\"touch pwned\"}}\n"},
    {"a gate's check",
     "workstreams:\n  - {id: a, prompt: x, executor: {kind: "
     "anthropic}}\ngates:\n  - "
     "{id: g, after: [a], checks: [{run: \"touch pwned\"}]}\n"},
    {"a gate's fixer",
     "workstreams:\n  - {id: a, prompt: x, executor: {kind: "
     "anthropic}}\ngates:\n  - "
     "{id: g, after: [a], checks: [completion], remediate: {executor: {kind: "
     "command, run: \"touch pwned\"}}}\n"}};
  for (auto& [route, yaml] : sneaked)
    script["rules"].push_back(
      {{"match", "Split the work, with " + route + "."},
       {"text", "```yaml\nname: sneaked\n" + yaml + "```\n"}});
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: agent-split
workstreams:
  - {id: split, output: plan, prompt: "Split the audit by folder.",
     executor: {kind: anthropic}}
)");
  auto r = test::run_quietly(dir, plan, test::anthropic_env(mock, "k"));
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK(workstream_of(r.report, "split/src")["summary"] == "audited src");
  CHECK(workstream_of(r.report, "split/docs")["summary"] == "audited docs");
  // The splitting agent's tokens are its own; the run counts each once.
  auto& split = workstream_of(r.report, "split");
  REQUIRE(split["usage"].size() == 1);
  CHECK(split["usage"][0]["input_tokens"] == 300);
  REQUIRE(r.report["usage"].size() == 1);
  CHECK(r.report["usage"][0]["input_tokens"] == 330);

  // What a model wrote runs no shell command.
  plan = dir.write("commands.yaml", R"(name: agent-commands
workstreams:
  - {id: split, output: plan, prompt: "Split the work, with commands.",
     executor: {kind: anthropic}}
)");
  r = test::run_quietly(dir, plan, test::anthropic_env(mock, "k"));
  CHECK(r.cli.exit_code == 1);
  CHECK(workstream_of(r.report, "split")["summary"]
        == "its sub-plan cannot run: workstream src of the plan an agent "
           "made asks for a command executor; an agent's sub-plan may only "
           "run agents");
  CHECK_FALSE(fs::exists(dir.path() / "pwned"));
  std::map<std::string, std::string> refused = {
    {"until", "workstream a of the plan an agent made repeats until a command "
              "passes"},
    {"a gate's check", "gate g of the plan an agent made runs a command"},
    {"a gate's fixer",
     "gate g of the plan an agent made has a fixer with a command executor"}};
  for (auto& [route, why] : refused) {
    INFO(route);
    plan = dir.write("sneaked.yaml",
                     "name: sneaked\nworkstreams:\n  - {id: split, output: "
                     "plan, prompt: \"Split the work, with "
                       + route + ".\", executor: {kind: anthropic}}\n");
    r = test::run_quietly(dir, plan, test::anthropic_env(mock, "k"));
    CHECK(r.cli.exit_code == 1);
    CHECK(workstream_of(r.report, "split")["summary"]
          == "its sub-plan cannot run: " + why
               + "; an agent's sub-plan may only run agents");
    CHECK_FALSE(fs::exists(dir.path() / "pwned"));
  }
}

TEST_CASE("a sub-plan runs across a two-worker cluster",
          "[integration][subplan][cluster]") {
  test::temp_dir dir;
  test::coordinator c{{"--slots", "0"}};
  auto w1 = test::start_worker(c, "w1", 2);
  auto w2 = test::start_worker(c, "w2", 2);
  auto plan = dir.write("plan.yaml", R"(name: cluster-scatter
settings: {max_parallel_agents: 4}
workstreams:
  - id: scatter
    output: plan
    executor:
      kind: command
      run: |
        echo "name: shards"
        echo "workstreams:"
        for i in 1 2 3 4 5 6 7 8; do
          echo "  - {id: shard$i, executor: {kind: sleep, seconds: 0.3}}"
        done
  - id: gather
    depends_on: [scatter]
    executor: {kind: command, run: "echo gathered"}
)");
  auto r = run_troupe({"submit", plan, "--coordinator", c.address(), "-q",
                       "--report", "report.json", "--workdir", dir.str()},
                      dir.str());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json_file(dir.path() / "report.json");
  REQUIRE(report["workstreams"].size() == 10);
  std::set<std::string> nodes;
  for (auto& w : report["workstreams"]) {
    CHECK(w["status"] == "succeeded");
    if (w["id"].get<std::string>().rfind("scatter/", 0) == 0)
      nodes.insert(w["node"].get<std::string>());
  }
  // Eight shards of 0.3 s, two slots a worker: both workers took some.
  CHECK(nodes == std::set<std::string>{"w1", "w2"});
  CHECK(workstream_of(report, "gather")["status"] == "succeeded");

  // troupe parallel runs on the cluster too.
  auto p
    = run_troupe({"parallel", "explore:echo one", "plan:echo two", "echo three",
                  "--executor", "command", "--coordinator", c.address(), "-q",
                  "--report", "parallel.json", "--workdir", dir.str()},
                 dir.str());
  INFO(p.out << p.err);
  REQUIRE(p.exit_code == 0);
  auto pr = read_json_file(dir.path() / "parallel.json");
  REQUIRE(pr["workstreams"].size() == 3);
  for (auto& w : pr["workstreams"])
    CHECK((w["node"] == "w1" || w["node"] == "w2"));
}

TEST_CASE("examples/subplan discovers its shards and gathers their account",
          "[integration][subplan][examples]") {
  test::temp_dir dir;
  size_t files = 0, lines = 0;
  for (auto folder : {"pipeline", "quickstart", "scatter-gather"})
    for (auto& e : fs::directory_iterator{fs::path{TROUPE_SOURCE_DIR}
                                          / "examples" / folder}) {
      if (!e.is_regular_file())
        continue;
      ++files;
      auto text = read_text(e.path());
      lines += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    }
  auto r = run_troupe({"run", "examples/subplan/plan.yaml", "--no-journal",
                       "-q", "--report", dir.str() + "/report.json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json_file(dir.path() / "report.json");
  CHECK(report["workstreams"].size() == files + 2);
  CHECK(workstream_of(report, "gather")["summary"]
        == std::to_string(files) + " shards, " + std::to_string(lines)
             + " lines");
}
