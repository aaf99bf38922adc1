// Runs on a repository against the shell floor.
//
// A repository of 10,000 files (100 folders of 100) in one commit; 64
// workstreams each change one file. Troupe (`troupe run --repo --yes`)
// makes a worktree per workstream, captures each change as a diff, checks
// it against what the workstream owns, integrates it and commits one commit
// per workstream. The floor does the least git can: a shell loop of `git
// worktree add`, the edit, `git diff`, `git worktree remove`, then `git
// apply` and `git commit` of each change on one more worktree. Each side
// runs `--rounds` times, alternately, on a fresh repository; the JSON has
// every time and the medians.
//
//   repo_bench [--troupe PATH] [--files N] [--workstreams N] [--rounds N]
//              [--parallel N]

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "troupe/runtime/process.hpp"

using namespace troupe;
namespace fs = std::filesystem;

namespace {

struct options {
  std::string troupe = TROUPE_BINARY;
  int files = 10000;
  int workstreams = 64;
  int rounds = 3;
  int parallel = 4;
};

// Runs a shell line in `cwd`; exits the bench if it fails.
void sh(const std::string& line, const std::string& cwd) {
  process_request req;
  req.command = line;
  req.cwd = cwd;
  std::promise<process_outcome> done;
  auto f = done.get_future();
  process_runner::shared().start(
    req, [&](process_outcome o) { done.set_value(std::move(o)); });
  auto o = f.get();
  if (o.exit_code != 0) {
    std::cerr << "repo_bench: `" << line << "` failed: " << o.err << o.out
              << '\n';
    std::exit(1);
  }
}

double timed(const std::string& line, const std::string& cwd) {
  auto start = std::chrono::steady_clock::now();
  sh(line, cwd);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
    .count();
}

std::string file_of(int i, const options& o) {
  auto per = std::max(1, o.files / 100);
  char name[64];
  std::snprintf(name, sizeof name, "d%03d/f%05d.txt", i / per, i);
  return name;
}

// A repository of `o.files` small files in one commit.
void make_repo(const fs::path& dir, const options& o) {
  fs::create_directories(dir);
  for (int i = 0; i < o.files; ++i) {
    auto p = dir / file_of(i, o);
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "file " << i << "\nline two\n";
  }
  sh("git init -q -b main . && git add -A && git -c user.name=b -c "
     "user.email=b@b commit -q -m files",
     dir.string());
}

// The i-th workstream's file: spread over the repository.
std::string target(int i, const options& o) {
  return file_of(i * (o.files / o.workstreams), o);
}

std::string plan_text(const options& o) {
  std::string p = "name: bench\nsettings: {max_parallel_agents: "
                  + std::to_string(o.parallel) + "}\nworkstreams:\n";
  for (int i = 0; i < o.workstreams; ++i)
    p += "  - {id: w" + std::to_string(i) + ", owns: [" + target(i, o)
         + "], executor: {kind: command, run: 'echo changed >> " + target(i, o)
         + "'}}\n";
  return p;
}

std::string floor_script(const options& o) {
  std::string s = "set -e\nbase=$(git rev-parse HEAD)\nmkdir -p ../floor\n";
  for (int i = 0; i < o.workstreams; ++i) {
    auto n = std::to_string(i);
    s += "git worktree add -q --detach ../floor/w" + n + " $base\n"
         + "(cd ../floor/w" + n + " && echo changed >> " + target(i, o)
         + " && git add -A && git diff --cached --binary > ../p" + n
         + ")\ngit worktree remove --force ../floor/w" + n + "\n";
  }
  s += "git worktree add -q --detach ../floor/integration $base\n"
       "cd ../floor/integration\n";
  for (int i = 0; i < o.workstreams; ++i)
    s += "git apply --index ../p" + std::to_string(i)
         + " && git -c user.name=b -c user.email=b@b commit -q -m w"
         + std::to_string(i) + "\n";
  s += "git update-ref refs/heads/floor HEAD\ncd - >/dev/null\n"
       "git worktree remove --force ../floor/integration\n";
  return s;
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--troupe")
      o.troupe = argv[i + 1];
    else if (k == "--files")
      o.files = std::atoi(argv[i + 1]);
    else if (k == "--workstreams")
      o.workstreams = std::atoi(argv[i + 1]);
    else if (k == "--rounds")
      o.rounds = std::atoi(argv[i + 1]);
    else if (k == "--parallel")
      o.parallel = std::atoi(argv[i + 1]);
  }
  if (o.files < 100 || o.workstreams < 1 || o.workstreams > o.files
      || o.rounds < 1 || o.parallel < 1) {
    std::cerr << "repo_bench: need --files >= 100, 1 <= --workstreams <= "
                 "--files, --rounds >= 1, --parallel >= 1\n";
    return 2;
  }
  auto root = fs::temp_directory_path()
              / ("troupe-repo-bench-" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::ofstream(root / "plan.yaml") << plan_text(o);
  std::ofstream(root / "floor.sh") << floor_script(o);
  std::vector<double> troupe_s, floor_s;
  for (int r = 0; r < o.rounds; ++r) {
    auto repo = root / ("troupe" + std::to_string(r)) / "repo";
    make_repo(repo, o);
    troupe_s.push_back(timed("'" + o.troupe
                               + "' run ../../plan.yaml -q "
                                 "--no-journal --yes --repo . > /dev/null",
                             repo.string()));
    auto floor = root / ("floor" + std::to_string(r)) / "repo";
    make_repo(floor, o);
    floor_s.push_back(timed("sh ../../floor.sh", floor.string()));
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  nlohmann::json out
    = {{"files", o.files},
       {"workstreams", o.workstreams},
       {"parallel", o.parallel},
       {"troupe_s", troupe_s},
       {"floor_s", floor_s},
       {"troupe_median_s", median(troupe_s)},
       {"floor_median_s", median(floor_s)},
       {"ratio", median(troupe_s) / median(floor_s)},
       {"what",
        "troupe: `troupe run --repo --yes` of the workstreams, each in its own "
        "worktree, changes captured, checked, integrated and committed one "
        "per workstream; floor: a shell loop of git worktree add, the edit, "
        "git diff, git worktree remove, then git apply and git commit of "
        "each change on one worktree"}};
  std::cout << out.dump(2) << '\n';
  return 0;
}
