// Runs on a real git repository: a worktree per workstream, its change
// checked against what it owns and integrated, and one commit per
// workstream; the user's checkout untouched.

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
using troupe::test::changes_of;
using troupe::test::files;
using troupe::test::git_repo;
using troupe::test::run_on;
using troupe::test::run_troupe;
using troupe::test::split_lines;
using troupe::test::subjects;
using troupe::test::three_edits;
using troupe::test::ws_of;

TEST_CASE("workstreams on a repository land as one commit each, in order, "
          "and the user's checkout stays as it was",
          "[integration][repo]") {
  git_repo repo{files};
  auto base = repo.git("rev-parse HEAD").substr(0, 40);
  // A checkout in use: a stash, a staged change, an unstaged one, and a
  // file git does not know.
  repo.write("gone.txt", "stashed\n");
  repo.git("stash -q");
  repo.write("b.txt", "b staged\n");
  repo.git("add b.txt");
  repo.write("a.txt", "a dirty\n");
  repo.write("untracked.txt", "mine\n");
  auto tree = repo.tree();
  auto state = repo.state();

  json report;
  auto r = run_on(repo, three_edits, {"--yes"}, report);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto& rep = report.at("repository");
  CHECK(rep.at("approval") == "committed");
  CHECK(rep.at("base") == base);
  auto branch = rep.at("branch").get<std::string>();
  CHECK(branch == "troupe/" + report.at("run_id").get<std::string>());
  REQUIRE(rep.at("commits").size() == 4);
  CHECK(repo.git("rev-parse " + branch).substr(0, 40)
        == rep.at("commits").back());

  // One commit per workstream, dependencies first, else in the plan's order.
  CHECK(subjects(repo, base, branch)
        == std::vector<std::string>{
          "Append to a", "Append to b and add a binary file",
          "Rename, delete and make executable", "Fold b into a"});
  auto c = rep.at("commits");
  CHECK(changes_of(repo, c[0]) == "M\ta.txt\n");
  CHECK(changes_of(repo, c[1]) == "M\tb.txt\nA\tbin/blob.bin\n");
  auto moved = changes_of(repo, c[2]);
  CHECK(moved.find("D\tgone.txt") != std::string::npos);
  CHECK(moved.find("R100\told.txt\tnew.txt") != std::string::npos);
  CHECK(moved.find("M\trun.sh") != std::string::npos);
  CHECK(changes_of(repo, c[3]) == "M\ta.txt\n");
  // Each commit says whose work it is.
  auto message = repo.git("log -1 --format=%B " + c[3].get<std::string>());
  CHECK(message.find("Workstream: after") != std::string::npos);
  CHECK(message.find("Run: " + report.at("run_id").get<std::string>())
        != std::string::npos);
  CHECK(repo.git("log -1 --format='%an <%ae>' " + branch)
        == "Troupe <troupe@localhost>\n");

  // What the commits hold: the dependent saw both changes it came after;
  // binary bytes and the mode survived.
  CHECK(repo.git("show " + branch + ":a.txt") == "a\nA\nb\nB\n");
  CHECK(repo.git("show " + branch + ":bin/blob.bin")
        == std::string("\000\001\377\n\r", 5));
  CHECK(repo.git("ls-tree " + branch + " run.sh").substr(0, 6) == "100755");
  CHECK(repo.try_git("cat-file -e " + branch + ":old.txt").exit_code != 0);

  // The result says what the diff says.
  auto& b = ws_of(report, "edit-b");
  CHECK(b.at("files_changed") == json({"b.txt", "bin/blob.bin"}));
  CHECK(b.at("lines_added") == 1);

  // Nothing of the user's changed, and no worktree is left.
  CHECK(repo.tree() == tree);
  auto after = repo.state();
  // The new branch is the one difference among the refs.
  repo.git("branch -q -D " + branch);
  CHECK(repo.state() == state);
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
  CHECK(report.at("markdown").get<std::string>().find("## Changes")
        != std::string::npos);
  // The run's directory keeps its diffs, report and logs.
  auto dir = rep.at("run_dir").get<std::string>();
  CHECK(dir
        == repo.str() + "/.troupe/runs/"
             + report.at("run_id").get<std::string>());
  CHECK(test::names_in(dir + "/diffs").size() == 4);
  CHECK(json::parse(test::run_shell("cat report.json", dir).out).at("run_id")
        == report.at("run_id"));
  CHECK(test::run_shell("cat logs/edit-a.log", dir).exit_code == 0);
}

TEST_CASE("a change outside what a workstream owns fails it, naming the "
          "files, and nothing of it is committed",
          "[integration][repo]") {
  git_repo repo{files};
  json report;
  auto r = run_on(repo, R"(name: trespass
workstreams:
  - id: sneaky
    owns: [a.txt]
    retries: 1
    executor: {kind: command, run: "echo x >> a.txt; echo y > c.txt; echo z >> b.txt"}
)",
                  {"--yes"}, report);
  CHECK(r.exit_code == 1);
  auto& w = ws_of(report, "sneaky");
  CHECK(w.at("status") == "failed");
  CHECK(w.at("attempts") == 2);
  auto summary = w.at("summary").get<std::string>();
  CHECK(summary.find("ownership") != std::string::npos);
  CHECK(summary.find("b.txt, c.txt") != std::string::npos);
  CHECK(summary.find("a.txt)") != std::string::npos); // what it owns
  CHECK(repo.run_branches().empty());
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
  CHECK(report.at("repository").at("approval") == "");
}

TEST_CASE("two workstreams creating the same file conflict, and the gate "
          "names the file and both of them",
          "[integration][repo]") {
  git_repo repo{files};
  json report;
  auto r = run_on(repo, R"(name: clash
workstreams:
  - {id: one, owns: [shared.txt], executor: {kind: command, run: "echo one > shared.txt"}}
  - {id: two, owns: [shared.txt], executor: {kind: command, run: "echo two > shared.txt"}}
  - {id: later, owns: [a.txt], depends_on: [one, two], executor: {kind: command, run: "echo later >> a.txt"}}
gates:
  - {id: merge, after: [one, two], checks: [completion, conflicts]}
)",
                  {"--yes"}, report);
  CHECK(r.exit_code == 1);
  REQUIRE(report.at("gates").size() == 1);
  auto& g = report.at("gates")[0];
  CHECK(g.at("status") == "failed");
  std::string detail;
  for (auto& c : g.at("checks"))
    if (c.at("name") == "conflicts") {
      CHECK(c.at("passed") == false);
      detail = c.at("detail");
    }
  INFO(detail);
  // Whichever came second did not apply onto the first.
  CHECK(detail.find("shared.txt (also changed by") != std::string::npos);
  CHECK(detail.find("one") != std::string::npos);
  CHECK(detail.find("two") != std::string::npos);
  CHECK(ws_of(report, "later").at("status") == "blocked");
  CHECK(repo.run_branches().empty());
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
}
TEST_CASE("examples/coding: parallel edits, a failing test gate fixed by its "
          "remediation, then one commit per workstream",
          "[integration][repo]") {
  test::temp_dir dir;
  auto repo_dir = (dir.path() / "calc").string();
  auto example = std::string{TROUPE_SOURCE_DIR} + "/examples/coding";
  auto made = test::run_shell(test::sh_quote(example + "/make-repo.sh") + " "
                              + test::sh_quote(repo_dir));
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  auto r = run_troupe({"run", example + "/plan.yaml", "-q", "--repo", repo_dir,
                       "--yes", "--no-journal", "--report",
                       (dir.path() / "r.json").string()},
                      dir.str());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto report = json::parse(dir.read("r.json"));
  auto& g = report.at("gates")[0];
  CHECK(g.at("status") == "passed");
  CHECK(g.at("attempts") == 2);
  CHECK(ws_of(report, "tests.fix1").at("files_changed")
        == json({"src/math.sh"}));
  auto branch = report.at("repository").at("branch").get<std::string>();
  auto log = test::run_shell("git log --reverse --format=%s main.." + branch,
                             repo_dir);
  CHECK(split_lines(log.out)
        == std::vector<std::string>{
          "greet: end the greeting with an exclamation mark", "math: add mul",
          "README: document mul", "Remediate gate tests (run: sh test.sh)"});
  // The branch's code passes its tests; main's checkout is as it was.
  auto wt = (dir.path() / "check").string();
  auto tests
    = test::run_shell("git worktree add -q " + test::sh_quote(wt) + " " + branch
                        + " && cd " + test::sh_quote(wt) + " && sh test.sh",
                      repo_dir);
  INFO(tests.out);
  CHECK(tests.exit_code == 0);
  CHECK(test::run_shell("git status --porcelain", repo_dir).out.empty());
}
TEST_CASE("Ctrl-C while work runs in its worktree: the run ends cancelled "
          "and leaves no worktree, no branch and the checkout as it was",
          "[integration][repo]") {
  test::become_subreaper();
  git_repo repo{files};
  repo.write("a.txt", "dirty\n");
  auto tree = repo.tree();
  test::temp_dir out;
  auto pid_file = out.str() + "/work.pid";
  REQUIRE(::mkfifo(pid_file.c_str(), 0600) == 0);
  auto plan = out.write("plan.yaml", R"(name: interrupted
workstreams:
  - {id: quick, owns: [b.txt], executor: {kind: command, run: "echo q >> b.txt"}}
  - id: slow
    owns: [a.txt]
    executor: {kind: command, run: "echo s >> a.txt; echo $$ > )"
                                       + pid_file + R"(; exec sleep 600"}
)");
  test::background troupe{{TROUPE_BINARY, "run", plan, "--no-journal", "-q",
                           "--repo", repo.str(), "--yes", "--report",
                           out.str() + "/report.json"}};
  // Reading the fifo waits until the work really runs, in its worktree.
  auto work = test::read_pid(pid_file);
  REQUIRE(work > 0);
  CHECK(split_lines(repo.git("worktree list")).size() >= 2);
  troupe.signal(SIGINT);
  CHECK(troupe.wait() == 1);
  auto report = json::parse(out.read("report.json"));
  CHECK(report.at("status") == "cancelled");
  CHECK(ws_of(report, "slow").at("status") == "cancelled");
  CHECK(test::process_gone(work));
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
  // What stays of the run: its marker, report and logs, and any change it
  // accepted; no workspace, no integration tree.
  auto dir = report.at("repository").at("run_dir").get<std::string>();
  for (auto& name : test::names_in(dir))
    CHECK((name == "repository" || name == "diffs" || name == "logs"
           || name == "report.json" || name == "report.md"));
  CHECK(repo.run_branches().empty());
  CHECK(repo.tree() == tree);
}

TEST_CASE("a plan names its repository relative to its file, and its "
          "branch; the command line's win",
          "[integration][repo]") {
  git_repo repo{files};
  test::temp_dir out;
  // The plan file lives beside the repository.
  auto rel = std::filesystem::relative(repo.dir().path(), out.path()).string();
  // `idle` changes nothing: it has no commit.
  auto plan = out.write("plan.yaml", "name: named\nrepo: {path: " + rel
                                       + ", branch: from-plan}\n"
                                         "workstreams:\n  - {id: a, owns: "
                                         "[a.txt], executor: {kind: command, "
                                         "run: 'echo x >> a.txt'}}\n"
                                         "  - {id: idle, owns: [b.txt], "
                                         "executor: {kind: command, run: "
                                         "'true'}}\n");
  // The config file names who commits.
  auto config = out.write("config.yaml", "git: {author_name: Release Bot, "
                                         "author_email: bot@example.com}\n");
  auto r = run_troupe({"run", plan, "-q", "--no-journal", "--yes"}, "/",
                      "export TROUPE_CONFIG=" + test::sh_quote(config) + "; ");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(subjects(repo, "main", "from-plan") == std::vector<std::string>{"a"});
  CHECK(repo.git("log -1 --format='%an <%ae>|%cn <%ce>' from-plan")
        == "Release Bot <bot@example.com>|Release Bot <bot@example.com>\n");
  auto bad = out.write("bad.yaml", "git: {author_name: 'a <b>'}\n");
  auto b = run_troupe({"run", plan, "-q", "--no-journal", "--yes"}, "/",
                      "export TROUPE_CONFIG=" + test::sh_quote(bad) + "; ");
  CHECK(b.exit_code == 2);
  CHECK(b.err.find("git.author_name: must not hold") != std::string::npos);
  auto over = run_troupe(
    {"run", plan, "-q", "--no-journal", "--yes", "--branch", "from-flag"}, "/");
  CHECK(over.exit_code == 0);
  CHECK(subjects(repo, "main", "from-flag").size() == 1);
  auto missing = out.write("missing.yaml", "repo: nowhere\nworkstreams: "
                                           "[{id: a}]\n");
  auto m = run_troupe({"run", missing, "-q", "--no-journal", "--yes"}, "/");
  CHECK(m.exit_code == 2);
  CHECK(m.err.find("missing.yaml: repo: ") != std::string::npos);
  CHECK(m.err.find("is not a directory") != std::string::npos);
}

TEST_CASE("read-only work sees the integrated tree and cannot write to it",
          "[integration][repo]") {
  git_repo repo{files};
  json report;
  auto r = run_on(repo, R"(name: readers
workstreams:
  - {id: edit, owns: [a.txt], executor: {kind: command, run: "echo edited >> a.txt"}}
  - {id: look, agent: explore, depends_on: [edit], executor: {kind: command, run: "cat a.txt"}}
  - {id: scribble, agent: explore, executor: {kind: command, run: "echo x >> b.txt"}}
)",
                  {"--yes"}, report);
  CHECK(r.exit_code == 1);
  CHECK(ws_of(report, "look").at("status") == "succeeded");
  CHECK(ws_of(report, "look").at("output").get<std::string>().find("a\nedited")
        != std::string::npos);
  // Its files are not writable; and should it write anyway (as root may),
  // its change is refused.
  auto& s = ws_of(report, "scribble");
  CHECK(s.at("status") == "failed");
  auto said
    = s.at("summary").get<std::string>() + s.at("output").get<std::string>();
  INFO(said);
  CHECK((said.find("Permission denied") != std::string::npos
         || said.find("read-only: its agent is explore, and it changed b.txt")
              != std::string::npos));
  CHECK(repo.run_branches().empty());
  CHECK(split_lines(repo.git("worktree list")).size() == 1);
}
