// A run's budget (`settings.max_cost_usd`): each agent starts with a share
// of what is left, held while it runs; work that even its lowest estimate
// would take past the budget is not started.

#include <cstdio>
#include <string>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

namespace {

std::string dollars(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "$%.4f", usd);
  return buf;
}

bool budgeted(const run_state& run, const ws_run& w) {
  return run.p->settings.max_cost_usd > 0
         && is_agent_executor(w.def->executor.kind);
}

} // namespace

bool reserve_budget(run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  w.reserved_usd = 0;
  if (!budgeted(run, w))
    return true;
  auto left = run.p->settings.max_cost_usd - run.spent_usd - run.reserved_usd;
  auto low = estimated_cost(run.p->settings, *w.def).low;
  if (left <= 0 || left < low)
    return false;
  // An equal share of what is left among the agents not started yet, this
  // one included. A scan: agents are few, and each one's call is slow.
  int64_t waiting = 0;
  for (auto& x : run.ws)
    if (!is_terminal(x.state) && x.state != ws_state::dispatched
        && x.state != ws_state::running && is_agent_executor(x.def->executor.kind))
      ++waiting;
  // The synthesis agent comes last, and must find its share left.
  if (run.synthesis == npos
      && is_agent_executor(run.p->synthesis.executor.kind))
    ++waiting;
  auto share = left / static_cast<double>(std::max<int64_t>(waiting, 1));
  w.reserved_usd = std::min(left, std::max(share, low));
  run.reserved_usd += w.reserved_usd;
  return true;
}

void settle_budget(run_state& run, size_t idx, const workstream_result* r) {
  auto& w = run.ws[idx];
  run.reserved_usd -= w.reserved_usd;
  if (run.reserved_usd < 1e-12)
    run.reserved_usd = 0;
  w.reserved_usd = 0;
  if (r != nullptr)
    for (auto& u : r->usage)
      run.spent_usd += u.cost_usd;
}

void add_failed_usage(const ws_run& w, workstream_result& r) {
  for (auto* earlier : {&w.failures, &w.iteration_results})
    for (auto& f : *earlier) {
      for (auto& u : f.usage)
        add_usage(r.usage, u);
      for (auto& u : f.sub_agent_usage)
        add_usage(r.sub_agent_usage, u);
    }
}

void stop_for_budget(self_ptr self, run_state& run, size_t idx) {
  if (run.cancelling)
    return;
  auto& s = run.p->settings;
  auto why = "the budget of " + dollars(s.max_cost_usd) + " would be passed: "
             + dollars(run.spent_usd) + " spent, "
             + dollars(run.reserved_usd) + " held by agents in flight, and "
             + run.ws[idx].def->id + " may cost "
             + dollars(estimated_cost(s, *run.ws[idx].def).low)
             + " or more";
  log()->warn("run {}: {}; nothing more starts", run.id, why);
  emit(self, run, event_kind::run_cancelling, run.id, "cancelling", 0, {},
       "budget: " + why);
  run.budget_stopped = true;
  run.cancelling = true;
  for (size_t i = 0; i < run.ws.size(); ++i)
    if (run.ws[i].state == ws_state::pending
        || run.ws[i].state == ws_state::ready)
      end_unrun(self, run, i, ws_state::cancelled, "not run: " + why);
}

} // namespace troupe::orch
