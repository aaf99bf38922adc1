// A run on a git repository over a cluster: workers in directories of their
// own fetch the repository, work in worktrees there and send their diffs
// back; the coordinator integrates and commits, as a local run does.

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/git_repo.hpp"
#include "support/repo_run.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
using troupe::test::split_lines;

namespace {

// Each commit from `base` to `branch` as its tree and subject, oldest first.
std::vector<std::string> commits(const std::string& repo,
                                 const std::string& branch) {
  return split_lines(
    test::run_shell("git log --reverse --format='%T %s' main.." + branch, repo)
      .out);
}

// The edits every repository test runs, on a repository that workers
// fetch from `url`, with a gate that checks the integrated tree.
std::string plan_for(const std::string& url) {
  auto edits = test::three_edits.substr(test::three_edits.find('\n') + 1);
  return "name: spread\nrepo: {path: ., url: '" + url + "'}\n" + edits
         + "gates:\n  - {id: tests, after: [after, move], checks: "
           "[completion, conflicts, {run: 'grep -q B a.txt && test ! -e "
           "old.txt && test -x run.sh'}]}\n";
}

} // namespace

TEST_CASE("a cluster run on a repository, its workers in directories of "
          "their own, makes the commits a local run makes",
          "[integration][repo][cluster]") {
  test::git_repo origin{test::files};
  test::temp_dir dir;
  auto local = (dir.path() / "local").string();
  auto shared = (dir.path() / "shared").string();
  for (auto& clone : {local, shared})
    REQUIRE(test::run_shell("git clone -q " + sh_quote(origin.str()) + " "
                            + sh_quote(clone))
              .exit_code
            == 0);
  // Workers fetch from the origin, as they would from a server.
  auto plan = dir.write("plan.yaml", plan_for("file://" + origin.str()));

  auto l = run_troupe(
    {"run", plan, "--no-journal", "--yes", "--repo", local, "--branch", "done"},
    dir.str());
  INFO(l.out << l.err);
  REQUIRE(l.exit_code == 0);

  test::coordinator c{{"--slots", "0"}};
  auto w1_dir = (dir.path() / "w1").string();
  auto w2_dir = (dir.path() / "w2").string();
  auto w1 = test::start_worker(c, "w1", 2, {"--workspaces", w1_dir});
  auto w2 = test::start_worker(c, "w2", 2, {"--workspaces", w2_dir});
  auto report_file = (dir.path() / "report.json").string();
  auto r = run_troupe({"submit", plan, "--coordinator", c.address(), "-q",
                       "--yes", "--repo", shared, "--branch", "done",
                       "--report", report_file},
                      dir.str());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto report = test::read_json(report_file);
  CHECK(report.at("repository").at("approval") == "committed");
  for (auto& w : report.at("workstreams"))
    CHECK((w.at("node") == "w1" || w.at("node") == "w2"));
  CHECK(report.at("gates")[0].at("status") == "passed");

  // The same commits: trees and subjects, in the same order.
  auto made = commits(shared, "done");
  CHECK(made.size() == 4);
  CHECK(made == commits(local, "done"));
  // The workers fetched the repository into their caches, and left no
  // worktree behind; the coordinator's checkout has none either.
  for (auto& w : {w1_dir, w2_dir}) {
    auto cache = w + "/cache.git";
    if (!std::filesystem::exists(cache))
      continue; // a worker that got no work
    CHECK(split_lines(test::run_shell("git worktree list", cache).out).size()
          == 1);
  }
  CHECK(split_lines(test::run_shell("git worktree list", shared).out).size()
        == 1);
  CHECK(test::run_shell("git status --porcelain", shared).out.empty());
}
