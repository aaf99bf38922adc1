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
