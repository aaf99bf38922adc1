// What a command workstream gets from `troupe run`, and what it leaves
// behind: its scratch files are gone once the run ends.

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

// Names in `dir` that start with `prefix`.
std::vector<std::string> named(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator{dir}) {
    auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0)
      out.push_back(name);
  }
  return out;
}

} // namespace

TEST_CASE("a run leaves no scratch directory in TMPDIR", "[integration]") {
  test::temp_dir dir;
  auto tmp = dir.path() / "tmp";
  fs::create_directory(tmp);
  // Parallel workstreams, a chain, a retried attempt and a gate check: every
  // kind of attempt that gets a scratch directory.
  auto file = dir.write("plan.yaml", R"(name: tidy
settings: {max_parallel_agents: 4}
workstreams:
  - {id: where, agent: explore, executor: {kind: command, run: "echo \"$TROUPE_CONTEXT\" > where.txt"}}
  - {id: a, agent: explore, executor: {kind: command, run: "echo a"}}
  - {id: b, agent: explore, executor: {kind: command, run: "echo b"}}
  - {id: c, agent: explore, executor: {kind: command, run: "echo c"}}
  - {id: d, agent: explore, depends_on: [a, b], executor: {kind: command, run: "echo d"}}
  - id: flaky
    agent: explore
    retries: 1
    executor: {kind: command, run: "if mkdir tried 2>/dev/null; then exit 1; fi; echo ok"}
gates:
  - {id: g, after: [a, b, c], checks: [completion, {run: "true"}]}
)");
  auto r = run_troupe({"run", file, "-q", "--workdir", dir.str()}, dir.str(),
                      "export TMPDIR=" + sh_quote(tmp.string()) + "; ");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // The commands' files were in this TMPDIR, and nothing of them is left.
  CHECK(dir.read("where.txt").rfind((tmp / "troupe-run-").string(), 0) == 0);
  CHECK(named(tmp, "troupe-").empty());
}

TEST_CASE("prompts of any size and long commands reach the command whole",
          "[integration]") {
  test::temp_dir dir;
  // A 1 MiB prompt of lines that differ, some of them not ASCII.
  std::string big_prompt;
  for (int i = 0; big_prompt.size() < (1 << 20); ++i)
    big_prompt += "line " + std::to_string(i) + " caf\xC3\xA9 "
                  + std::string(i % 50, 'x') + "\n";
  big_prompt.resize(1 << 20);
  // A 200 KiB command whose every line leaves a trace.
  std::string long_command = "cp \"$TROUPE_PROMPT_FILE\" big-prompt.txt\n"
                             "echo \"${TROUPE_PROMPT+set}\" > big-env.txt\n";
  int lines = 0;
  while (long_command.size() < 200 * 1024)
    long_command += "echo " + std::to_string(++lines) + " >> long.txt\n";
  std::string edge_prompt(32 * 1024, 'e');
  auto ws = [](std::string id, std::string prompt, std::string run) {
    return json{{"id", id},
                {"agent", "explore"},
                {"prompt", prompt},
                {"executor", {{"kind", "command"}, {"run", run}}}};
  };
  auto copy_both = [](const std::string& name) {
    return "printf %s \"$TROUPE_PROMPT\" > " + name
           + "-env.txt; cp \"$TROUPE_PROMPT_FILE\" " + name + "-file.txt";
  };
  json plan = {{"name", "sizes"},
               {"workstreams",
                {ws("big", big_prompt, long_command),
                 ws("short", "fix the 'bug' in $HOME", copy_both("short")),
                 ws("edge", edge_prompt, copy_both("edge")),
                 ws("over", edge_prompt + "o",
                    "echo \"${TROUPE_PROMPT+set}\" > over-env.txt")}}};
  auto file = dir.write("plan.json", plan.dump());
  // An inherited TROUPE_PROMPT must not pose as a prompt too big for it.
  auto r = run_troupe({"run", file, "-q", "--workdir", dir.str()}, dir.str(),
                      "export TROUPE_PROMPT=stale; ");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(dir.read("big-prompt.txt") == big_prompt);
  CHECK(dir.read("big-env.txt") == "\n");
  std::string expected;
  for (int i = 1; i <= lines; ++i)
    expected += std::to_string(i) + "\n";
  CHECK(dir.read("long.txt") == expected);
  CHECK(dir.read("short-env.txt") == "fix the 'bug' in $HOME");
  CHECK(dir.read("short-file.txt") == "fix the 'bug' in $HOME");
  CHECK(dir.read("edge-env.txt") == edge_prompt);
  CHECK(dir.read("edge-file.txt") == edge_prompt);
  CHECK(dir.read("over-env.txt") == "\n");
}
