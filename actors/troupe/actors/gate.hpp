#pragma once

#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

/// A gate's `completion` check: passes when every workstream it guards
/// succeeded.
check_result check_completion(const std::vector<workstream_result>& results);

/// A gate's `conflicts` check: passes when no file was reported changed by
/// two of the workstreams it guards.
check_result check_conflicts(const std::vector<workstream_result>& results);

/// A gate's command check, from the result of running it on a node: passes
/// when it exited 0; the detail says how it ended, where, and the tail of
/// its output.
check_result check_command(const gate_check& check,
                           const workstream_result& r);

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
