#include "troupe/actors/run_tracker.hpp"

#include <catch2/catch.hpp>

using namespace troupe;

namespace {

plan tracked_plan() {
  plan p;
  p.name = "tracked";
  p.goal = "see what was seen";
  for (auto id : {"a", "b", "c"}) {
    workstream w;
    w.id = id;
    w.title = std::string{"title "} + id;
    w.persona = "backend";
    p.workstreams.push_back(w);
  }
  p.workstreams[1].depends_on = {"a"};
  p.workstreams[2].depends_on = {"b"};
  gate g;
  g.id = "g";
  g.after = {"a"};
  g.remediate.persona = "debugger";
  p.gates.push_back(g);
  return p;
}

struct feeder {
  run_tracker& t;
  uint64_t seq = 0;

  void operator()(event_kind kind, std::string subject, std::string state,
                  double t_s, int32_t attempt = 0, std::string node = {},
                  std::string message = {}) {
    event e;
    e.run_id = "run-7";
    e.seq = ++seq;
    e.t_s = t_s;
    e.kind = kind;
    e.subject = std::move(subject);
    e.state = std::move(state);
    e.attempt = attempt;
    e.node = std::move(node);
    e.message = std::move(message);
    t.add(e);
  }
};

const workstream_result& ws(const run_report& r, const std::string& id) {
  for (auto& w : r.workstreams)
    if (w.id == id)
      return w;
  FAIL("no workstream " << id);
  throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("a partial report holds each workstream's last known state",
          "[actors]") {
  auto p = tracked_plan();
  run_tracker t{p};
  feeder ev{t};
  ev(event_kind::run_started, "run-7", "started", 0);
  ev(event_kind::ws_ready, "a", "ready", 0);
  ev(event_kind::ws_dispatched, "a", "dispatched", 0.1, 1, "n1");
  ev(event_kind::ws_running, "a", "running", 0.2, 1, "n1");
  ev(event_kind::ws_retrying, "a", "retrying", 0.5, 1, "n1", "exit 1");
  ev(event_kind::ws_dispatched, "a", "dispatched", 1.0, 2, "n2");
  ev(event_kind::ws_running, "a", "running", 1.1, 2, "n2");
  ev(event_kind::ws_ended, "a", "succeeded", 2.0, 2, "n2", "made it");
  ev(event_kind::gate_evaluating, "g", "evaluating", 2.0, 0);
  ev(event_kind::gate_remediating, "g", "remediating", 2.0, 1, {}, "ctest failed");
  ev(event_kind::ws_dispatched, "g.fix1", "dispatched", 2.1, 1, "n1");
  ev(event_kind::ws_running, "g.fix1", "running", 2.2, 1, "n1");
  ev(event_kind::ws_ready, "b", "ready", 2.0);
  ev(event_kind::ws_dispatched, "b", "dispatched", 2.0, 1, "n2");
  ev(event_kind::node_lost, "n2", "lost", 3.0, 0, "n2", "connection closed");
  ev(event_kind::ws_requeued, "b", "ready", 3.0, 1, "n2", "requeued: node n2 lost");
  auto r = t.partial_report(5.0, "the coordinator was lost");
  CHECK(r.partial);
  CHECK(r.status == run_status::failed);
  CHECK(r.run_id == "run-7");
  CHECK(r.plan == "tracked");
  CHECK(r.goal == "see what was seen");
  CHECK(r.wall_s == 5.0);
  REQUIRE(r.workstreams.size() == 4);
  // The plan's workstreams first, in its order, then the fixer.
  CHECK(r.workstreams[3].id == "g.fix1");
  auto& a = ws(r, "a");
  CHECK(a.status == ws_state::succeeded);
  CHECK(a.attempts == 2);
  CHECK(a.node == "n2");
  CHECK(a.summary == "made it");
  CHECK(a.title == "title a");
  CHECK(a.persona == "backend");
  CHECK(a.started_s == 1.0);
  CHECK(a.wall_s == Approx(1.0));
  auto& b = ws(r, "b");
  CHECK(b.status == ws_state::ready);
  CHECK(b.summary == "requeued: node n2 lost");
  CHECK(b.wall_s == 0);
  auto& c = ws(r, "c");
  CHECK(c.status == ws_state::pending);
  CHECK(c.attempts == 0);
  CHECK(c.node.empty());
  auto& fix = ws(r, "g.fix1");
  CHECK(fix.status == ws_state::running);
  CHECK(fix.persona == "debugger");
  CHECK(fix.node == "n1");
  CHECK(fix.wall_s == Approx(2.9));
  REQUIRE(r.gates.size() == 1);
  CHECK(r.gates[0].id == "g");
  CHECK(r.gates[0].status == gate_state::remediating);
  CHECK(r.gates[0].attempts == 1);
  CHECK(r.sequential_s == Approx(1.0 + 2.9));
  CHECK(r.markdown.rfind("**Partial report: the coordinator was lost.**", 0)
        == 0);
  CHECK(r.markdown.find("# tracked: failed") != std::string::npos);
}

TEST_CASE("a partial report before any event lists the plan as pending",
          "[actors]") {
  auto p = tracked_plan();
  run_tracker t{p};
  auto r = t.partial_report(0.5, "lost");
  CHECK(r.partial);
  CHECK(r.status == run_status::failed);
  REQUIRE(r.workstreams.size() == 3);
  for (auto& w : r.workstreams)
    CHECK(w.status == ws_state::pending);
  REQUIRE(r.gates.size() == 1);
  CHECK(r.gates[0].status == gate_state::pending);
}

TEST_CASE("a partial report keeps what the synthesis agent wrote, under its "
          "persona",
          "[actors]") {
  auto p = tracked_plan();
  p.synthesis.persona = "docs";
  p.synthesis.executor.kind = "anthropic";
  run_tracker t{p};
  feeder ev{t};
  for (auto id : {"a", "b", "c"})
    ev(event_kind::ws_ended, id, "succeeded", 1.0, 1, "n1", "done");
  ev(event_kind::ws_dispatched, "synthesis", "dispatched", 1.5, 1, "n1");
  event end;
  end.run_id = "run-7";
  end.seq = 100;
  end.t_s = 2.5;
  end.kind = event_kind::ws_ended;
  end.subject = "synthesis";
  end.state = "succeeded";
  end.attempt = 1;
  end.message = "All three are done.";
  end.result.status = ws_state::succeeded;
  end.result.outputs["reply"] = "## Done\n\nAll three are done.";
  t.add(end);
  auto r = t.partial_report(3.0, "the coordinator was lost");
  auto& s = ws(r, "synthesis");
  CHECK(s.persona == "docs");
  CHECK(s.status == ws_state::succeeded);
  CHECK(r.synthesis == "## Done\n\nAll three are done.");
  CHECK(r.markdown.find("## Synthesis\n\n## Done\n\nAll three are done.\n")
        != std::string::npos);
  // Its time ends the critical path; the headline counts the run's own work.
  CHECK(r.critical_path.back() == "synthesis");
  CHECK(r.markdown.find("3 of 3 workstreams succeeded") != std::string::npos);
}

TEST_CASE("a partial report counts an until loop's attempts, not its "
          "iterations, and shows a sub-plan's parent running",
          "[actors]") {
  auto p = tracked_plan();
  run_tracker t{p};
  feeder ev{t};
  for (int n = 1; n <= 3; ++n) {
    ev(event_kind::ws_dispatched, "a", "dispatched", n, 1, "n1");
    ev(event_kind::ws_iterating, "a", "iterating", n + 0.5, n, "n1",
       "check failed");
  }
  ev(event_kind::ws_dispatched, "b", "dispatched", 5, 1, "n1");
  ev(event_kind::ws_expanded, "b", "expanded", 6, 1, "n1",
     "2 workstreams in sub-plan inner");
  auto r = t.partial_report(7, "lost");
  CHECK(ws(r, "a").attempts == 1);
  CHECK(ws(r, "a").status == ws_state::ready);
  CHECK(ws(r, "b").status == ws_state::running);
}
