#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

class executor_registry;

/// Default seconds a gate's command check may take.
constexpr double default_check_timeout_s = 600;

/// Spawns a gate actor. Each `evaluate` runs the gate's checks once, in
/// order: `completion` (every guarded workstream succeeded), `conflicts` (no
/// file reported changed by two workstreams) and commands (exit 0 passes),
/// and answers with a verdict per check.
gate_actor spawn_gate(caf::actor_system& sys,
                      std::shared_ptr<const executor_registry> executors);

/// Spawns the synthesizer: it folds a run's results into the report,
/// computing sequential time, the critical path, usage totals and Markdown.
synthesizer_actor spawn_synthesizer(caf::actor_system& sys);

/// Spawns the planner: it assesses plans (phases, critical path, estimates,
/// complexity) before they run.
planner_actor spawn_planner(caf::actor_system& sys);

/// The report as Markdown, as the synthesizer writes it.
std::string render_markdown(const plan& p, const run_report& r);

/// Fills `sequential_s`, `critical_path(_s)` and `usage` totals of `r`
/// from its workstreams and the plan's dependencies.
void fold_report(const plan& p, run_report& r);

} // namespace troupe
