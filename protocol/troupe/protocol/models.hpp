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
/// name such as `claude-sonnet-4-5-20250929` costs what its family costs;
/// the Claude Code CLI's `haiku`, `sonnet` and `opus` what the current
/// model of theirs does).
/// False when neither knows it.
bool find_price(const plan_settings& settings, const std::string& model,
                model_price& out);

/// Troupe's guess at what one attempt of an agent of `kind` on `tier`
/// costs, for plans that give none: a single LLM call, or a Claude Code
/// session of several turns.
cost_range default_cost_estimate(const std::string& kind, model_tier tier);

/// What one attempt of `ws` is expected to cost: its `estimate_usd`, else
/// `settings.cost_estimates` for its tier, else the default guess; nothing
/// for work that is not an agent.
cost_range estimated_cost(const plan_settings& settings, const workstream& ws);

/// What `u` would have cost had `ws` run on the deep tier: its tokens at
/// the price of the model `deep` names for its executor. False when that
/// price is unknown.
bool deep_tier_cost(const plan_settings& settings, const workstream& ws,
                    const usage& u, double& out);

/// What `u`'s tokens cost at `price`, in US dollars.
double cost_usd(const usage& u, const model_price& price);

/// `a + b` for counts of tokens that come from outside: held at what an
/// int64_t holds rather than wrap.
int64_t sum_tokens(int64_t a, int64_t b);

/// Adds `x`'s tokens and cost to `total`, whose model stays.
usage& operator+=(usage& total, const usage& x);

/// Adds `x` to `totals`, keeping one entry per model in order of names.
void add_usage(std::vector<usage>& totals, const usage& x);

/// `all` less `part`, model by model: what is left of each model's tokens
/// and cost, never below zero; models with nothing left are dropped.
std::vector<usage> usage_less(const std::vector<usage>& all,
                              const std::vector<usage>& part);

} // namespace troupe
