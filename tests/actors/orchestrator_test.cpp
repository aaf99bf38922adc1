#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <map>

#include <sys/stat.h>

#include <caf/all.hpp>

#include "support/reaper.hpp"
#include "troupe/protocol/errors.hpp"
#include "support/run_fixture.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using troupe::test::command_ws;
using troupe::test::make_plan;
using troupe::test::sleep_ws;


TEST_CASE("the concurrency bound is never exceeded and is reached",
          "[actors]") {
  test::run_fixture fx;
  std::vector<workstream> ws;
  for (int i = 0; i < 30; ++i)
    ws.push_back(sleep_ws("s" + std::to_string(i), 0.02));
  auto rec = fx.run(make_plan(ws, 3));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  CHECK(rec.max_in_flight() == 3);
  CHECK(rec.report.workstreams.size() == 30);
}

TEST_CASE("the max_parallel run option overrides the plan's limit", "[actors]") {
  test::run_fixture fx;
  std::vector<workstream> ws;
  for (int i = 0; i < 12; ++i)
    ws.push_back(sleep_ws("s" + std::to_string(i), 0.02));
  run_options opts;
  opts.max_parallel = 2;
  auto rec = fx.run(make_plan(ws, 8), opts);
  REQUIRE(rec.finished);
  CHECK(rec.max_in_flight() == 2);
}

TEST_CASE("a diamond runs its middle in parallel and its ends in order",
          "[actors]") {
  test::run_fixture fx;
  auto rec = fx.run(make_plan({sleep_ws("a", 0.05),
                               sleep_ws("b", 0.1, {"a"}),
                               sleep_ws("c", 0.1, {"a"}),
                               sleep_ws("d", 0.05, {"b", "c"})}));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  auto a_done = rec.index_of("a", "succeeded");
  auto b_start = rec.index_of("b", "dispatched");
  auto c_start = rec.index_of("c", "dispatched");
  auto b_done = rec.index_of("b", "succeeded");
  auto c_done = rec.index_of("c", "succeeded");
  auto d_start = rec.index_of("d", "dispatched");
  CHECK(a_done < b_start);
  CHECK(a_done < c_start);
  // b and c overlap: both started before either ended.
  CHECK(std::max(b_start, c_start) < std::min(b_done, c_done));
  CHECK(d_start > b_done);
  CHECK(d_start > c_done);
  CHECK(rec.report.critical_path
        == std::vector<std::string>{"a", "b", "d"});
  CHECK(rec.report.critical_path_s >= 0.2 - 1e-9);
  CHECK(rec.report.sequential_s >= 0.3 - 1e-9);
}

TEST_CASE("a 1,000-wide fan-out gathers after every branch", "[actors]") {
  test::run_fixture fx{64};
  std::vector<workstream> ws;
  workstream gather;
  gather.id = "gather";
  gather.persona = "analyzer";
  gather.agent = agent_kind::explore;
  for (int i = 0; i < 1000; ++i) {
    workstream w;
    w.id = "w" + std::to_string(i);
    w.persona = "analyzer";
    w.agent = agent_kind::explore;
    ws.push_back(w);
    gather.depends_on.push_back(w.id);
  }
  ws.push_back(gather);
  auto rec = fx.run(make_plan(ws, 64));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  CHECK(rec.report.workstreams.size() == 1001);
  auto gather_start = rec.index_of("gather", "dispatched");
  for (int i = 0; i < 1000; ++i)
    REQUIRE(rec.index_of("w" + std::to_string(i), "succeeded")
            < gather_start);
  CHECK(rec.max_in_flight() <= 64);
}

TEST_CASE("a failed attempt is retried with its output in the context",
          "[actors]") {
  test::run_fixture fx;
  auto w = command_ws("flaky",
                      "if [ \"$TROUPE_ATTEMPT\" = 1 ]; then echo boom-1 >&2; "
                      "exit 4; fi; grep -q boom-1 \"$TROUPE_CONTEXT\" && echo "
                      "saw-previous");
  w.retries = 2;
  auto rec = fx.run(make_plan({w}));
  REQUIRE(rec.finished);
  auto r = rec.ws("flaky");
  REQUIRE(r != nullptr);
  CHECK(r->status == ws_state::succeeded);
  CHECK(r->attempts == 2);
  CHECK(r->summary == "saw-previous");
  CHECK(rec.index_of("flaky", "retrying") >= 0);
}

TEST_CASE("retries stop when the budget is spent", "[actors]") {
  test::run_fixture fx;
  auto w = command_ws("broken", "exit 9");
  w.retries = 2;
  auto rec = fx.run(make_plan({w}));
  REQUIRE(rec.finished);
  CHECK(rec.ws("broken")->status == ws_state::failed);
  CHECK(rec.ws("broken")->attempts == 3);
  CHECK(rec.ws("broken")->exit_code == 9);
  CHECK(rec.report.status == run_status::failed);
}

TEST_CASE("a timed-out workstream's process group is gone", "[actors]") {
  test::become_subreaper();
  test::temp_dir dir;
  test::run_fixture fx;
  auto pid_file = dir.str() + "/bg.pid";
  auto w = command_ws("slow", "sleep 1000 & echo $! > " + pid_file + "; wait");
  w.timeout_s = 0.3;
  auto rec = fx.run(make_plan({w}));
  REQUIRE(rec.finished);
  CHECK(rec.ws("slow")->status == ws_state::timed_out);
  CHECK(rec.report.status == run_status::failed);
  auto bg = test::read_pid(pid_file);
  REQUIRE(bg > 0);
  CHECK(test::process_gone(bg));
}

TEST_CASE("block_dependents blocks what is downstream and runs the rest",
          "[actors]") {
  test::run_fixture fx;
  auto p = make_plan({command_ws("bad", "exit 1"),
                      command_ws("after_bad", "echo x", {"bad"}),
                      command_ws("later", "echo y", {"after_bad"}),
                      command_ws("other", "echo fine")});
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  CHECK(rec.ws("bad")->status == ws_state::failed);
  CHECK(rec.ws("after_bad")->status == ws_state::blocked);
  CHECK(rec.ws("later")->status == ws_state::blocked);
  CHECK(rec.ws("other")->status == ws_state::succeeded);
  CHECK(rec.report.status == run_status::failed);
  CHECK(rec.report.markdown.find("blocked") != std::string::npos);
}

TEST_CASE("fail_fast cancels running and pending work", "[actors]") {
  test::run_fixture fx;
  auto p = make_plan({command_ws("bad", "exit 1"),
                      command_ws("long", "sleep 600"),
                      command_ws("next", "echo x", {"long"})});
  p.settings.on_failure = failure_policy::fail_fast;
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  CHECK(rec.ws("bad")->status == ws_state::failed);
  CHECK(rec.ws("long")->status == ws_state::cancelled);
  CHECK(rec.ws("next")->status == ws_state::cancelled);
  CHECK(rec.report.status == run_status::failed);
}

TEST_CASE("continue runs dependents with the failure in their context",
          "[actors]") {
  test::run_fixture fx;
  auto p = make_plan(
    {command_ws("bad", "echo half-done; exit 1"),
     command_ws("next",
                "grep -q '\"status\":\"failed\"' \"$TROUPE_CONTEXT\" && "
                "grep -q half-done \"$TROUPE_CONTEXT\" && echo saw-failure",
                {"bad"})});
  p.settings.on_failure = failure_policy::continue_run;
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  CHECK(rec.ws("bad")->status == ws_state::failed);
  CHECK(rec.ws("next")->status == ws_state::succeeded);
  CHECK(rec.ws("next")->summary == "saw-failure");
  CHECK(rec.report.status == run_status::failed);
}

TEST_CASE("dependencies hand their results to dependents", "[actors]") {
  test::run_fixture fx;
  auto p = make_plan(
    {command_ws("make", "echo '{\"summary\": \"made it\", \"outputs\": "
                        "{\"answer\": \"42\"}, \"files_changed\": [\"a.txt\"]}' "
                        "> \"$TROUPE_RESULT\""),
     command_ws("use",
                "grep -q '\"answer\":\"42\"' \"$TROUPE_CONTEXT\" && grep -q "
                "'made it' \"$TROUPE_CONTEXT\" && echo got-it",
                {"make"})});
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  CHECK(rec.ws("make")->summary == "made it");
  CHECK(rec.ws("make")->outputs.at("answer") == "42");
  CHECK(rec.ws("make")->files_changed == std::vector<std::string>{"a.txt"});
  CHECK(rec.ws("use")->summary == "got-it");
}

TEST_CASE("a failing gate sends its fixer and passes on the re-check",
          "[actors]") {
  test::temp_dir dir;
  test::run_fixture fx;
  auto p = make_plan({command_ws("build", "echo built"),
                      command_ws("ship", "echo shipped", {"build"})});
  gate g;
  g.id = "tests";
  g.after = {"build"};
  g.checks = {{"completion", "", "", 0}, {"command", "test -f fixed", "", 0}};
  g.remediate.persona = "debugger";
  g.remediate.max_attempts = 2;
  g.remediate.executor.kind = "command";
  g.remediate.executor.run
    = "grep -q 'test -f fixed' \"$TROUPE_CONTEXT\" && touch fixed";
  p.gates = {g};
  run_options opts;
  opts.workdir = dir.str();
  auto rec = fx.run(p, opts);
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  auto gr = rec.gate("tests");
  REQUIRE(gr != nullptr);
  CHECK(gr->status == gate_state::passed);
  CHECK(gr->attempts == 2);
  CHECK(rec.ws("tests.fix1")->status == ws_state::succeeded);
  CHECK(rec.ws("tests.fix1")->persona == "debugger");
  CHECK(rec.index_of("ship", "dispatched") > rec.index_of("tests", "passed"));
}

TEST_CASE("a gate that stays failed blocks everything behind it",
          "[actors]") {
  test::temp_dir dir;
  test::run_fixture fx;
  auto p = make_plan({command_ws("build", "echo built"),
                      command_ws("ship", "echo shipped", {"build"}),
                      command_ws("free", "echo independent")});
  gate g;
  g.id = "tests";
  g.after = {"build"};
  g.checks = {{"command", "echo still broken; exit 1", "", 0}};
  g.remediate.max_attempts = 2;
  g.remediate.executor.kind = "command";
  g.remediate.executor.run = "echo trying";
  p.gates = {g};
  run_options opts;
  opts.workdir = dir.str();
  auto rec = fx.run(p, opts);
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::blocked);
  CHECK(rec.gate("tests")->status == gate_state::failed);
  CHECK(rec.gate("tests")->attempts == 3);
  CHECK(rec.ws("ship")->status == ws_state::blocked);
  CHECK(rec.ws("free")->status == ws_state::succeeded);
  CHECK(rec.gate("tests")->checks.at(0).detail.find("still broken")
        != std::string::npos);
}

TEST_CASE("the conflicts check fails when two workstreams change one file",
          "[actors]") {
  test::run_fixture fx;
  auto writes = [](const char* file) {
    return std::string{"echo '{\"files_changed\": [\""} + file
           + "\"]}' > \"$TROUPE_RESULT\"";
  };
  auto p = make_plan({command_ws("one", writes("src/a.cpp")),
                      command_ws("two", writes("src/a.cpp")),
                      command_ws("three", writes("src/b.cpp"))});
  gate g;
  g.id = "merge";
  g.after = {"one", "two", "three"};
  g.checks = {{"conflicts", "", "", 0}};
  p.gates = {g};
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  auto gr = rec.gate("merge");
  REQUIRE(gr != nullptr);
  CHECK(gr->status == gate_state::failed);
  CHECK(gr->checks.at(0).detail == "src/a.cpp changed by one two");
  CHECK(rec.report.status == run_status::blocked);
}

TEST_CASE("cancelling a run kills its commands and reports cancelled",
          "[actors]") {
  test::become_subreaper();
  test::temp_dir dir;
  test::run_fixture fx;
  // The command writes its pid into a fifo: reading it waits until the
  // command really runs.
  auto fifo = dir.str() + "/long.pid";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto p = make_plan({command_ws("long", "echo $$ > " + fifo
                                           + "; exec sleep 600"),
                      command_ws("after", "echo x", {"long"})});
  caf::scoped_actor self{*fx.sys};
  auto id = fx.start(self, p);
  auto pid = test::read_pid(fifo);
  REQUIRE(pid > 0);
  fx.cancel(self, id);
  auto rec = fx.collect(self);
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::cancelled);
  CHECK(rec.ws("long")->status == ws_state::cancelled);
  CHECK(rec.ws("after")->status == ws_state::cancelled);
  CHECK(test::process_gone(pid));
}

TEST_CASE("attempts running side by side leave no scratch directory",
          "[actors]") {
  test::run_fixture fx;
  std::vector<workstream> ws;
  for (int i = 0; i < 40; ++i)
    ws.push_back(command_ws("w" + std::to_string(i),
                            "dirname \"$TROUPE_CONTEXT\""));
  auto rec = fx.run(make_plan(ws, 16));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  auto run_dir = std::filesystem::temp_directory_path()
                 / ("troupe-" + rec.report.run_id);
  // Each attempt had its directory in the run's.
  CHECK(std::filesystem::path{rec.ws("w0")->summary}.parent_path()
        == run_dir);
  CHECK_FALSE(std::filesystem::exists(rec.ws("w0")->summary));
  CHECK_FALSE(std::filesystem::exists(run_dir));
}

TEST_CASE("an invalid plan is refused with the reasons", "[actors]") {
  test::run_fixture fx;
  auto p = make_plan({command_ws("a", "true", {"missing"})});
  caf::scoped_actor self{*fx.sys};
  self
    ->request(fx.orch, std::chrono::seconds(10), run_atom_v, p,
              run_options{}, caf::actor_cast<observer_actor>(self))
    .receive([](const std::string&) { FAIL("expected a refusal"); },
             [&](const caf::error& err) {
               CHECK(err == errc::invalid_plan);
               CHECK(fx.sys->render(err).find("missing")
                     != std::string::npos);
             });
}

TEST_CASE("cancelling a run stops a gate check in progress", "[actors]") {
  test::become_subreaper();
  test::temp_dir dir;
  test::run_fixture fx;
  auto fifo = dir.str() + "/check.pid";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto p = make_plan({command_ws("build", "echo built"),
                      command_ws("ship", "echo shipped", {"build"})});
  gate g;
  g.id = "slow";
  g.after = {"build"};
  g.checks = {{"command", "echo $$ > " + fifo + "; exec sleep 600", "", 0},
              {"command", "echo never", "", 0}};
  p.gates = {g};
  run_options opts;
  opts.workdir = dir.str();
  caf::scoped_actor self{*fx.sys};
  auto id = fx.start(self, p, opts);
  auto pid = test::read_pid(fifo); // the check runs now
  REQUIRE(pid > 0);
  fx.cancel(self, id);
  auto rec = fx.collect(self);
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::cancelled);
  CHECK(rec.gate("slow")->status == gate_state::cancelled);
  CHECK(rec.ws("build")->status == ws_state::succeeded);
  CHECK(rec.ws("ship")->status == ws_state::cancelled);
  CHECK(test::process_gone(pid));
}

namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

} // namespace

TEST_CASE("limits per persona and per model hold exactly, and what one "
          "holds back never holds back the rest",
          "[actors]") {
  test::run_fixture fx{16};
  std::vector<workstream> ws;
  // 6 qa workstreams (at most 2 at once), 6 on the deep tier (at most 1),
  // 6 on an exact model (at most 2), 6 unlimited; all ready at once, the
  // limited ones first.
  for (int i = 0; i < 6; ++i) {
    auto qa = sleep_ws("qa" + std::to_string(i), 0.05);
    qa.persona = "qa";
    ws.push_back(qa);
  }
  for (int i = 0; i < 6; ++i) {
    auto deep = sleep_ws("deep" + std::to_string(i), 0.05);
    deep.model = model_tier::deep;
    deep.executor.model = "claude-opus-4-5";
    ws.push_back(deep);
  }
  for (int i = 0; i < 6; ++i) {
    auto exact = sleep_ws("exact" + std::to_string(i), 0.05);
    exact.executor.model = "llama3";
    ws.push_back(exact);
  }
  for (int i = 0; i < 6; ++i)
    ws.push_back(sleep_ws("free" + std::to_string(i), 0.05));
  auto p = make_plan(ws, 8);
  p.settings.limits.persona["qa"] = 2;
  p.settings.limits.model["deep"] = 1;
  p.settings.limits.model["llama3"] = 2;
  auto rec = fx.run(p);
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  CHECK(rec.max_in_flight() == 8);
  CHECK(rec.max_in_flight([](auto& id) { return starts_with(id, "qa"); }) == 2);
  CHECK(rec.max_in_flight([](auto& id) { return starts_with(id, "deep"); })
        == 1);
  CHECK(rec.max_in_flight([](auto& id) { return starts_with(id, "exact"); })
        == 2);
  // The free ones went out at once, beside the limited ones that could.
  CHECK(rec.max_in_flight([](auto& id) { return starts_with(id, "free"); })
        >= 3);
  auto first_free = rec.index_of("free0", "dispatched");
  CHECK(first_free < rec.index_of("qa2", "dispatched"));
  CHECK(first_free < rec.index_of("deep1", "dispatched"));
}
