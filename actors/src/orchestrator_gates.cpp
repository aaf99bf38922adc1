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
    child_gate_ended(self, run, gi);
    return;
  }
  if (g.result.status == gate_state::passed) {
    g.state = gate_state::passed;
    emit(self, run, event_kind::gate_passed, g.def.id, "passed", attempts)
      .checks = g.result.checks;
    for (auto j : g.guarded) {
      run.ws[j].remaining_gates -= 1;
      make_ready(self, run, j);
    }
    child_gate_ended(self, run, gi);
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
    if (on_repository(run))
      def.owns = fixer_owns(run, g);
    if (def.executor.kind.empty())
      def.executor.kind = "noop";
    run.fixers.push_back(std::move(def));
    ws_run fix;
    fix.def = &run.fixers.back();
    fix.fixes_gate = gi;
    auto idx = run.ws.size();
    run.index.emplace(fix.def->id, idx);
    run.ws.push_back(std::move(fix));
    emit(self, run, event_kind::gate_remediating, g.def.id, "remediating",
         attempts, {}, failed)
      .checks = g.result.checks;
    make_ready(self, run, idx);
    return;
  }
  g.state = gate_state::failed;
  g.result.status = gate_state::failed;
  emit(self, run, event_kind::gate_failed, g.def.id, "failed", attempts, {},
       failed)
    .checks = g.result.checks;
  for (auto j : g.guarded)
    block(self, run, j, "blocked: gate " + g.def.id + " failed (" + failed
                          + ")");
  child_gate_ended(self, run, gi);
}

namespace {

// The results of the workstreams a gate comes after.
std::vector<workstream_result> results_after(const run_state& run,
                                             const gate_run& g) {
  std::vector<workstream_result> results;
  for (auto& id : g.def.after)
    if (auto i = run.index.find(id); i != run.index.end())
      results.push_back(run.ws[i->second].result);
  return results;
}

// Ends the gate's round of checks with what they said.
void end_round(self_ptr self, run_state& run, size_t gi) {
  auto& g = run.gates[gi];
  run.gates_busy -= 1;
  gate_result verdict;
  verdict.id = g.def.id;
  verdict.checks = std::move(g.round);
  g.round = {};
  verdict.status = gate_state::passed;
  for (auto& c : verdict.checks)
    if (!c.passed)
      verdict.status = gate_state::failed;
  if (run.cancelling) {
    verdict.status = gate_state::cancelled;
    verdict.checks.push_back({"cancelled", false, "the run was cancelled"});
  }
  on_gate_verdict(self, run, gi, std::move(verdict));
}

// Runs the gate's checks from the next one on: those the orchestrator can
// judge at once, until a command, which goes to a node like any work (a
// node that has the run's working directory, never the coordinator itself
// unless it lends slots). Its end continues the round (`check_ended`).
void advance_round(self_ptr self, run_state& run, size_t gi) {
  auto& g = run.gates[gi];
  while (g.next_check < g.def.checks.size() && !run.cancelling) {
    auto ci = g.next_check;
    auto& check = g.def.checks[ci];
    if (check.kind == "completion") {
      g.round.push_back(check_completion(results_after(run, g)));
      ++g.next_check;
      continue;
    }
    if (check.kind == "conflicts") {
      g.round.push_back(on_repository(run)
                          ? check_integration(run, g)
                          : check_conflicts(results_after(run, g)));
      ++g.next_check;
      continue;
    }
    workstream def;
    def.id = g.def.id + ".check" + std::to_string(++g.commands_run);
    def.title = "run: " + check.run;
    // No persona: a check is no agent's work, and any node with the
    // command executor may run it.
    def.agent = agent_kind::explore;
    def.model = model_tier::fast;
    def.executor.kind = "command";
    def.executor.run = check.run;
    def.executor.cwd = check.cwd;
    def.timeout_s = check.timeout_s > 0 ? check.timeout_s
                                        : default_check_timeout_s;
    run.fixers.push_back(std::move(def));
    ws_run cw;
    cw.def = &run.fixers.back();
    cw.checks_gate = gi;
    cw.check_index = ci;
    auto idx = run.ws.size();
    run.index.emplace(cw.def->id, idx);
    run.ws.push_back(std::move(cw));
    make_ready(self, run, idx);
    return;
  }
  end_round(self, run, gi);
}

} // namespace

void evaluate_gate(self_ptr self, run_state& run, size_t gi) {
  auto& g = run.gates[gi];
  g.state = gate_state::evaluating;
  g.result.attempts += 1;
  g.next_check = 0;
  g.round.clear();
  run.gates_busy += 1;
  emit(self, run, event_kind::gate_evaluating, g.def.id, "evaluating", g.result.attempts);
  advance_round(self, run, gi);
}

void check_ended(self_ptr self, run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  auto gi = w.checks_gate;
  auto& g = run.gates[gi];
  g.round.push_back(check_command(g.def.checks[w.check_index], w.result));
  g.next_check = w.check_index + 1;
  advance_round(self, run, gi);
}

} // namespace troupe::orch
