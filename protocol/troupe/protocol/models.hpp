#pragma once

#include <string>
#include <vector>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

/// True for the executor kinds that are agents talking to a model:
/// `anthropic`, `openai` and `claude-code`.
bool is_agent_executor(const std::string& kind);

/// The model `ws` names: its executor's exact model; else, for an agent,
/// the run's model for its tier (`settings.models`), else the executor
/// kind's own default for the tier (`anthropic` and `claude-code` have
/// them). Empty when there is none.
std::string resolve_model(const plan_settings& settings, const workstream& ws);

/// The price of `model`: the settings' own, else a built-in one (a dated
/// name such as `claude-sonnet-4-5-20250929` costs what its family costs).
/// False when neither knows it.
bool find_price(const plan_settings& settings, const std::string& model,
                model_price& out);

/// What `u`'s tokens cost at `price`, in US dollars.
double cost_usd(const usage& u, const model_price& price);

/// Adds `x`'s tokens and cost to `total`, whose model stays.
usage& operator+=(usage& total, const usage& x);

/// Adds `x` to `totals`, keeping one entry per model in order of names.
void add_usage(std::vector<usage>& totals, const usage& x);

} // namespace troupe
