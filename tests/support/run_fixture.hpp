#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe::test {

/// What one run produced: every event in order, and the report.
struct run_record {
  std::vector<event> events;
  run_report report;
  bool finished = false;

  /// Position of the first event about `subject` reaching `state`; -1 if
  /// there is none.
  long index_of(const std::string& subject, const std::string& state) const {
    for (size_t i = 0; i < events.size(); ++i)
      if (events[i].subject == subject && events[i].state == state)
        return static_cast<long>(i);
    return -1;
  }

  const workstream_result* ws(const std::string& id) const {
    for (auto& w : report.workstreams)
      if (w.id == id)
        return &w;
    return nullptr;
  }

  const gate_result* gate(const std::string& id) const {
    for (auto& g : report.gates)
      if (g.id == id)
        return &g;
    return nullptr;
  }

  /// The most workstreams dispatched and not yet ended at any point.
  /// The most workstreams in flight at once, among those `which` picks by
  /// id (all of them by default).
  template <class Pred>
  int max_in_flight(Pred which) const {
    int now = 0;
    int most = 0;
    for (auto& ev : events) {
      if (ev.kind < event_kind::ws_ready || ev.kind > event_kind::ws_ended
          || !which(ev.subject))
        continue;
      if (ev.state == "dispatched")
        most = std::max(most, ++now);
      else if (ev.state == "retrying" || ev.state == "succeeded"
               || ev.state == "failed" || ev.state == "timed_out"
               || (ev.state == "cancelled" && ev.attempt > 0))
        --now;
    }
    return most;
  }

  int max_in_flight() const {
    return max_in_flight([](const std::string&) { return true; });
  }
};

/// Events of `kind` in `rec`.
inline int count(const run_record& rec, event_kind kind) {
  int n = 0;
  for (auto& ev : rec.events)
    n += ev.kind == kind ? 1 : 0;
  return n;
}

/// Receives event batches into `rec` until `done()` holds; false if it did
/// not within 30 seconds.
template <class Predicate>
bool collect_until(caf::scoped_actor& self, run_record& rec,
                   Predicate done) {
  bool gave_up = false;
  self->receive_while([&] { return !done() && !gave_up; })(
    [&](std::vector<event>& batch) {
      rec.events.insert(rec.events.end(), batch.begin(), batch.end());
    },
    caf::after(std::chrono::seconds(30)) >> [&] { gave_up = true; });
  return done();
}

/// Receives event batches into `rec` until the report arrives (at most
/// `limit`).
inline void collect_to_end(caf::scoped_actor& self, run_record& rec,
                           std::chrono::seconds limit
                           = std::chrono::seconds(120)) {
  bool done = false;
  self->receive_while([&] { return !done; })(
    [&](std::vector<event>& batch) {
      for (auto& ev : batch)
        rec.events.push_back(std::move(ev));
    },
    [&](run_report& r) {
      rec.report = std::move(r);
      rec.finished = true;
      done = true;
    },
    caf::after(limit) >> [&] { done = true; });
}

/// An actor system with Troupe's types, an orchestrator and one local pool,
/// on CAF's real scheduler: these tests run real commands.
struct run_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  orchestrator_actor orch;
  pool_actor pool;
  std::shared_ptr<executor_registry> executors;

  explicit run_fixture(int32_t slots = 64, orchestrator_config ocfg = {}) {
    add_message_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    executors = executor_registry::with_builtins();
    orch = spawn_orchestrator(*sys, std::move(ocfg));
    pool_config pcfg;
    pcfg.info.name = "local";
    pcfg.info.slots = slots;
    pcfg.executors = executors;
    pool = spawn_agent_pool(*sys, pcfg);
    caf::scoped_actor self{*sys};
    self
      ->request(orch, std::chrono::seconds(10), join_atom_v,
                join_request{{}, pcfg.info}, pool)
      .receive([](const std::string&) {}, [](caf::error&) {});
  }

  ~run_fixture() {
    stop_orchestrator(*sys, orch);
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  }

  /// Starts `p` and returns its id; events and the report go to `self`.
  std::string start(caf::scoped_actor& self, const plan& p,
                    run_options opts = {}) {
    if (opts.cancel_key.empty())
      opts.cancel_key = "cancel-key";
    std::string id;
    auto observer = caf::actor_cast<observer_actor>(self);
    self->request(orch, std::chrono::seconds(10), run_atom_v, p, opts,
                  observer)
      .receive([&](std::string& run_id) { id = std::move(run_id); },
               [&](caf::error& err) {
                 FAIL("run refused: " << sys->render(err));
               });
    return id;
  }

  /// Collects events until the report arrives (at most `limit`).
  run_record collect(caf::scoped_actor& self,
                     std::chrono::seconds limit = std::chrono::seconds(120)) {
    run_record rec;
    collect_to_end(self, rec, limit);
    return rec;
  }

  /// Cancels a run `start` started, with the key it gave the run.
  void cancel(caf::scoped_actor& self, const std::string& id) {
    self->send(orch, cancel_atom_v, id, std::string{"cancel-key"});
  }

  run_record run(const plan& p, run_options opts = {}) {
    caf::scoped_actor self{*sys};
    start(self, p, std::move(opts));
    return collect(self);
  }
};

/// A plan of `ws`, `parallel` agents at once.
inline plan make_plan(std::vector<workstream> ws, int32_t parallel = 4) {
  plan p;
  p.name = "test";
  p.settings.max_parallel_agents = parallel;
  p.settings.max_phase_width = 2000;
  p.workstreams = std::move(ws);
  return p;
}

/// A workstream with a command executor.
inline workstream command_ws(std::string id, std::string run,
                             std::vector<std::string> deps = {}) {
  workstream w;
  w.id = id;
  w.title = id;
  w.persona = "backend";
  w.agent = agent_kind::explore;
  w.executor.kind = "command";
  w.executor.run = std::move(run);
  w.depends_on = std::move(deps);
  return w;
}

/// A workstream that sleeps.
inline workstream sleep_ws(std::string id, double seconds,
                           std::vector<std::string> deps = {}) {
  workstream w;
  w.id = id;
  w.title = id;
  w.persona = "backend";
  w.agent = agent_kind::explore;
  w.executor.kind = "sleep";
  w.executor.seconds = seconds;
  w.depends_on = std::move(deps);
  return w;
}

} // namespace troupe::test
