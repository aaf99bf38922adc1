// Runs: their ids and events, failure policies, cancelling, and their
// bookkeeping; dispatch is in orchestrator_dispatch.cpp, a run's end (its
// synthesis agent and its report) in orchestrator_finish.cpp.

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
  auto parent = w.parent;
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
  if (parent != npos)
    child_ended(self, run, parent);
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
  s.total
    = static_cast<int64_t>(run.p->workstreams.size() + run.children.size());
  s.ended = run.plan_ended;
  s.rerun = run.rerun;
  if (summary_only)
    return s;
  auto& pools = self->state.pools;
  s.workstreams.reserve(run.ws.size());
  for (auto i : report_order(run)) {
    auto& w = run.ws[i];
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
  // Making the plan was paid for out of the same budget.
  for (auto& u : run.opts.planning_usage)
    run.spent_usd += u.cost_usd;
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
    run.gates[gi].def = run.p->gates[gi];
    wire_gate(run, gi);
  }
}

void wire_gate(run_state& run, size_t gi) {
  auto n = run.ws.size();
  {
    auto& g = run.gates[gi];
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
