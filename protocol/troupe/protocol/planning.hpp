#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json_fwd.hpp>

#include "troupe/protocol/plan.hpp"

namespace troupe {

/// How much orchestration a goal needs, from the indicators in DESIGN.md.
enum class complexity : uint8_t { simple, moderate, complex, epic };

std::string to_string(complexity x);

/// What the planner makes of a plan before anything runs.
struct plan_assessment {
  complexity level = complexity::simple;
  int32_t score = 0;
  /// The indicators that scored, in words.
  std::vector<std::string> indicators;
  /// Workstream ids by phase: a phase holds what can run once the phases
  /// before it are done.
  std::vector<std::vector<std::string>> phases;
  std::vector<std::string> critical_path;
  double critical_path_s = 0;
  double sequential_s = 0;
  /// Estimated wall time with the plan's parallelism limit.
  double parallel_s = 0;
  std::string strategy;
  /// What the agents' first attempts are expected to cost (`estimated_cost`
  /// summed), and how many agents there are.
  cost_range cost_usd;
  int32_t agents = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plan_assessment& x) {
  return f(caf::meta::type_name("troupe::plan_assessment"), x.level, x.score,
           x.indicators, x.phases, x.critical_path, x.critical_path_s,
           x.sequential_s, x.parallel_s, x.strategy, x.cost_usd, x.agents);
}

/// The work of the agent that writes the run's synthesis
/// (`plan.synthesis.executor`), as the run dispatches it once everything
/// else has ended: id `synthesis_id`, read-only, its task the synthesis's
/// prompt (or the built-in one) with the plan's name and goal. Its context
/// holds every result and every gate's verdict.
workstream synthesis_workstream(const plan& p);

/// The strategy the words of `text` point at (feature, bug investigation,
/// security audit, performance, refactor, deployment, data pipeline);
/// "feature" when none does. `matched` gets the words that pointed at it.
std::string strategy_of_text(const std::string& text,
                             std::vector<std::string>* matched = nullptr);

/// Assesses a validated plan: phases, critical path by `estimate_s`,
/// sequential and parallel estimates, complexity and strategy.
plan_assessment assess(const plan& p);

void to_json(nlohmann::json& j, const plan_assessment& x);

} // namespace troupe
