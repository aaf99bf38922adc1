// Claude Code agents on a git repository: the real CLI (installed by
// .ci/claude-code), talking to the stand-in LLM server, edits files in the
// worktree of its workstream only, and each agent's work lands as one
// commit.

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/claude_cli.hpp"
#include "support/cli.hpp"
#include "support/git_repo.hpp"
#include "support/mock_llm.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_troupe;
using troupe::test::split_lines;

namespace {

// A Write of `file` when the prompt holds `marker`, then a closing text.
void write_turns(json& rules, const std::string& marker,
                 const std::string& file, const std::string& content) {
  rules.push_back({{"match", marker},
                   {"unless", "tool_result"},
                   {"tool_calls",
                    {{{"name", "Write"},
                      {"input", {{"file_path", file}, {"content", content}}}}}},
                   {"times", -1}});
  rules.push_back(
    {{"match", marker}, {"text", "Wrote " + file + "."}, {"times", -1}});
}

} // namespace

TEST_CASE("claude-code agents on a repository edit their own worktrees, and "
          "each lands as one commit",
          "[integration][claude][repo]") {
  auto cli = test::claude_cli();
  test::git_repo repo{{{"README.md", "# project\n"}}};
  auto tree = repo.tree();
  test::temp_dir dir;
  json rules = json::array();
  write_turns(rules, "TASK-ALPHA", "src/alpha.txt", "alpha \xCE\xB1\n");
  write_turns(rules, "TASK-BETA", "docs/beta.md", "# beta\n");
  test::mock_llm mock{dir.path(), {{"rules", rules}}};
  auto plan = dir.write("plan.yaml", R"(name: cli-coders
settings: {max_parallel_agents: 2}
workstreams:
  - id: alpha
    title: Add alpha
    prompt: "TASK-ALPHA: write src/alpha.txt"
    owns: [src/]
    model: claude-sonnet-4-5
    executor: {kind: claude-code, permission_mode: acceptEdits}
  - id: beta
    title: Document beta
    prompt: "TASK-BETA: write docs/beta.md"
    owns: [docs/]
    model: claude-sonnet-4-5
    executor: {kind: claude-code, permission_mode: acceptEdits}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r = run_troupe({"run", plan, "-q", "--repo", repo.str(), "--yes",
                       "--no-journal", "--report", report_file},
                      dir.str(),
                      test::claude_troupe_env(mock, dir.path() / "home", cli));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = json::parse(dir.read("report.json"));
  auto& rep = report.at("repository");
  CHECK(rep.at("approval") == "committed");
  auto branch = rep.at("branch").get<std::string>();
  CHECK(split_lines(repo.git("log --reverse --format=%s main.." + branch))
        == std::vector<std::string>{"Add alpha", "Document beta"});
  auto commits = rep.at("commits");
  CHECK(repo.git("diff-tree --no-commit-id -r --name-status "
                 + commits[0].get<std::string>())
        == "A\tsrc/alpha.txt\n");
  CHECK(repo.git("diff-tree --no-commit-id -r --name-status "
                 + commits[1].get<std::string>())
        == "A\tdocs/beta.md\n");
  CHECK(repo.git("show " + branch + ":src/alpha.txt") == "alpha \xCE\xB1\n");
  // The agents wrote in their worktrees, never in the user's checkout.
  CHECK(repo.tree() == tree);
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
}
