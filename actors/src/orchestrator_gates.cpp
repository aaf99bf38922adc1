// Gates: evaluation rounds, remediation and what a verdict releases.

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
#include <nlohmann/json.hpp>

#include "orchestrator_state.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

static void on_gate_verdict(self_ptr self, run_state& run, size_t gi,
                     gate_result verdict) {
  auto& g = run.gates[gi];
  auto attempts = g.result.attempts;
  g.result = std::move(verdict);
  g.result.id = g.def.id;
  g.result.attempts = attempts;
  if (run.cancelling) {
    // A verdict reached before the cancel stands; anything else is moot.
    if (g.result.status != gate_state::passed)
      g.result.status = gate_state::cancelled;
    g.state = g.result.status;
    return;
  }
  if (g.result.status == gate_state::passed) {
    g.state = gate_state::passed;
    emit(self, run, "gate", g.def.id, "passed", attempts);
    for (auto j : g.guarded) {
      run.ws[j].remaining_gates -= 1;
      make_ready(self, run, j);
    }
    return;
  }
  // A failed completion check is beyond any fixer: the work it guards did
  // not happen. Everything else may be remediated.
  bool incomplete = false;
  std::string failed;
  for (auto& c : g.result.checks) {
    if (c.passed)
      continue;
    incomplete = incomplete || c.name == "completion";
    failed += (failed.empty() ? "" : ", ") + c.name;
  }
  if (!incomplete && g.fixes < g.def.remediate.max_attempts) {
    g.fixes += 1;
    g.state = gate_state::remediating;
    g.result.status = gate_state::remediating;
    workstream def;
    def.id = g.def.id + ".fix" + std::to_string(g.fixes);
    def.title = "Remediate gate " + g.def.id + " (" + failed + ")";
    def.persona = g.def.remediate.persona;
    def.agent = agent_kind::general;
    def.model = model_tier::balanced;
    def.prompt = g.def.remediate.prompt.empty()
                   ? "Make gate " + g.def.id + " pass; failed: " + failed
                   : g.def.remediate.prompt;
    def.executor = g.def.remediate.executor;
    if (def.executor.kind.empty())
      def.executor.kind = "noop";
    run.fixers.push_back(std::move(def));
    ws_run fix;
    fix.def = &run.fixers.back();
    fix.fixes_gate = gi;
    auto idx = run.ws.size();
    run.index.emplace(fix.def->id, idx);
    run.ws.push_back(std::move(fix));
    emit(self, run, "gate", g.def.id, "remediating", attempts, {}, failed);
    make_ready(self, run, idx);
    return;
  }
  g.state = gate_state::failed;
  g.result.status = gate_state::failed;
  emit(self, run, "gate", g.def.id, "failed", attempts, {}, failed);
  for (auto j : g.guarded)
    block(self, run, j, "blocked: gate " + g.def.id + " failed (" + failed
                          + ")");
}

void evaluate_gate(self_ptr self, run_state& run, size_t gi) {
  auto& g = run.gates[gi];
  g.state = gate_state::evaluating;
  g.result.attempts += 1;
  run.gates_busy += 1;
  emit(self, run, "gate", g.def.id, "evaluating", g.result.attempts);
  std::vector<workstream_result> results;
  for (auto& id : g.def.after)
    if (auto i = run.index.find(id); i != run.index.end())
      results.push_back(run.ws[i->second].result);
  double budget = 0;
  for (auto& c : g.def.checks)
    budget += c.timeout_s > 0 ? c.timeout_s : default_check_timeout_s;
  auto run_id = run.id;
  auto workdir = run.opts.workdir;
  self->request(self->state.gates, to_ms(budget) + gate_grace,
                evaluate_atom_v, run_id, g.def, std::move(results), workdir)
    .then(
      [=](gate_result& verdict) {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        i->second.gates_busy -= 1;
        guarded(self, run_id, [&] {
          on_gate_verdict(self, i->second, gi, std::move(verdict));
          pump_all(self);
          maybe_finish(self, run_id);
        });
      },
      [=](caf::error& err) {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        i->second.gates_busy -= 1;
        guarded(self, run_id, [&] {
          gate_result verdict;
          verdict.status = gate_state::failed;
          verdict.checks.push_back(
            {"evaluation", false, self->system().render(err)});
          on_gate_verdict(self, i->second, gi, std::move(verdict));
          pump_all(self);
          maybe_finish(self, run_id);
        });
      });
}

} // namespace troupe::orch
