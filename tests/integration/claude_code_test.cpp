// The `claude-code` executor drives the real Claude Code CLI (installed by
// .ci/claude-code), which talks to the stand-in LLM server: when the server
// answers with a Write tool call, the CLI really writes the file.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/claude_cli.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_shell;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

constexpr auto secret_key = test::claude_cli_key;
using test::claude_cli;

// Two turns per task: a Write of `file`, then a closing text once the
// tool's result is back.
json write_rules(const std::string& marker, const std::string& file,
                 const std::string& content, int scale) {
  return json::array(
    {{{"match", marker},
      {"unless", "tool_result"},
      {"tool_calls",
       {{{"name", "Write"},
         {"input", {{"file_path", file}, {"content", content}}}}}},
      {"usage",
       {{"input_tokens", 100 * scale},
        {"output_tokens", 20 * scale},
        {"cache_creation_input_tokens", 30 * scale},
        {"cache_read_input_tokens", 40 * scale}}}},
     {{"match", marker},
      {"text", "Wrote " + file + ".\nDone with " + marker},
      {"usage",
       {{"input_tokens", 7 * scale},
        {"output_tokens", 3 * scale},
        {"cache_creation_input_tokens", 0},
        {"cache_read_input_tokens", 50 * scale}}}}});
}

json script() {
  json rules = json::array();
  for (auto& r : write_rules("TASK-ALPHA", "alpha.txt", "alpha \xCE\xB1\n", 1))
    rules.push_back(r);
  for (auto& r : write_rules("TASK-BETA", "beta.txt", "beta \xCE\xB2\n", 2))
    rules.push_back(r);
  return {{"rules", rules}};
}

const char* plan_text = R"(name: cli-team
settings: {max_parallel_agents: 2}
workstreams:
  - id: alpha
    prompt: "TASK-ALPHA: write alpha.txt"
    owns: [alpha.txt]
    model: claude-sonnet-4-5
    executor: {kind: claude-code, permission_mode: acceptEdits}
  - id: beta
    prompt: "TASK-BETA: write beta.txt"
    owns: [beta.txt]
    model: claude-sonnet-4-5
    executor: {kind: claude-code, permission_mode: acceptEdits, max_turns: 5}
)";

} // namespace

TEST_CASE("claude-code agents edit files in parallel, and their tokens and "
          "cost are the CLI's",
          "[integration][claude]") {
  auto cli = claude_cli();
  test::temp_dir dir;
  auto work = dir.path() / "work";
  fs::create_directories(work);
  test::mock_llm mock{dir.path(), script()};
  auto plan = dir.write("plan.yaml", plan_text);
  auto report_file = (dir.path() / "report.json").string();
  auto r = run_troupe(
    {"run", plan, "--workdir", work.string(), "--report", report_file,
     "--events", (dir.path() / "events.jsonl").string(), "--journal",
     (dir.path() / "journal.db").string()},
    dir.str(), test::claude_troupe_env(mock, dir.path() / "home", cli));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // How far each agent got reached the event log and the progress lines
  // as it went: each turn, its tool uses and its tokens so far.
  std::vector<std::string> alpha_progress;
  for (auto& line :
       test::split_lines(test::read_text(dir.path() / "events.jsonl"))) {
    auto e = json::parse(line);
    if (e["kind"] == "ws_progress" && e["subject"] == "alpha")
      alpha_progress.push_back(e["message"]);
  }
  REQUIRE_FALSE(alpha_progress.empty());
  CHECK(alpha_progress.front()
        == "turn 1, 1 tool use (last: Write), 170 tokens in");
  CHECK(alpha_progress.back()
        == "turn 2, 1 tool use (last: Write), 227 tokens in");
  CHECK(r.err.find("workstream alpha running (attempt 1, node local): turn 1, "
                   "1 tool use (last: Write)")
        != std::string::npos);
  // The CLI really wrote the files the tool calls asked for.
  CHECK(test::read_text(work / "alpha.txt") == "alpha \xCE\xB1\n");
  CHECK(test::read_text(work / "beta.txt") == "beta \xCE\xB2\n");
  auto report = test::read_json_file(report_file);
  auto& alpha = test::workstream_of(report, "alpha");
  CHECK(alpha["status"] == "succeeded");
  CHECK(alpha["summary"] == "Done with TASK-ALPHA");
  CHECK(alpha["files_changed"] == json::array({"alpha.txt"}));
  CHECK(alpha["outputs"]["num_turns"] == "2");
  CHECK_FALSE(alpha["outputs"]["session_id"].get<std::string>().empty());
  REQUIRE(alpha["usage"].size() == 1);
  auto& au = alpha["usage"][0];
  CHECK(au["model"] == "claude-sonnet-4-5");
  CHECK(au["input_tokens"] == 107);
  CHECK(au["output_tokens"] == 23);
  CHECK(au["cache_write_tokens"] == 30);
  CHECK(au["cache_read_tokens"] == 90);
  // $3, $15, $3.75 and $0.30 per million tokens.
  CHECK(au["cost_usd"].get<double>()
        == Approx((107 * 3 + 23 * 15 + 30 * 3.75 + 90 * 0.3) / 1e6));
  auto& bu = test::workstream_of(report, "beta")["usage"][0];
  CHECK(bu["input_tokens"] == 214);
  CHECK(report["usage"][0]["input_tokens"] == 321);

  // Each turn went to the mock: the prompt on stdin reached the model, the
  // persona's system prompt went with the CLI's own.
  auto reqs = mock.requests();
  CHECK(reqs.size() == 4);
  bool saw_persona = false;
  for (auto& q : reqs) {
    CHECK(q["headers"]["x-api-key"] == secret_key);
    saw_persona = saw_persona
                  || q["body"]["system"].dump().find(
                       "You are the backend engineer of a team")
                       != std::string::npos;
  }
  CHECK(saw_persona);

  // The same task run by hand prints the same usage as Troupe reported.
  test::temp_dir by_hand;
  test::mock_llm mock2{by_hand.path(), script()};
  auto direct = run_shell(test::claude_cli_env(mock2, by_hand.path() / "home")
                            + "exec " + sh_quote(cli)
                            + " -p --output-format json --permission-mode "
                              "acceptEdits --model claude-sonnet-4-5 "
                              "'TASK-ALPHA: write alpha.txt' </dev/null",
                          by_hand.str());
  INFO(direct.out << direct.err);
  REQUIRE(direct.exit_code == 0);
  auto printed = json::parse(direct.out);
  auto& mu = printed["modelUsage"]["claude-sonnet-4-5"];
  CHECK(mu["inputTokens"] == au["input_tokens"]);
  CHECK(mu["outputTokens"] == au["output_tokens"]);
  CHECK(mu["cacheReadInputTokens"] == au["cache_read_tokens"]);
  CHECK(mu["cacheCreationInputTokens"] == au["cache_write_tokens"]);
  CHECK(mu["costUSD"].get<double>() == Approx(au["cost_usd"].get<double>()));
  CHECK(printed["total_cost_usd"].get<double>()
        == Approx(au["cost_usd"].get<double>()));

  // The key went to the provider only.
  CHECK(r.out.find(secret_key) == std::string::npos);
  CHECK(r.err.find(secret_key) == std::string::npos);
  CHECK(test::text_under(dir.path(), "home").find(secret_key)
        == std::string::npos);
}

TEST_CASE("a claude-code agent that runs out of turns fails saying so",
          "[integration][claude]") {
  auto cli = claude_cli();
  test::temp_dir dir;
  auto work = dir.path() / "work";
  fs::create_directories(work);
  test::mock_llm mock{dir.path(), script()};
  auto plan = dir.write("plan.yaml", R"(name: short
workstreams:
  - id: alpha
    prompt: "TASK-ALPHA: write alpha.txt"
    owns: [alpha.txt]
    model: claude-sonnet-4-5
    executor: {kind: claude-code, permission_mode: acceptEdits, max_turns: 1}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r = run_troupe({"run", plan, "-q", "--no-journal", "--workdir",
                       work.string(), "--report", report_file},
                      dir.str(),
                      test::claude_troupe_env(mock, dir.path() / "home", cli));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = test::read_json_file(report_file);
  auto& w = test::workstream_of(report, "alpha");
  CHECK(w["status"] == "failed");
  CHECK(w["summary"].get<std::string>().rfind("claude-code: error_max_turns", 0)
        == 0);
  // The turn it had was spent, and is counted.
  CHECK(w["usage"][0]["input_tokens"] == 100);
}

TEST_CASE("a plan for claude-code is refused up front where there is no CLI",
          "[integration][claude]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", plan_text);
  auto r = run_troupe({"validate", plan}, dir.str(),
                      "export TROUPE_CLAUDE_CLI=/nonexistent/claude; ");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("workstreams[0] (alpha).executor.kind: executor "
                   "\"claude-code\" cannot run here: TROUPE_CLAUDE_CLI names "
                   "\"/nonexistent/claude\"")
        != std::string::npos);
  auto run = run_troupe({"run", plan, "--no-journal"}, dir.str(),
                        "export PATH=/usr/bin:/bin; unset TROUPE_CLAUDE_CLI; ");
  CHECK(run.exit_code == 2);
  CHECK(run.err.find("the Claude Code CLI (\"claude\") is not on PATH")
        != std::string::npos);
}

namespace {

// Sets environment variables for what this test starts, and puts them
// back as they were.
class scoped_env {
public:
  void set(const std::string& name, const std::string& value) {
    remember(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }

  void unset(const std::string& name) {
    remember(name);
    ::unsetenv(name.c_str());
  }

  ~scoped_env() {
    for (auto& [name, old] : saved_) {
      if (old)
        ::setenv(name.c_str(), old->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

private:
  void remember(const std::string& name) {
    if (saved_.count(name))
      return;
    auto v = std::getenv(name.c_str());
    saved_[name] = v ? std::optional<std::string>{v} : std::nullopt;
  }

  std::map<std::string, std::optional<std::string>> saved_;
};

} // namespace

TEST_CASE("agents run on a cluster's workers, each worker with its own key",
          "[integration][claude][cluster]") {
  auto cli = claude_cli();
  test::temp_dir dir;
  auto work = dir.path() / "work";
  fs::create_directories(work);
  auto rules = script()["rules"];
  rules.push_back({{"match", "TASK-GAMMA"},
                   {"text", "gamma looked"},
                   {"usage", {{"input_tokens", 11}, {"output_tokens", 5}}}});
  test::mock_llm mock{dir.path(), {{"rules", rules}}};
  scoped_env env;
  // The coordinator and the submitter know no key, no server, no CLI.
  for (auto name : {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                    "ANTHROPIC_AUTH_TOKEN", "TROUPE_CLAUDE_CLI"})
    env.unset(name);
  env.set("PATH", "/usr/bin:/bin");
  test::coordinator coord;
  // Each worker holds its own key, and finds the CLI.
  env.set("HOME", (dir.path() / "home").string());
  fs::create_directories(dir.path() / "home");
  env.set("ANTHROPIC_BASE_URL", mock.url());
  env.set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
  env.set("TROUPE_CLAUDE_CLI", cli);
  env.set("ANTHROPIC_API_KEY", "sk-worker-one-key-0001");
  auto w1 = test::start_worker(coord, "w1", 1);
  // The second one has its key and the server in its own config file
  // alone: the CLI it runs gets them from there too.
  for (auto name : {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"})
    env.unset(name);
  test::temp_dir secrets;
  auto key_file = secrets.write("key", "sk-worker-two-key-0002\n");
  fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write);
  auto config = secrets.write(
    "config.yaml", "providers:\n  anthropic: {base_url: \"" + mock.url()
                     + "\", api_key_file: " + key_file + "}\n");
  auto w2 = test::start_worker(coord, "w2", 1, {"--config", config});
  env.unset("TROUPE_CLAUDE_CLI");

  auto plan = dir.write("plan.yaml", std::string{plan_text} + R"(
  - {id: gamma, agent: explore, prompt: "TASK-GAMMA", executor: {kind: anthropic}}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r
    = run_troupe({"submit", plan, "--coordinator", coord.address(), "--workdir",
                  work.string(), "--report", report_file, "-q"},
                 dir.str());
  INFO(r.out << r.err << w1->err_text() << w2->err_text());
  REQUIRE(r.exit_code == 0);
  CHECK(test::read_text(work / "alpha.txt") == "alpha \xCE\xB1\n");
  CHECK(test::read_text(work / "beta.txt") == "beta \xCE\xB2\n");
  auto report = test::read_json_file(report_file);
  std::set<std::string> nodes;
  for (auto& w : report["workstreams"]) {
    CHECK(w["status"] == "succeeded");
    nodes.insert(w["node"].get<std::string>());
  }
  CHECK(nodes.size() == 2);
  CHECK(test::workstream_of(report, "alpha")["usage"][0]["input_tokens"]
        == 107);
  CHECK(test::workstream_of(report, "gamma")["usage"][0]["model"]
        == "claude-haiku-4-5");
  // Every request carried the key of the worker that made it, and the
  // keys stayed on the workers.
  auto reqs = mock.requests();
  CHECK(reqs.size() == 5);
  std::set<std::string> keys;
  for (auto& q : reqs) {
    auto key = q["headers"]["x-api-key"].get<std::string>();
    CHECK((key == "sk-worker-one-key-0001" || key == "sk-worker-two-key-0002"));
    keys.insert(key);
  }
  CHECK(keys.size() == 2);
  auto everything = r.out + r.err + test::read_text(report_file)
                    + test::read_text(coord.journal())
                    + test::read_text(coord.journal() + "-wal")
                    + coord.proc->err_text() + w1->err_text() + w2->err_text();
  CHECK(everything.find("sk-worker-") == std::string::npos);
}

TEST_CASE("a claude-code agent gets its share of the run's budget and the "
          "CLI stops at it",
          "[integration][claude]") {
  auto cli = claude_cli();
  test::temp_dir dir;
  // One turn costs $1.50 at Sonnet's prices: past the whole budget.
  json rules = json::array(
    {{{"match", "TASK-COSTLY"},
      {"unless", "tool_result"},
      {"tool_calls",
       {{{"name", "Write"},
         {"input", {{"file_path", "costly.txt"}, {"content", "x\n"}}}}}},
      {"usage", {{"input_tokens", 100}, {"output_tokens", 100000}}}},
     {{"match", "TASK-COSTLY"}, {"text", "Done"}}});
  test::mock_llm mock{dir.path(), {{"rules", rules}}};
  auto plan = dir.write("plan.yaml", R"(name: costly
settings: {max_cost_usd: 0.5}
workstreams:
  - {id: costly, prompt: "TASK-COSTLY: write costly.txt", owns: [costly.txt],
     model: claude-sonnet-4-5, estimate_usd: [0.01, 0.4],
     executor: {kind: claude-code, permission_mode: acceptEdits}}
  - {id: after, prompt: "TASK-AFTER", depends_on: [costly],
     executor: {kind: claude-code}}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r = run_troupe(
    {"run", plan, "-q", "--no-journal", "--report", report_file}, dir.str(),
    test::claude_troupe_env(mock, dir.path() / "home", cli));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = test::read_json_file(report_file);
  auto& costly = test::workstream_of(report, "costly");
  CHECK(costly["status"] == "failed");
  CHECK(costly["outputs"]["subtype"] == "error_max_budget_usd");
  // Its share: half of the budget, for two agents not started yet.
  CHECK(costly["summary"].get<std::string>().find(
          "error_max_budget_usd: Reached maximum budget ($0.25)")
        != std::string::npos);
  // What the CLI spent is reported as spent, past the budget or not.
  CHECK(report["cost_usd"].get<double>() == Approx(1.5003));
  CHECK(report["max_cost_usd"] == 0.5);
  CHECK(report["markdown"].get<std::string>().find(
          "Budget: $1.5003 of $0.5000 spent.")
        != std::string::npos);
  // Nothing more was asked once the budget was gone.
  CHECK(mock.requests().size() == 1);
  CHECK(test::workstream_of(report, "after")["status"] == "blocked");
}
