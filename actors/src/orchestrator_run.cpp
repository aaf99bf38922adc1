// Runs: their ids and events, failure policies, cancelling and ending,
// and their bookkeeping; dispatch is in orchestrator_dispatch.cpp.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

std::string make_run_id() {
  auto now = std::chrono::system_clock::to_time_t(
    std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "run-%04d%02d%02d-%02d%02d%02d-",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  // 64 random bits: a run's id is no secret, but nobody should find one by
  // guessing either.
  return buf + make_secret().substr(0, 16);
}

event& emit(self_ptr self, run_state& run, event_kind kind,
            std::string subject, std::string state, int32_t attempt,
            std::string node, std::string message) {
  auto& ev = run.outbox.emplace_back();
  ev.run_id = run.id;
  ev.seq = ++run.seq;
  ev.t_s = run.now_s();
  ev.at = unix_now();
  ev.kind = kind;
  ev.subject = std::move(subject);
  ev.state = std::move(state);
  ev.attempt = attempt;
  ev.node = std::move(node);
  ev.message = std::move(message);
  run.must_journal = run.must_journal || carries_result(kind)
                     || carries_checks(kind)
                     || kind == event_kind::run_cancelling
                     || kind == event_kind::run_failing;
  return ev;
}

// Typed sends would make a message per receiver.
void send_shared(self_ptr self, const observer_actor& to,
                 const caf::message& msg) {
  if (to)
    to->enqueue(caf::make_mailbox_element(self->ctrl(), caf::make_message_id(),
                                          {}, msg),
                self->context());
}

uint64_t journal_events(self_ptr self, run_state& run) {
  auto& w = self->state.writer;
  run.must_journal = false;
  if (!w || run.journal_failed || run.replaying || run.outbox.empty())
    return 0;
  auto batch = caf::make_message(std::move(run.outbox));
  run.outbox = {};
  run.last_ticket = w->append(run.id, batch, run.plan_ended);
  run.sealed.push_back(std::move(batch));
  return run.last_ticket;
}

// Sends the events the handlers produced, in order, each handler's as one
// message, the same one the journal reads.
void flush(self_ptr self, run_state& run) {
  if (run.replaying)
    return;
  journal_events(self, run);
  if (!run.outbox.empty()) { // not journaled
    run.sealed.push_back(caf::make_message(std::move(run.outbox)));
    run.outbox = {};
  }
  for (auto& batch : run.sealed)
    for (auto& o : run.observers)
      send_shared(self, o, batch);
  run.sealed.clear();
}


void end_unrun(self_ptr self, run_state& run, size_t idx, ws_state status,
               std::string why) {
  auto& w = run.ws[idx];
  workstream_result r;
  r.id = w.def->id;
  r.title = w.def->title;
  r.persona = w.def->persona;
  r.attempts = w.attempts;
  r.status = status;
  r.summary = std::move(why);
  mark_terminal(self, run, idx, std::move(r));
}

void block(self_ptr self, run_state& run, size_t idx, const std::string& why) {
  if (!is_terminal(run.ws[idx].state))
    end_unrun(self, run, idx, ws_state::blocked, why);
}

// Blocks everything downstream of `idx`.
static void block_downstream(self_ptr self, run_state& run, size_t idx) {
  auto why = "blocked: " + run.ws[idx].def->id + " "
             + to_string(run.ws[idx].state);
  std::vector<size_t> todo = run.ws[idx].dependents;
  std::vector<bool> seen(run.ws.size(), false);
  while (!todo.empty()) {
    auto j = todo.back();
    todo.pop_back();
    if (seen[j])
      continue;
    seen[j] = true;
    if (!is_terminal(run.ws[j].state))
      block(self, run, j, why);
    for (auto k : run.ws[j].dependents)
      todo.push_back(k);
  }
}

void start_cancel(self_ptr self, run_state& run, const std::string& why) {
  if (run.cancelling)
    return;
  run.cancelling = true;
  // Dispatches the journal has not confirmed yet never go out.
  unsend_parked(self, run);
  auto& st = self->state;
  for (size_t i = 0; i < run.ws.size(); ++i) {
    auto& w = run.ws[i];
    switch (w.state) {
      case ws_state::pending:
      case ws_state::ready:
        end_unrun(self, run, i, ws_state::cancelled, why);
        break;
      case ws_state::dispatched:
      case ws_state::running:
        if (w.pool != npos)
          self->send(st.pools[w.pool].handle, cancel_atom_v, run.id,
                     w.def->id);
        break;
      default:
        break;
    }
  }
}

void mark_terminal(self_ptr self, run_state& run, size_t idx,
                   workstream_result r) {
  auto& w = run.ws[idx];
  if (is_terminal(w.state))
    return;
  add_failed_usage(w, r);
  w.state = r.status;
  w.result = std::move(r);
  run.terminal += 1;
  if (w.fixes_gate == npos && w.checks_gate == npos && !w.synthesizes)
    run.plan_ended += 1;
  emit(self, run, event_kind::ws_ended, w.def->id, to_string(w.state),
       w.attempts, w.result.node, w.result.summary)
    .result = w.result;
  // The synthesis is the run's last work: nothing waits for it, and how it
  // ends is no failure of the plan's.
  if (w.synthesizes)
    return;
  auto state = w.state;
  auto fixes_gate = w.fixes_gate;
  auto gates_after = w.gates_after;
  if (w.checks_gate != npos) {
    // A gate's command check: its verdict is the gate's, not the run's.
    check_ended(self, run, idx);
    return;
  }
  if (fixes_gate != npos) {
    // A remediation ended, however it went: check the gate again.
    if (!run.cancelling)
      evaluate_gate(self, run, fixes_gate);
    return;
  }
  if (state == ws_state::succeeded) {
    for (auto j : run.ws[idx].dependents) {
      run.ws[j].remaining_deps -= 1;
      make_ready(self, run, j);
    }
  } else if (state == ws_state::failed || state == ws_state::timed_out) {
    switch (run.p->settings.on_failure) {
      case failure_policy::block_dependents:
        block_downstream(self, run, idx);
        break;
      case failure_policy::continue_run:
        for (auto j : run.ws[idx].dependents) {
          run.ws[j].remaining_deps -= 1;
          make_ready(self, run, j);
        }
        break;
      case failure_policy::fail_fast:
        start_cancel(self, run, "cancelled: " + run.ws[idx].def->id + " "
                                  + to_string(state) + " (fail_fast)");
        break;
    }
  }
  for (auto gi : gates_after) {
    auto& g = run.gates[gi];
    g.remaining_after -= 1;
    if (g.remaining_after == 0 && !run.cancelling)
      evaluate_gate(self, run, gi);
  }
}

run_status work_status(const run_state& run) {
  if (!run.internal_error.empty())
    return run_status::failed;
  if (run.user_cancelled)
    return run_status::cancelled;
  bool blocked = false;
  for (auto& w : run.ws) {
    if (w.fixes_gate != npos || w.checks_gate != npos || w.synthesizes)
      continue;
    if (w.state == ws_state::failed || w.state == ws_state::timed_out)
      return run_status::failed;
    if (w.state == ws_state::cancelled)
      return run_status::failed; // cancelled by fail_fast
    blocked = blocked || w.state == ws_state::blocked;
  }
  for (auto& g : run.gates)
    blocked = blocked || g.state == gate_state::failed;
  return blocked ? run_status::blocked : run_status::succeeded;
}

// Journals the report of a run that was reporting (unless its journal
// failed) and sends it to its observers, all sharing one message; answers
// a pending shutdown once every run has reported.
void report_delivered(self_ptr self, run_report report, bool journaled) {
  auto& st = self->state;
  auto i = st.reporting.find(report.run_id);
  std::vector<observer_actor> observers;
  std::vector<caf::typed_response_promise<run_report>> waiters;
  if (i != st.reporting.end()) {
    observers = std::move(i->second.observers);
    waiters = std::move(i->second.waiters);
    st.reporting.erase(i);
  }
  for (auto& rp : waiters)
    rp.deliver(report);
  auto msg = caf::make_message(std::move(report));
  // The run is over: should the journal fail now, that is logged, and the
  // report goes out anyway.
  if (auto& w = st.writer; w && journaled)
    w->finish_run(msg, unix_now());
  for (auto& o : observers)
    send_shared(self, o, msg);
  if (st.shutting_down && st.runs.empty() && st.reporting.empty()) {
    for (auto& rp : st.shutdown_waiters)
      rp.deliver(true);
    st.shutdown_waiters.clear();
  }
}

bool maybe_synthesize(self_ptr self, run_state& run) {
  if (!run.p->synthesis.by_agent() || run.synthesis != npos || run.cancelling
      || run.terminal < run.ws.size() || run.in_flight > 0
      || run.gates_busy > 0)
    return false;
  run.fixers.push_back(synthesis_workstream(*run.p));
  ws_run s;
  s.def = &run.fixers.back();
  s.synthesizes = true;
  run.synthesis = run.ws.size();
  run.index.emplace(s.def->id, run.synthesis);
  run.ws.push_back(std::move(s));
  make_ready(self, run, run.synthesis);
  pump(self, run);
  return true;
}

void maybe_finish(self_ptr self, const std::string& run_id) {
  auto& st = self->state;
  auto i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  auto& run = i->second;
  if (run.replaying)
    return;
  maybe_synthesize(self, run);
  if (run.finishing || run.terminal < run.ws.size() || run.in_flight > 0
      || run.gates_busy > 0) {
    flush(self, run);
    return;
  }
  run.finishing = true;
  auto status = work_status(run);
  emit(self, run, event_kind::run_finished, run.id, to_string(status));
  flush(self, run);
  log()->info("run {} finished: {}", run.id, to_string(status));
  // Until its report is out, the run answers status queries and takes
  // observers as it was when it ended.
  auto& waiting = st.reporting[run.id];
  waiting.last = snapshot(self, run);
  waiting.last.status = to_string(status);
  waiting.observers = std::move(run.observers);
  run_report report;
  report.run_id = run.id;
  report.plan = run.p->name;
  report.goal = run.p->goal;
  report.status = status;
  report.wall_s = run.now_s();
  report.rerun = run.rerun;
  report.budget_stopped = run.budget_stopped;
  report.workstreams.reserve(run.ws.size());
  for (auto& w : run.ws)
    if (w.checks_gate == npos) // checks report in their gates
      report.workstreams.push_back(std::move(w.result));
  for (auto& g : run.gates) {
    auto r = g.result;
    r.id = g.def.id;
    r.status = g.state;
    // A cancelled run leaves gates that never reached a verdict.
    if (run.cancelling && r.status != gate_state::passed
        && r.status != gate_state::failed)
      r.status = gate_state::cancelled;
    report.gates.push_back(std::move(r));
  }
  waiting.last.gates = report.gates;
  auto journaled = !run.journal_failed;
  // The writer may still hold the plan, to record it: then a copy. (The
  // plan is const to the run, not in itself.)
  auto shared = std::move(run.p);
  auto p = shared.use_count() == 1 ? std::move(const_cast<plan&>(*shared))
                                   : *shared;
  shared.reset();
  st.runs.erase(i);
  // The report moves into the request; should synthesis fail, the observer
  // still learns how the run ended.
  run_report outline;
  outline.run_id = report.run_id;
  outline.plan = report.plan;
  outline.status = report.status;
  outline.wall_s = report.wall_s;
  self->request(st.synthesizer, std::chrono::minutes(5), synthesize_atom_v,
                std::move(p), std::move(report))
    .then(
      [=](run_report& full) {
        report_delivered(self, std::move(full), journaled);
      },
      [=](caf::error& err) mutable {
        auto why = self->system().render(err);
        log()->error("synthesis of run {} failed: {}", outline.run_id, why);
        outline.markdown = "# " + outline.plan + ": "
                           + to_string(outline.status)
                           + "\n\nThe report could not be synthesized: " + why
                           + "\n";
        report_delivered(self, std::move(outline), journaled);
      });
}

std::string failure_reason(const std::exception& e) {
  if (dynamic_cast<const journal_error*>(&e) != nullptr)
    return std::string{"the journal failed: "} + e.what();
  return std::string{"internal error: "} + e.what();
}

void fail_run(self_ptr self, const std::string& run_id,
              const std::string& why) {
  auto& st = self->state;
  log()->error("run {}: {}; the run fails", run_id, why);
  auto i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  auto& run = i->second;
  run.internal_error = why;
  try {
    emit(self, run, event_kind::run_failing, run_id, "failing", 0, {}, why);
    start_cancel(self, run, "cancelled: " + why);
    maybe_finish(self, run_id);
    return;
  } catch (const std::exception& e) {
    log()->error("run {}: cannot end cleanly ({}); dropping it", run_id,
                 e.what());
  }
  i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  run_report outline;
  outline.run_id = run_id;
  outline.plan = i->second.p->name;
  outline.status = run_status::failed;
  outline.markdown = "# " + outline.plan + ": failed\n\nThe run failed: "
                     + valid_utf8(why) + "\n";
  auto msg = caf::make_message(std::move(outline));
  for (auto& o : i->second.observers)
    send_shared(self, o, msg);
  st.runs.erase(i);
}

run_snapshot snapshot(self_ptr self, const run_state& run,
                      bool summary_only) {
  run_snapshot s;
  s.run_id = run.id;
  s.plan = run.p->name;
  s.goal = run.p->goal;
  s.status = run.cancelling ? "cancelling" : "running";
  s.started_at = run.started_at;
  s.t_s = run.now_s();
  s.seq = run.seq;
  s.total = static_cast<int64_t>(run.p->workstreams.size());
  s.ended = run.plan_ended;
  s.rerun = run.rerun;
  if (summary_only)
    return s;
  auto& pools = self->state.pools;
  s.workstreams.reserve(run.ws.size());
  for (auto& w : run.ws) {
    if (is_terminal(w.state)) {
      s.workstreams.push_back(w.result);
      continue;
    }
    workstream_result r;
    r.id = w.def->id;
    r.title = w.def->title;
    r.persona = w.def->persona;
    r.status = w.state;
    r.attempts = w.attempts;
    if (w.pool != npos && w.pool < pools.size())
      r.node = pools[w.pool].info.name;
    if (!w.failures.empty())
      r.summary = w.failures.back().summary;
    s.workstreams.push_back(std::move(r));
  }
  for (auto& g : run.gates) {
    auto r = g.result;
    r.id = g.def.id;
    r.status = g.state;
    s.gates.push_back(std::move(r));
  }
  return s;
}

run_state& open_run(self_ptr self, const std::string& id, plan p,
                    run_options opts, observer_actor observer,
                    int32_t max_parallel, double started_at) {
  auto& run = self->state.runs[id];
  run.id = id;
  // Not const itself: once the run is over, the plan moves on.
  run.p = std::make_shared<plan>(std::move(p));
  run.opts = std::move(opts);
  if (observer)
    run.observers.push_back(std::move(observer));
  run.started_at = started_at;
  // Run time counts from the run's first start, across interruptions.
  run.start = clock_type::now()
              - std::chrono::duration_cast<clock_type::duration>(
                std::chrono::duration<double>(
                  std::max(0.0, unix_now() - started_at)));
  run.max_parallel = max_parallel;
  prepare(run);
  return run;
}

// Builds a run's bookkeeping from a validated plan.
void prepare(run_state& run) {
  auto n = run.p->workstreams.size();
  run.ws.resize(n);
  run.index.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    run.ws[i].def = &run.p->workstreams[i];
    run.index.emplace(run.ws[i].def->id, i);
  }
  for (size_t i = 0; i < n; ++i) {
    for (auto& dep : run.ws[i].def->depends_on) {
      auto d = run.index.find(dep);
      if (d == run.index.end())
        continue;
      run.ws[i].remaining_deps += 1;
      run.ws[d->second].dependents.push_back(i);
    }
  }
  run.gates.resize(run.p->gates.size());
  for (size_t gi = 0; gi < run.p->gates.size(); ++gi) {
    auto& g = run.gates[gi];
    g.def = run.p->gates[gi];
    g.result.id = g.def.id;
    std::unordered_set<size_t> after;
    for (auto& id : g.def.after)
      if (auto a = run.index.find(id); a != run.index.end())
        after.insert(a->second);
    g.remaining_after = after.size();
    for (auto a : after)
      run.ws[a].gates_after.push_back(gi);
    // Everything downstream of the gate's workstreams waits for it.
    std::vector<bool> seen(n, false);
    std::vector<size_t> todo(after.begin(), after.end());
    while (!todo.empty()) {
      auto j = todo.back();
      todo.pop_back();
      for (auto k : run.ws[j].dependents) {
        if (seen[k])
          continue;
        seen[k] = true;
        todo.push_back(k);
        if (after.count(k) == 0) {
          g.guarded.push_back(k);
          run.ws[k].remaining_gates += 1;
        }
      }
    }
  }
}

} // namespace troupe::orch
