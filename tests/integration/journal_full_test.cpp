// A journal that cannot grow mid-run: the run fails saying so, loses
// nothing it had journaled, and goes on with `troupe resume` once the
// journal can grow again.

#include <map>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

TEST_CASE("a journal that cannot grow fails the run saying so, and the run "
          "resumes once it can",
          "[integration][journal]") {
  temp_dir dir;
  // 40 workstreams of 60 kB of output each: more than the journal may grow
  // to under the file size limit below. Each counts its runs.
  std::string plan = "name: outgrows\nworkstreams:\n";
  for (int i = 0; i < 40; ++i)
    plan += "  - {id: w" + std::to_string(i)
            + ", agent: explore, executor: {kind: command, run: \"echo x >> "
              "count.w"
            + std::to_string(i)
            + "; head -c 60000 /dev/zero | tr '\\\\0' x\"}}\n";
  auto plan_path = dir.write("plan.yaml", plan);
  auto journal = dir.str() + "/troupe.db";
  // Files may not grow past 512 KiB (as on a full disk, writes fail; the
  // signal that would kill the writer instead is ignored).
  auto run = run_troupe({"run", plan_path, "--journal", journal, "-q",
                         "--max-parallel", "4"},
                        dir.str(), "trap '' XFSZ; ulimit -f 512; ");
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("cannot write journal " + journal));
  CHECK_THAT(run.err, Catch::Contains("is the disk full?"));
  CHECK_THAT(run.err, Catch::Contains("the run fails"));

  // What it journaled is there: the run shows as interrupted.
  auto runs = run_troupe({"runs", "--journal", journal, "--json"}, dir.str());
  REQUIRE(runs.exit_code == 0);
  auto listed = json::parse(runs.out);
  REQUIRE(listed.size() == 1);
  auto id = listed[0]["id"].get<std::string>();
  CHECK(listed[0]["status"] == "interrupted");
  auto ended_before = listed[0]["ended"].get<int>();
  CHECK(ended_before < 40);
  auto report = run_troupe({"report", id, "--journal", journal}, dir.str());
  CHECK(report.exit_code == 1);
  CHECK_THAT(report.err, Catch::Contains("`troupe resume " + id + "`"));

  // With room again, it goes on and ends as an uninterrupted run would.
  auto resumed = run_troupe({"resume", id, "--journal", journal, "-q",
                             "--report", "report.json"},
                            dir.str());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto rep = json::parse(dir.read("report.json"));
  CHECK(rep["status"] == "succeeded");
  REQUIRE(rep["workstreams"].size() == 40);
  std::map<std::string, int> counts;
  for (auto& name : names_in(dir.path()))
    if (name.rfind("count.", 0) == 0)
      counts[name.substr(6)] = static_cast<int>(
        split_lines(dir.read(name)).size());
  CHECK(counts.size() == 40);
  // What the journal had seen succeed did not run again.
  int ran_once = 0;
  for (auto& [w, n] : counts) {
    CHECK(n <= 2);
    ran_once += n == 1 ? 1 : 0;
  }
  CHECK(ran_once >= ended_before);
}
