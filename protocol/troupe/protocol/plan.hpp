#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json_fwd.hpp>

namespace troupe {

/// What an agent may do: read only, design, or write.
enum class agent_kind : uint8_t { explore, plan, general };

/// Model tiers, mapped to real model names in configuration.
enum class model_tier : uint8_t { fast, balanced, deep };

/// What a run does once a workstream has failed for good.
enum class failure_policy : uint8_t { block_dependents, fail_fast, continue_run };

std::string to_string(agent_kind x);
std::string to_string(model_tier x);
std::string to_string(failure_policy x);

/// The tier work of kind `k` goes to when it names none: read-only
/// exploring to `fast`, planning to `deep`, writing to `balanced`.
model_tier routed_tier(agent_kind k);

/// Parses the plan spelling of an enum; false for an unknown string.
bool from_string(const std::string& s, agent_kind& x);
bool from_string(const std::string& s, model_tier& x);
bool from_string(const std::string& s, failure_policy& x);

/// How a workstream's work is done. `kind` names an executor: `noop`,
/// `sleep` (for `seconds`), `command` (`run` in `cwd` with extra `env`),
/// an LLM API (`anthropic`, `openai`), the Claude Code CLI (`claude-code`),
/// or one an embedding program registers.
struct executor_spec {
  std::string kind = "noop";
  std::string run;
  std::string cwd;
  double seconds = 0;
  std::map<std::string, std::string> env;
  /// For agents: an exact model name, in place of the workstream's tier.
  std::string model;
  /// For LLM APIs: the longest reply, in tokens; 0 takes the default.
  int32_t max_tokens = 0;
  /// For LLM APIs: ask for a streamed reply (server-sent events).
  bool stream = true;
  /// For the Claude Code CLI: turns at most (0: its own default), the
  /// tools it may use without asking, and its permission mode.
  int32_t max_turns = 0;
  std::vector<std::string> allowed_tools;
  std::string permission_mode;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, executor_spec& x) {
  return f(caf::meta::type_name("troupe::executor_spec"), x.kind, x.run, x.cwd,
           x.seconds, x.env, x.model, x.max_tokens, x.stream, x.max_turns,
           x.allowed_tools, x.permission_mode);
}

/// What a model costs, in US dollars per million tokens.
struct model_price {
  double input = 0;
  double output = 0;
  double cache_read = 0;
  double cache_write = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_price& x) {
  return f(caf::meta::type_name("troupe::model_price"), x.input, x.output,
           x.cache_read, x.cache_write);
}

inline bool operator==(const model_price& a, const model_price& b) {
  return a.input == b.input && a.output == b.output
         && a.cache_read == b.cache_read && a.cache_write == b.cache_write;
}

/// What something is expected to cost, in US dollars: from `low` to `high`.
struct cost_range {
  double low = 0;
  double high = 0;

  bool empty() const {
    return low == 0 && high == 0;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cost_range& x) {
  return f(caf::meta::type_name("troupe::cost_range"), x.low, x.high);
}

/// One check a gate runs: `completion`, `conflicts`, or `command` (`run`).
struct gate_check {
  std::string kind;
  std::string run;
  std::string cwd;
  double timeout_s = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_check& x) {
  return f(caf::meta::type_name("troupe::gate_check"), x.kind, x.run, x.cwd,
           x.timeout_s);
}

/// One unit of work in a plan, handled by one agent.
struct workstream {
  std::string id;
  std::string title;
  std::string persona;
  agent_kind agent = agent_kind::general;
  model_tier model = model_tier::balanced;
  std::string prompt;
  std::vector<std::string> owns;
  std::vector<std::string> depends_on;
  executor_spec executor;
  /// Seconds before an attempt is killed; 0 takes the plan's default.
  double timeout_s = 0;
  /// Attempts after the first one.
  int32_t retries = 0;
  /// Expected seconds of work, for estimates and progress; 0 if unknown.
  double estimate_s = 0;
  /// Expected cost of an agent's attempt; empty takes its tier's
  /// (`settings.cost_estimates`).
  cost_range estimate_usd;
  /// Repeat until this command passes (`run` empty: no repeating): after
  /// each iteration that succeeds, the check runs in the workstream's
  /// directory; while it fails, the workstream runs again with the
  /// iteration's output and the check's failure in its context.
  gate_check until;
  /// Iterations at most while `until` fails (0 takes the default, 5).
  int32_t max_iterations = 0;
  /// What the work produces: `result` (the default), or `plan`: a plan in
  /// its output (a command's standard output or `outputs.plan`, an
  /// agent's reply) that runs as this workstream's children.
  std::string output;

  bool makes_plan() const {
    return output == "plan";
  }

  bool iterates() const {
    return !until.run.empty();
  }
};

/// Iterations of an `until` workstream when it names no bound, and the
/// most it may name.
constexpr int32_t default_max_iterations = 5;
/// Seconds a command check (a gate's, or an `until`) may take when it names
/// no timeout.
constexpr double default_check_timeout_s = 600;
constexpr int32_t max_iterations_limit = 1000;
/// The longest timeout a plan may name, in seconds: a year.
constexpr double max_timeout_s = 365.0 * 24 * 3600;

/// Seconds `ws`'s `until` check may take after each iteration; 0 when it
/// does not iterate.
inline double until_timeout_s(const workstream& ws) {
  if (!ws.iterates())
    return 0;
  return ws.until.timeout_s > 0 ? ws.until.timeout_s : default_check_timeout_s;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, workstream& x) {
  return f(caf::meta::type_name("troupe::workstream"), x.id, x.title, x.persona,
           x.agent, x.model, x.prompt, x.owns, x.depends_on, x.executor,
           x.timeout_s, x.retries, x.estimate_s, x.estimate_usd, x.until,
           x.max_iterations, x.output);
}

/// What a failing gate dispatches before it checks again.
struct remediation {
  std::string persona = "analyzer";
  int32_t max_attempts = 0;
  std::string prompt;
  executor_spec executor;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remediation& x) {
  return f(caf::meta::type_name("troupe::remediation"), x.persona,
           x.max_attempts, x.prompt, x.executor);
}

/// A quality gate: runs its checks once every workstream in `after` has
/// ended; everything downstream of those workstreams waits for it.
struct gate {
  std::string id;
  std::vector<std::string> after;
  std::vector<gate_check> checks;
  remediation remediate;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate& x) {
  return f(caf::meta::type_name("troupe::gate"), x.id, x.after, x.checks,
           x.remediate);
}

/// Caps on how many workstreams run at once, beside the run's
/// `max_parallel_agents`: per persona, and per model (a tier such as `deep`,
/// or an exact model name), since providers rate-limit per model.
struct run_limits {
  std::map<std::string, int32_t> persona;
  std::map<std::string, int32_t> model;

  bool empty() const {
    return persona.empty() && model.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_limits& x) {
  return f(caf::meta::type_name("troupe::run_limits"), x.persona, x.model);
}

/// Run-wide settings of a plan.
struct plan_settings {
  int32_t max_parallel_agents = 4;
  double default_timeout_s = 1800;
  failure_policy on_failure = failure_policy::block_dependents;
  bool confirm_before_execute = false;
  /// Widest phase before validation warns.
  int32_t max_phase_width = 7;
  /// Model names by tier (`fast`, `balanced`, `deep`), for the agents that
  /// name a tier rather than a model.
  std::map<std::string, std::string> models;
  /// Prices by model name, beside the built-in ones.
  std::map<std::string, model_price> prices;
  run_limits limits;
  /// System prompts by persona, over the built-in ones.
  std::map<std::string, std::string> personas;
  /// US dollars the run may spend on agents; 0 for no limit.
  double max_cost_usd = 0;
  /// Expected cost of one agent's attempt by tier, over the built-in
  /// guesses (`default_cost_estimate`).
  std::map<std::string, cost_range> cost_estimates;
  /// How deep sub-plans may nest (`output: plan` inside a sub-plan counts
  /// one more), and how many workstreams a run may have with all of its
  /// sub-plans'.
  int32_t max_subplan_depth = 3;
  int32_t max_workstreams = 1000;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plan_settings& x) {
  return f(caf::meta::type_name("troupe::plan_settings"), x.max_parallel_agents,
           x.default_timeout_s, x.on_failure, x.confirm_before_execute,
           x.max_phase_width, x.models, x.prices, x.limits, x.personas,
           x.max_cost_usd, x.cost_estimates, x.max_subplan_depth,
           x.max_workstreams);
}

/// An executor of no kind: none at all.
inline executor_spec no_executor() {
  executor_spec x;
  x.kind.clear();
  return x;
}

/// The id of the synthesis agent's work in a run, which no workstream or
/// gate of a plan with one may take.
inline const std::string synthesis_id{"synthesis"};

/// How the run's report is synthesized. Troupe always folds the results
/// into its own account (tables of status, time, tokens and cost); when
/// `executor` names an agent, that agent also reads every result once the
/// work has ended and writes the report's synthesis, on the deep tier
/// unless `model` says otherwise.
struct synthesis_spec {
  std::string persona = "analyzer";
  /// The agent that writes the synthesis; an empty kind for none.
  executor_spec executor = no_executor();
  /// Its task; empty takes the built-in one (`synthesis_workstream`).
  std::string prompt;
  model_tier model = model_tier::deep;
  /// Seconds before an attempt is killed; 0 takes the plan's default.
  double timeout_s = 0;
  /// Attempts after the first one.
  int32_t retries = 0;

  bool by_agent() const {
    return !executor.kind.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, synthesis_spec& x) {
  return f(caf::meta::type_name("troupe::synthesis_spec"), x.persona,
           x.executor, x.prompt, x.model, x.timeout_s, x.retries);
}

/// The git repository a plan's runs work on, unless the command line names
/// one (`--repo`, `--base`, `--branch`).
struct repo_spec {
  /// The repository, relative to the plan file's directory.
  std::string path;
  /// Where workers fetch it from; empty: `path`.
  std::string url;
  /// The commit runs start from (empty: HEAD), and the branch their
  /// commits land on (empty: `troupe/<run id>`).
  std::string base;
  std::string branch;

  bool empty() const {
    return path.empty() && url.empty() && base.empty() && branch.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repo_spec& x) {
  return f(caf::meta::type_name("troupe::repo_spec"), x.path, x.url, x.base,
           x.branch);
}

/// A goal broken into workstreams, gates and a synthesis.
struct plan {
  std::string name;
  std::string goal;
  /// The repository it works on, if it names one.
  repo_spec repo;
  plan_settings settings;
  std::vector<workstream> workstreams;
  std::vector<gate> gates;
  synthesis_spec synthesis;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plan& x) {
  return f(caf::meta::type_name("troupe::plan"), x.name, x.goal, x.repo,
           x.settings, x.workstreams, x.gates, x.synthesis);
}

/// Whether `id` names the work of the agent that writes the synthesis of
/// a run of `p`.
inline bool is_synthesis(const plan& p, const std::string& id) {
  return p.synthesis.by_agent() && id == synthesis_id;
}

void to_json(nlohmann::json& j, const executor_spec& x);
void to_json(nlohmann::json& j, const model_price& x);
void to_json(nlohmann::json& j, const cost_range& x);
void to_json(nlohmann::json& j, const workstream& x);
void to_json(nlohmann::json& j, const gate_check& x);
void to_json(nlohmann::json& j, const remediation& x);
void to_json(nlohmann::json& j, const gate& x);
void to_json(nlohmann::json& j, const plan_settings& x);
void to_json(nlohmann::json& j, const synthesis_spec& x);
void to_json(nlohmann::json& j, const repo_spec& x);
void to_json(nlohmann::json& j, const plan& x);
/// `x` as one line of JSON, the text `to_json` makes, written without
/// building a JSON tree.
std::string json_text(const plan& x);

} // namespace troupe
