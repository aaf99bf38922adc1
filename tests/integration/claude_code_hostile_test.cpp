// Stand-ins for the `claude` CLI, where the real one cannot say enough: one
// that prints what no CLI should (the claude-code executor reads what
// makes sense of it, counts nothing twice or past what a count holds, and
// lets no byte of it reach a terminal as a control sequence), ones that
// report errors, and one that records how it was asked.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

// The stream the fake CLI prints, line by line.
std::string hostile_stream() {
  std::string s;
  // Fields of the wrong type.
  s += R"({"type":"system","subtype":"init","model":123,"session_id":["x"]})"
       "\n";
  s += R"({"type":"system","subtype":"task_started"})"
       "\n";
  s += R"({"type":"assistant","parent_tool_use_id":7,"message":{"id":"s","content":"no array"}})"
       "\n";
  // An edit outside the directory, a path of the wrong type, a tool named
  // with a terminal's escape sequences (no edit of a file then).
  s += R"({"type":"assistant","message":{"id":{"a":1},"usage":"lots","content":[)"
       R"({"type":"tool_use","name":"Write","input":{"file_path":"../../outside.txt"}},)"
       R"({"type":"tool_use","name":"Write","input":{"file_path":42}},)"
       R"({"type":"tool_use","name":"\u001b]0;pwned\u0007\u001b[31mWrite","input":{"file_path":"x"}}]}})"
       "\n";
  // Not JSON at all: NUL bytes, invalid UTF-8, escape sequences.
  s += std::string{"junk \0 \xff\xfe \x1b[2J", 13} + "\n";
  // A tool's input nested three million levels deep.
  s += R"({"type":"assistant","message":{"id":"deep","content":[{"type":"tool_use","name":"Deep","input":{"a":)"
       + std::string(3 << 20, '[') + std::string(3 << 20, ']') + "}}]}}\n";
  // A line past the 8 MiB a line may have.
  s += R"({"type":"assistant","message":{"id":"big","content":")"
       + std::string(9 << 20, 'x') + "\"}}\n";
  // Counts past what any count holds, negative, NaN-like, as text.
  s += R"({"type":"result","subtype":"success","is_error":false,)"
       R"("result":"ok \u00e9\ud83d","num_turns":-5,"session_id":"s-1",)"
       R"("usage":{"input_tokens":1e300,"output_tokens":-4,"cache_read_input_tokens":"9"},)"
       R"("modelUsage":{"main-model":{"inputTokens":1e300,"outputTokens":-4,"costUSD":1e20},)"
       R"("sub":{"inputTokens":18446744073709551615,"costUSD":"x"},"weird":5},)"
       R"("subagent_stats":{"spawned":"many"},"total_cost_usd":-1})"
       "\n";
  return s;
}

} // namespace

TEST_CASE("a claude CLI printing nonsense: what makes sense is read, counts "
          "stay in range, nothing reaches the terminal raw",
          "[integration][claude]") {
  test::temp_dir dir;
  auto stream = dir.write("stream.txt", hostile_stream());
  auto cli = dir.write("claude", "#!/bin/sh\ncat >/dev/null\nexec cat "
                                   + sh_quote(stream) + "\n");
  fs::permissions(cli, fs::perms::owner_all);
  auto plan = dir.write("plan.yaml", R"(name: hostile
workstreams:
  - {id: one, prompt: "go", model: main-model, executor: {kind: claude-code}}
  - {id: two, prompt: "go", model: main-model, executor: {kind: claude-code}}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r = test::run_troupe({"run", plan, "--no-journal", "--report",
                             report_file, "--workdir", dir.str()},
                            dir.str(),
                            "export TROUPE_CLAUDE_CLI=" + sh_quote(cli) + "; ");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  constexpr auto max = std::numeric_limits<int64_t>::max();
  auto report = test::read_json_file(report_file);
  for (auto id : {"one", "two"}) {
    auto& w = test::workstream_of(report, id);
    CHECK(w["status"] == "succeeded");
    // A string cut between the halves of a surrogate pair ends in U+FFFD.
    CHECK(w["summary"] == "ok \xC3\xA9\xEF\xBF\xBD");
    CHECK(w["outputs"]["num_turns"] == "0");
    CHECK(w["outputs"]["session_id"] == "s-1");
    CHECK(w["outputs"]["sub_agents"] == "1");
    CHECK(w["files_changed"] == json::array({"../../outside.txt"}));
    // Only the models given as objects; counts cut to what int64 holds,
    // money that is no amount as 0.
    REQUIRE(w["usage"].size() == 2);
    CHECK(w["usage"][0]["model"] == "main-model");
    CHECK(w["usage"][0]["input_tokens"] == max);
    CHECK(w["usage"][0]["output_tokens"] == 0);
    CHECK(w["usage"][0]["cost_usd"] == 0);
    CHECK(w["usage"][1]["model"] == "sub");
    CHECK(w["usage"][1]["input_tokens"] == max);
    // The agent's own calls are the main model's whole: what is left is
    // the sub-agent's.
    REQUIRE(w["sub_agent_usage"].size() == 1);
    CHECK(w["sub_agent_usage"][0]["model"] == "sub");
  }
  // Two agents' counts at the largest add up to the largest, not to a
  // negative number.
  REQUIRE(report["usage"].size() == 2);
  for (auto& u : report["usage"])
    CHECK(u["input_tokens"] == max);
  CHECK(report["sub_agent_usage"][0]["input_tokens"] == max);
  // The tool's name reached the progress lines without its escapes.
  CHECK(r.err.find("pwned") != std::string::npos);
  CHECK(r.err.find("4 tool uses (last: Deep)") != std::string::npos);
  CHECK(r.err.find('\x1b') == std::string::npos);
  CHECK(r.out.find('\x1b') == std::string::npos);
}

TEST_CASE("a CLI result that is an error fails the attempt, is_error with "
          "subtype success included",
          "[integration][claude]") {
  test::temp_dir dir;
  // An API error: is_error with subtype success, the error as the result.
  dir.write(
    "api-error.txt",
    R"({"type":"result","subtype":"success","is_error":true,)"
    R"("result":"API Error: 401 invalid x-api-key",)"
    R"("usage":{"input_tokens":4,"output_tokens":0},"total_cost_usd":0})"
    "\n");
  // An error while it ran: no result, the errors listed.
  dir.write("during.txt",
            R"({"type":"result","subtype":"error_during_execution",)"
            R"("is_error":true,"errors":["tool crashed"]})"
            "\n");
  auto cli = dir.write("claude", "#!/bin/sh\ncat >/dev/null\ncat \"$STREAM\"\n"
                                 "exit 1\n");
  fs::permissions(cli, fs::perms::owner_all);
  auto plan = dir.write("plan.yaml", R"(name: errors
settings: {on_failure: continue}
workstreams:
  - {id: api, prompt: "go", executor: {kind: claude-code, env: {STREAM: api-error.txt}}}
  - {id: during, prompt: "go", executor: {kind: claude-code, env: {STREAM: during.txt}}}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r = test::run_troupe({"run", plan, "-q", "--no-journal", "--report",
                             report_file, "--workdir", dir.str()},
                            dir.str(),
                            "export TROUPE_CLAUDE_CLI=" + sh_quote(cli) + "; ");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = test::read_json_file(report_file);
  auto& api = test::workstream_of(report, "api");
  CHECK(api["status"] == "failed");
  CHECK(api["summary"] == "claude-code: API Error: 401 invalid x-api-key");
  CHECK(api["outputs"]["subtype"] == "success");
  CHECK(api["usage"][0]["input_tokens"] == 4);
  auto& during_ws = test::workstream_of(report, "during");
  CHECK(during_ws["status"] == "failed");
  CHECK(during_ws["summary"]
        == "claude-code: error_during_execution: tool crashed");
}

TEST_CASE("the CLI is asked with the workstream's options, the prompt on "
          "stdin",
          "[integration][claude]") {
  test::temp_dir dir;
  // Records its arguments one per line and its stdin, then succeeds.
  auto cli = dir.write(
    "claude",
    "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > args.txt\n"
    "cat > stdin.txt\n"
    "echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
    "\"result\":\"done\"}'\n");
  fs::permissions(cli, fs::perms::owner_all);
  auto plan = dir.write("plan.yaml", R"yaml(name: options
settings: {max_cost_usd: 2}
workstreams:
  - id: opts
    persona: security
    prompt: "Audit the login flow."
    model: claude-sonnet-4-5
    estimate_usd: 0.5
    executor: {kind: claude-code, max_turns: 7, permission_mode: acceptEdits,
               allowed_tools: [Read, "Bash(git diff:*)"]}
)yaml");
  auto r = test::run_troupe(
    {"run", plan, "-q", "--no-journal", "--workdir", dir.str()}, dir.str(),
    "export TROUPE_CLAUDE_CLI=" + sh_quote(cli) + "; ");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto args = test::split_lines(test::read_text(dir.path() / "args.txt"));
  INFO(test::read_text(dir.path() / "args.txt"));
  REQUIRE(args.size() >= 15);
  std::vector<std::string> head(args.begin(), args.begin() + 14);
  CHECK(head
        == std::vector<std::string>{"-p", "--output-format", "stream-json",
                                    "--verbose", "--model",
                                    "claude-sonnet-4-5", "--max-turns", "7",
                                    "--allowedTools=Read,Bash(git diff:*)",
                                    "--permission-mode", "acceptEdits",
                                    "--max-budget-usd", "2.000000",
                                    "--append-system-prompt"});
  // The persona's prompt follows, whole, over several lines.
  CHECK(args[14].rfind("You are the security engineer", 0) == 0);
  // The prompt came on stdin, never as an argument.
  CHECK(test::read_text(dir.path() / "stdin.txt")
          .rfind("Audit the login flow.", 0)
        == 0);
  for (auto& a : args)
    CHECK(a.find("Audit the login flow.") == std::string::npos);
}
