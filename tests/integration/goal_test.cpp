// From a goal to a run on the command line: `troupe plan --goal` writes a
// plan a person can edit and run, `troupe run --goal` shows it and runs it,
// and `troupe parallel` runs tasks given as arguments.

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
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

const std::string agent
  = std::string{TROUPE_SOURCE_DIR} + "/examples/goal/agent.sh";

std::vector<std::string> with(std::vector<std::string> args,
                              const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

} // namespace

TEST_CASE("troupe plan --goal writes a plan that can be edited and run",
          "[integration][goal]") {
  test::temp_dir dir;
  auto goal = "Add a login page and a logout endpoint, then write "
              "end-to-end tests";
  auto r = run_troupe({"plan", "--goal", goal, "--executor", "command", "--run",
                       agent, "-o", "plan.yaml"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Complexity: COMPLEX") != std::string::npos);
  CHECK(r.out.find("several distinct deliverables (3)") != std::string::npos);
  CHECK(r.out.find("Strategy: feature") != std::string::npos);
  CHECK(r.out.find("Wrote plan.yaml") != std::string::npos);
  auto text = read_text(dir.path() / "plan.yaml");
  CHECK(text.find("id: login-page") != std::string::npos);

  // A person edits it (a title, and one more workstream), then runs it.
  auto edited = text;
  auto at = edited.find("title: Add a login page");
  REQUIRE(at != std::string::npos);
  edited.replace(at, std::string{"title: Add a login page"}.size(),
                 "title: Add the login page with a remember-me box");
  edited.replace(edited.find("workstreams:\n"), 13,
                 "workstreams:\n  - id: changelog\n    persona: docs\n"
                 "    prompt: Note the change in the changelog\n"
                 "    executor: {kind: command, run: "
                   + agent + "}\n");
  std::ofstream{dir.path() / "plan.yaml"} << edited;
  r = run_troupe(
    {"run", "plan.yaml", "--no-journal", "--quiet", "--report", "report.json"},
    dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json_file(dir.path() / "report.json");
  CHECK(report["workstreams"].size() == 6);
  CHECK(workstream_of(report, "login-page")["title"]
        == "Add the login page with a remember-me box");
  CHECK(workstream_of(report, "changelog")["status"] == "succeeded");
  // Each agent ran with its persona and tier, its task its own.
  auto login = read_text(dir.path() / "goal-output" / "login-page.md");
  CHECK(login.find("Add a login page.") != std::string::npos);
  CHECK(login.find("persona frontend, tier balanced") != std::string::npos);
  auto design = read_text(dir.path() / "goal-output" / "design.md");
  CHECK(design.find("tier deep") != std::string::npos);
  REQUIRE(report["gates"].size() == 1);
  CHECK(report["gates"][0]["status"] == "passed");
}

TEST_CASE("troupe plan --goal-file plans a requirements document",
          "[integration][goal]") {
  test::temp_dir dir;
  auto r = run_troupe(
    {"plan", "--goal-file",
     std::string{TROUPE_SOURCE_DIR} + "/examples/goal/requirements.md",
     "--executor", "command", "--run", agent, "--json"},
    dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  CHECK(j["assessment"]["level"] == "COMPLEX");
  CHECK(j["assessment"]["phases"].size() == 4);
  auto& ws = j["plan"]["workstreams"];
  REQUIRE(ws.size() == 6);
  // The document's phases are a chain; its files are what each owns.
  CHECK(ws[0]["agent"] == "plan");
  CHECK(ws[0]["model"] == "deep");
  CHECK(ws[1]["owns"] == json::array({"src/api/reset.ts"}));
  CHECK(ws[1]["depends_on"] == json::array({ws[0]["id"]}));
  CHECK(ws[2]["persona"] == "frontend");
  CHECK(ws[5]["persona"] == "docs");
  CHECK(ws[5]["owns"] == json::array({"docs/auth.md"}));
}

TEST_CASE("troupe run --goal shows the plan, and asks unless --yes",
          "[integration][goal]") {
  test::temp_dir dir;
  std::vector<std::string> run{"run",
                               "--goal",
                               "Fix the crash in the React settings page "
                               "and the timeout in the orders API",
                               "--executor",
                               "command",
                               "--run",
                               agent,
                               "--no-journal"};
  // No terminal to ask on: nothing runs.
  auto r = run_troupe(run, dir.path());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("pass --yes") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "goal-output"));

  r = run_troupe(with(run, {"--yes", "--report", "report.json"}), dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The plan was shown before it ran.
  CHECK(r.err.find("Strategy: bug investigation") != std::string::npos);
  CHECK(r.err.find("Phase 1") != std::string::npos);
  auto report = read_json_file(dir.path() / "report.json");
  CHECK(workstream_of(report, "reproduce")["persona"] == "debugger");
  CHECK(workstream_of(report, "tests")["status"] == "succeeded");
  CHECK(fs::exists(dir.path() / "goal-output" / "timeout-orders-api.md"));
}

TEST_CASE("troupe parallel runs each task as one workstream",
          "[integration][goal]") {
  test::temp_dir dir;
  // A command executor without --run runs each task's text.
  auto r = run_troupe({"parallel", "explore:echo found 3 routes",
                       "plan:echo the cache sits in front of the API",
                       "echo reviewed the auth flow", "--executor", "command",
                       "--no-journal", "--quiet", "--report", "report.json"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = read_json_file(dir.path() / "report.json");
  REQUIRE(report["workstreams"].size() == 3);
  CHECK(report["plan"] == "parallel");
  // The synthesized report, on stdout.
  CHECK(r.out.find("# parallel: succeeded") != std::string::npos);
  CHECK(r.out.find("found 3 routes") != std::string::npos);
  CHECK(r.out.find("reviewed the auth flow") != std::string::npos);
  // All at once: nothing waited for anything else.
  for (auto& w : report["workstreams"])
    CHECK(w["status"] == "succeeded");
  CHECK(r.err.empty());
}

TEST_CASE("bad goals and planning flags are refused with what is wrong",
          "[integration][goal]") {
  test::temp_dir dir;
  auto refused = [&](std::vector<std::string> args, const std::string& why) {
    auto r = run_troupe(args, dir.path());
    INFO(r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(why) != std::string::npos);
  };
  refused({"plan", "--goal", "  \n"}, "--goal: the goal is empty");
  refused({"plan", "--goal-file", "missing.md"},
          "--goal-file: cannot read missing.md");
  refused({"plan", "--goal-file", "."}, "is a directory");
  refused({"plan"}, "PLAN, --goal or --goal-file is required");
  refused({"run", "--yes"}, "PLAN, --goal or --goal-file is required");
  refused({"plan", "plan.yaml", "--goal", "x"}, "excludes");
  refused({"plan", "--goal", "x", "--run", "true"},
          "--run: only for --executor command");
  refused(
    {"plan", "--goal", "x", "--executor", "command", "--model", "claude-opus"},
    "--model: claude-opus is no tier");
  refused({"plan", "--goal", "x", "--planner", "magic"}, "magic");
  refused({"parallel", "explore:", "--executor", "command"},
          "task 1 (\"explore:\") is empty");
  refused({"plan", "--goal", "Add a page", "--executor", "nonesuch"},
          "nonesuch");
  std::ofstream{dir.path() / "binary.md"} << std::string("\xff\xfe\x00x", 4);
  refused({"plan", "--goal-file", "binary.md"}, "not UTF-8 text");
}

TEST_CASE("a planned plan keeps to the config file's phase width",
          "[integration][goal]") {
  test::temp_dir dir;
  auto config = dir.write("config.yaml", "settings: {max_phase_width: 2}\n");
  auto r = run_troupe({"plan", "--config", config, "--goal",
                       "Add a login page and a signup page and a profile page "
                       "and a settings page",
                       "--executor", "command", "--run", agent, "--json"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("warning") == std::string::npos);
  auto j = json::parse(r.out);
  CHECK(j["plan"]["settings"]["max_phase_width"] == 2);
  size_t pages = 0;
  for (auto& phase : j["assessment"]["phases"]) {
    CHECK(phase.size() <= 2);
    for (auto& id : phase)
      pages += id.get<std::string>().find("page") != std::string::npos;
  }
  CHECK(pages == 4);
}
