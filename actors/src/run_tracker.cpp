#include "troupe/actors/run_tracker.hpp"

#include <algorithm>

#include "troupe/actors/gate.hpp"

namespace troupe {

namespace {

// The persona of a workstream outside the plan: a gate's fixer has its
// gate's remediation persona, the synthesis agent the synthesis's.
std::string extra_persona(const plan& p, const std::string& id) {
  if (is_synthesis(p, id))
    return p.synthesis.persona;
  for (auto& g : p.gates)
    if (id.rfind(g.id + ".fix", 0) == 0)
      return g.remediate.persona;
  return {};
}

// True for a gate's command check, which reports in its gate.
bool is_gate_check(const plan& p, const std::string& id) {
  for (auto& g : p.gates)
    if (id.rfind(g.id + ".check", 0) == 0)
      return true;
  return false;
}

} // namespace

run_tracker::run_tracker(const plan& p) : p_(&p) {
  // Known before any event, so that a new name is one outside the plan.
  seen_.reserve(p.workstreams.size());
  for (auto& w : p.workstreams)
    seen_.try_emplace(w.id);
}

void run_tracker::add(const run_snapshot& s) {
  run_id_ = s.run_id;
  seq_ = s.seq;
  rerun_ = s.rerun;
  for (auto& r : s.workstreams) {
    auto [i, added] = seen_.try_emplace(r.id);
    if (added)
      extra_.push_back(r.id);
    auto& w = i->second;
    w.status = r.status;
    w.attempts = r.attempts;
    w.node = r.node;
    w.summary = r.summary;
    if (r.status == ws_state::dispatched || r.status == ws_state::running
        || is_terminal(r.status))
      w.dispatched = r.started_s;
    if (is_terminal(r.status))
      w.ended = r.started_s + r.wall_s;
  }
  for (auto& g : s.gates)
    gates_[g.id] = g;
}

run_snapshot run_tracker::snapshot(const std::string& status,
                                   double t_s) const {
  auto r = partial_report(t_s, "");
  run_snapshot s;
  s.run_id = run_id_;
  s.plan = r.plan;
  s.goal = r.goal;
  s.status = status;
  s.t_s = t_s;
  s.seq = seq_;
  s.total = static_cast<int64_t>(p_->workstreams.size());
  for (auto& w : p_->workstreams)
    if (auto i = seen_.find(w.id); i != seen_.end() && is_terminal(i->second.status))
      s.ended += 1;
  s.workstreams = std::move(r.workstreams);
  s.gates = std::move(r.gates);
  s.rerun = rerun_;
  return s;
}

void run_tracker::add(const event& ev) {
  if (run_id_.empty())
    run_id_ = ev.run_id;
  seq_ = std::max(seq_, ev.seq);
  switch (ev.kind) {
    case event_kind::gate_evaluating:
    case event_kind::gate_remediating:
    case event_kind::gate_passed:
    case event_kind::gate_failed: {
      auto& g = gates_[ev.subject];
      g.id = ev.subject;
      from_string(ev.state, g.status);
      g.attempts = std::max(g.attempts, ev.attempt);
      if (carries_checks(ev.kind))
        g.checks = ev.checks;
      return;
    }
    case event_kind::ws_ready:
    case event_kind::ws_dispatched:
    case event_kind::ws_running:
    case event_kind::ws_retrying:
    case event_kind::ws_iterating:
    case event_kind::ws_expanded:
    case event_kind::ws_requeued:
    case event_kind::ws_ended:
      break;
    default:
      return;
  }
  auto [i, added] = seen_.try_emplace(ev.subject);
  if (added)
    extra_.push_back(ev.subject);
  auto& w = i->second;
  // "retrying" and "iterating" are no states of their own: the workstream
  // waits for its next attempt. An "expanded" one runs its sub-plan.
  if (!from_string(ev.state, w.status))
    w.status = ev.kind == event_kind::ws_expanded ? ws_state::running
                                                  : ws_state::ready;
  // An iteration's event counts iterations, not attempts.
  if (ev.kind != event_kind::ws_iterating)
    w.attempts = std::max(w.attempts, ev.attempt);
  if (w.status == ws_state::dispatched)
    w.dispatched = ev.t_s;
  // A requeued workstream's event names the node it lost: not where it is.
  bool placed = w.status == ws_state::dispatched
                || w.status == ws_state::running || is_terminal(w.status);
  if (placed && !ev.node.empty())
    w.node = ev.node;
  if (is_terminal(w.status)) {
    w.ended = ev.t_s;
    w.summary = ev.message;
    if (ev.kind == event_kind::ws_ended && is_synthesis(*p_, ev.subject)) {
      synthesis_outputs_ = ev.result.outputs;
      synthesis_output_ = ev.result.output;
    }
  } else if (!ev.message.empty()) {
    w.summary = ev.message;
  }
}

run_report run_tracker::partial_report(double wall_s,
                                       const std::string& why) const {
  auto& p = *p_;
  run_report r;
  r.run_id = run_id_;
  r.plan = p.name;
  r.goal = p.goal;
  r.status = run_status::failed;
  r.partial = true;
  r.wall_s = wall_s;
  auto add_ws = [&](const std::string& id, const std::string& persona,
                    const std::string& title) {
    workstream_result w;
    w.id = id;
    w.persona = persona;
    w.title = title;
    if (auto i = seen_.find(id); i != seen_.end()) {
      auto& s = i->second;
      w.status = s.status;
      w.attempts = s.attempts;
      w.node = s.node;
      w.summary = s.summary;
      if (is_synthesis(p, id)) {
        w.outputs = synthesis_outputs_;
        w.output = synthesis_output_;
      }
      // One still going, as far as anyone here knows, counts its time so
      // far; one waiting for another attempt has none running.
      bool going
          = s.status == ws_state::dispatched || s.status == ws_state::running;
      if (s.dispatched >= 0 && (going || is_terminal(s.status))) {
        w.started_s = s.dispatched;
        auto end = going ? wall_s : s.ended;
        w.wall_s = std::max(0.0, end - s.dispatched);
      }
    }
    r.workstreams.push_back(std::move(w));
  };
  for (auto& w : p.workstreams)
    add_ws(w.id, w.persona, w.title);
  for (auto& id : extra_)
    if (!is_gate_check(p, id))
      add_ws(id, extra_persona(p, id), id);
  for (auto& g : p.gates) {
    auto i = gates_.find(g.id);
    r.gates.push_back(i != gates_.end() ? i->second
                                        : gate_result{g.id, {}, 0, {}});
  }
  fold_report(p, r);
  r.markdown = "**Partial report: " + why
               + ".** It holds only what was seen until then: work shown as "
                 "dispatched or running may have finished since, or may still "
                 "be running.\n\n"
               + render_markdown(p, r);
  return r;
}

} // namespace troupe
