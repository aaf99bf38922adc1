// Deciding on a run's changes: awaiting approval, the terminal prompt,
// `troupe approve` and `troupe reject` from another shell, and commits
// made all or none.

#include <csignal>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/git_repo.hpp"
#include "support/reaper.hpp"
#include "support/repo_run.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::files;
using troupe::test::git_repo;
using troupe::test::run_on;
using troupe::test::run_troupe;
using troupe::test::split_lines;
using troupe::test::subjects;
using troupe::test::three_edits;

TEST_CASE("changes await approval without --yes; rejecting leaves every "
          "branch as it was and keeps the diffs",
          "[integration][repo]") {
  git_repo repo{files};
  auto refs = repo.git("for-each-ref");
  json report;
  auto r = run_on(repo, three_edits, {}, report);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto id = report.at("run_id").get<std::string>();
  CHECK(report.at("repository").at("approval") == "awaiting");
  CHECK(r.err.find("troupe approve " + id) != std::string::npos);
  CHECK(repo.git("for-each-ref") == refs);

  auto x = run_troupe({"reject", id, "--repo", repo.str()});
  INFO(x.err);
  CHECK(x.exit_code == 0);
  CHECK(repo.git("for-each-ref") == refs);
  auto dir = report.at("repository").at("run_dir").get<std::string>();
  CHECK(test::names_in(dir + "/diffs").size() == 4);
  // Decided once: approving it now is refused, and changes nothing.
  auto a = run_troupe({"approve", id, "--repo", repo.str()});
  CHECK(a.exit_code == 1);
  CHECK(a.err.find("rejected already") != std::string::npos);
  CHECK(repo.git("for-each-ref") == refs);
}

TEST_CASE("approving from another shell commits everything or nothing",
          "[integration][repo]") {
  git_repo repo{files};
  json report;
  auto r = run_on(repo, three_edits, {"--branch", "feature/x"}, report);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto id = report.at("run_id").get<std::string>();
  auto refs = repo.git("for-each-ref");

  SECTION("the branch cannot move: no commit is left behind") {
    // Another git process holds the branch's lock as the last step comes.
    repo.write(".git/refs/heads/feature/x.lock", "");
    auto a = run_troupe({"approve", id.substr(0, 20), "--repo", repo.str()});
    CHECK(a.exit_code == 1);
    CHECK(a.err.find("no branch was changed") != std::string::npos);
    CHECK(repo.git("for-each-ref") == refs);
    // Nothing was decided: once the lock is gone, approving works.
    std::filesystem::remove(repo.dir().path()
                            / ".git/refs/heads/feature/x.lock");
    auto again = run_troupe({"approve", id, "--repo", repo.str()});
    INFO(again.err);
    CHECK(again.exit_code == 0);
    CHECK(subjects(repo, "main", "feature/x").size() == 4);
  }
  SECTION("a branch that moved since the run's base is not moved") {
    repo.git("branch feature/x main");
    repo.write("z.txt", "z\n");
    repo.git("add z.txt");
    repo.git("commit -q -m moved");
    repo.git("branch -f feature/x HEAD");
    auto before = repo.git("for-each-ref");
    auto a = run_troupe({"approve", id, "--repo", repo.str()});
    CHECK(a.exit_code == 1);
    CHECK(a.err.find("not at the run's base") != std::string::npos);
    CHECK(repo.git("for-each-ref") == before);
  }
}

namespace {

// `troupe run` of `plan` on `repo` on a terminal (a pseudo-terminal of
// `script`) whose keyboard is the FIFO `keys`: nothing is typed until the
// test writes to it.
std::vector<std::string> on_terminal(const git_repo& repo,
                                     const std::string& plan,
                                     const std::string& keys) {
  auto cmd = "exec " + test::sh_quote(TROUPE_BINARY) + " run "
             + test::sh_quote(plan) + " -q --no-journal --repo "
             + test::sh_quote(repo.str());
  return {"/bin/sh", "-c",
          "exec script -qfec " + test::sh_quote(cmd) + " /dev/null < "
            + test::sh_quote(keys)};
}

// Reads the terminal until a line holds `text`; that line, or empty.
std::string read_until(test::background& term, const std::string& text) {
  for (;;) {
    auto line = term.line();
    if (line.empty() || line.find(text) != std::string::npos)
      return line;
  }
}

} // namespace

TEST_CASE("on a terminal the run shows its changes and asks; an approval "
          "from another shell ends the wait",
          "[integration][repo]") {
  git_repo repo{files};
  test::temp_dir out;
  auto plan = out.write("plan.yaml", three_edits);
  auto keys = (out.path() / "keys").string();
  REQUIRE(::mkfifo(keys.c_str(), 0600) == 0);
  // Held open, so the terminal never reads the end of its input.
  int typing = ::open(keys.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(typing >= 0);
  test::background term{on_terminal(repo, plan, keys)};
  auto shown = read_until(term, "Changes of run ");
  REQUIRE(!shown.empty());
  auto from = shown.find("Changes of run ") + 15;
  auto id = shown.substr(from, shown.find(',', from) - from);
  // The first lines of each diff are shown.
  CHECK(!read_until(term, "diff --git a/bin/blob.bin b/bin/blob.bin").empty());

  SECTION("approved from another shell") {
    auto a = run_troupe({"approve", id, "--repo", repo.str()});
    INFO(a.err);
    CHECK(a.exit_code == 0);
    CHECK(!read_until(term, "committed from another shell").empty());
    CHECK(term.wait() == 0);
    CHECK(subjects(repo, "main", "troupe/" + id).size() == 4);
  }
  SECTION("answered on the terminal") {
    REQUIRE(::write(typing, "y\n", 2) == 2);
    CHECK(!read_until(term, "committed 4 changes onto branch troupe/" + id)
             .empty());
    CHECK(term.wait() == 0);
    CHECK(subjects(repo, "main", "troupe/" + id).size() == 4);
  }
  SECTION("declined on the terminal") {
    REQUIRE(::write(typing, "n\n", 2) == 2);
    CHECK(!read_until(term, "not committed").empty());
    CHECK(term.wait() == 0);
    CHECK(repo.run_branches().empty());
    // The decision is still open.
    auto a = run_troupe({"approve", id, "--repo", repo.str()});
    CHECK(a.exit_code == 0);
  }
  ::close(typing);
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
}
