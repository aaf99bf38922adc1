// Any number of observers follow a run: they see the same events in the
// same order, one that joins late gets the state so far, and a slow one
// never holds the run back.

#include <atomic>
#include <chrono>
#include <memory>
#include <fstream>
#include <future>

#include <sys/stat.h>

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "support/run_fixture.hpp"
#include "support/temp_dir.hpp"
#include "troupe/runtime/journal.hpp"

using namespace troupe;

namespace {

// A chain of `n` no-op workstreams behind one that waits until `fifo` is
// opened for writing (and closed): each event batch holds little, so a run
// makes many batches.
plan chain(int n, const std::string& fifo) {
  plan p;
  p.name = "chain";
  p.workstreams.push_back(
    test::command_ws("wait", "cat '" + fifo + "' >/dev/null"));
  for (int i = 0; i < n; ++i) {
    workstream w;
    w.id = "s" + std::to_string(i);
    w.title = w.id;
    w.persona = "backend";
    w.executor.kind = "noop";
    w.depends_on = {i > 0 ? "s" + std::to_string(i - 1) : "wait"};
    p.workstreams.push_back(w);
  }
  return p;
}

struct slow_state {
  std::shared_ptr<std::atomic<int>> batches;
};

// An observer that cannot take its first batch of events until `release`
// is set: as slow as an observer gets.
observer_actor::behavior_type
slow_observer(observer_actor::stateful_pointer<slow_state> self,
              std::shared_ptr<std::atomic<int>> batches,
              std::shared_future<void> release, caf::actor done) {
  self->state.batches = std::move(batches);
  return {
    [](const run_snapshot&) {},
    [=](const std::vector<event>&) {
      release.wait();
      *self->state.batches += 1;
    },
    [=](const run_report&) {
      caf::anon_send(done, caf::ok_atom::value);
      self->quit();
    },
  };
}

// A FIFO the first workstream of `chain` waits on.
struct gate_fifo {
  test::temp_dir dir;
  std::string path = dir.str() + "/go";

  gate_fifo() {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  }

  // Lets the chain go on.
  void open() {
    std::ofstream{path};
  }
};

} // namespace

TEST_CASE("observers that subscribe see the same events in the same order, "
          "after the state so far",
          "[actors]") {
  test::run_fixture fx;
  caf::scoped_actor first{*fx.sys};
  caf::scoped_actor second{*fx.sys};
  gate_fifo go;
  auto id = fx.start(first, chain(200, go.path));
  std::string full;
  second
    ->request(fx.orch, std::chrono::seconds(10), subscribe_atom_v,
              id.substr(0, 20), std::string{},
              caf::actor_cast<observer_actor>(second))
    .receive([&](std::string& x) { full = x; },
             [&](caf::error& err) { FAIL(fx.sys->render(err)); });
  CHECK(full == id);
  run_snapshot snap;
  second->receive([&](run_snapshot& s) { snap = std::move(s); },
                  caf::after(std::chrono::seconds(10)) >> [] {});
  CHECK(snap.run_id == id);
  CHECK(snap.total == 201);
  CHECK(snap.workstreams.size() == 201);
  go.open();
  auto a = fx.collect(first);
  auto b = fx.collect(second);
  REQUIRE(a.finished);
  REQUIRE(b.finished);
  // The second sees everything after its snapshot, without a gap, exactly
  // as the first does.
  REQUIRE_FALSE(b.events.empty());
  CHECK(b.events.front().seq == snap.seq + 1);
  std::vector<std::string> tail_a;
  for (auto& ev : a.events)
    if (ev.seq > snap.seq)
      tail_a.push_back(std::to_string(ev.seq) + to_string(ev.kind)
                       + ev.subject);
  std::vector<std::string> seen_b;
  for (auto& ev : b.events)
    seen_b.push_back(std::to_string(ev.seq) + to_string(ev.kind)
                     + ev.subject);
  CHECK(seen_b == tail_a);
  CHECK(a.report.status == run_status::succeeded);
  CHECK(b.report.status == run_status::succeeded);
  // A finished run takes no subscribers.
  second
    ->request(fx.orch, std::chrono::seconds(10), subscribe_atom_v, id,
              std::string{}, caf::actor_cast<observer_actor>(second))
    .receive([&](std::string&) { FAIL("subscribed to a finished run"); },
             [&](caf::error& err) {
               CHECK_THAT(fx.sys->render(err),
                          Catch::Contains("no run " + id));
             });
}

TEST_CASE("a slow observer does not hold the run back, and one that "
          "unsubscribes hears no more",
          "[actors]") {
  test::run_fixture fx;
  caf::scoped_actor self{*fx.sys};
  caf::scoped_actor quitter{*fx.sys};
  gate_fifo go;
  auto id = fx.start(self, chain(100, go.path));
  auto batches = std::make_shared<std::atomic<int>>(0);
  std::promise<void> release;
  auto slow = fx.sys->spawn(slow_observer, batches,
                            release.get_future().share(), caf::actor{self});
  for (auto obs : {caf::actor_cast<observer_actor>(slow),
                   caf::actor_cast<observer_actor>(quitter)})
    self
      ->request(fx.orch, std::chrono::seconds(10), subscribe_atom_v, id,
                std::string{}, obs)
      .receive([](std::string&) {},
               [&](caf::error& err) { FAIL(fx.sys->render(err)); });
  bool off = false;
  self
    ->request(fx.orch, std::chrono::seconds(10), unsubscribe_atom_v, id,
              std::string{}, caf::actor_cast<observer_actor>(quitter))
    .receive([&](bool x) { off = x; },
             [&](caf::error& err) { FAIL(fx.sys->render(err)); });
  CHECK(off);
  go.open();
  auto rec = fx.collect(self);
  REQUIRE(rec.finished);
  // The run ended while the slow observer was still stuck in its first
  // batch; let go, it takes in the rest.
  int at_end = *batches;
  CHECK(at_end == 0);
  release.set_value();
  bool slow_done = false;
  self->receive([&](caf::ok_atom) { slow_done = true; },
                caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(slow_done);
  CHECK(*batches > at_end);
  // The one that left got its snapshot, perhaps a batch sent before it
  // left, and never the report.
  bool report = false;
  bool snapshot = false;
  for (bool more = true; more;)
    quitter->receive([&](run_snapshot&) { snapshot = true; },
                     [](std::vector<event>&) {},
                     [&](run_report&) { report = true; },
                     caf::after(std::chrono::seconds(0)) >> [&] {
                       more = false;
                     });
  CHECK(snapshot);
  CHECK_FALSE(report);
}

TEST_CASE("a run that has ended answers for itself while its report is "
          "being written",
          "[actors][journal]") {
  test::temp_dir dir;
  orchestrator_config ocfg;
  ocfg.journal = journal::open(dir.str() + "/troupe.db");
  test::run_fixture fx{64, ocfg};
  caf::scoped_actor self{*fx.sys};
  caf::scoped_actor late{*fx.sys};
  // Big enough that its report takes a while to write: the queries below
  // come while it is being written or after, and must be answered alike.
  std::vector<workstream> ws;
  for (int i = 0; i < 5000; ++i) {
    workstream w;
    w.id = "n" + std::to_string(i);
    w.title = w.id;
    w.persona = "backend";
    w.executor.kind = "noop";
    ws.push_back(std::move(w));
  }
  auto id = fx.start(self, test::make_plan(std::move(ws), 64));
  test::run_record rec;
  REQUIRE(test::collect_until(self, rec, [&] {
    return test::count(rec, event_kind::run_finished) > 0;
  }));
  // Its state: as it ended, or from the journal once the report is in.
  self
    ->request(fx.orch, std::chrono::seconds(10), status_atom_v, id,
              std::string{})
    .receive(
      [&](run_snapshot& s) {
        CHECK(s.status == "succeeded");
        CHECK(s.ended == 5000);
        CHECK(s.workstreams.size() == 5000);
      },
      [&](caf::error& err) {
        CHECK_THAT(fx.sys->render(err),
                   Catch::Contains("run " + id + " finished (succeeded)"));
      });
  // A late observer gets the report, or is told the run finished.
  bool subscribed = false;
  late
    ->request(fx.orch, std::chrono::seconds(10), subscribe_atom_v, id,
              std::string{}, caf::actor_cast<observer_actor>(late))
    .receive([&](std::string&) { subscribed = true; },
             [&](caf::error& err) {
               CHECK_THAT(fx.sys->render(err),
                          Catch::Contains("finished (succeeded)"));
             });
  // Asked for, the report comes, whenever it is asked for.
  run_report asked;
  self
    ->request(fx.orch, std::chrono::seconds(60), report_atom_v, id,
              std::string{})
    .receive([&](run_report& r) { asked = std::move(r); },
             [&](caf::error& err) { FAIL(fx.sys->render(err)); });
  CHECK(asked.run_id == id);
  CHECK(asked.workstreams.size() == 5000);
  test::collect_to_end(self, rec);
  REQUIRE(rec.finished);
  CHECK(asked.markdown == rec.report.markdown);
  if (subscribed) {
    test::run_record seen;
    late->receive([](run_snapshot&) {},
                  caf::after(std::chrono::seconds(10)) >> [] {});
    test::collect_to_end(late, seen);
    REQUIRE(seen.finished);
    CHECK(seen.report.markdown == rec.report.markdown);
  }
}
