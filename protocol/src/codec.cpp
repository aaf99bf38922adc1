// JSON codecs of the protocol types (enums.cpp spells the enums).

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// Reads an enum written by `to_json`; an unknown spelling throws rather
// than becoming some other value.
template <class E>
E enum_at(const json& j, const char* key, const char* what) {
  auto& v = j.at(key);
  E result{};
  if (!v.is_string() || !from_string(v.get<std::string>(), result))
    throw json::other_error::create(
      501, std::string{"unknown "} + what + " " + json_text(v), &j);
  return result;
}

template <class T>
void read(const json& j, const char* key, T& x) {
  j.at(key).get_to(x);
}

} // namespace

// -- plan ---------------------------------------------------------------------

void to_json(json& j, const executor_spec& x) {
  j = {{"kind", x.kind},
       {"run", x.run},
       {"cwd", x.cwd},
       {"seconds", x.seconds},
       {"env", x.env}};
  // An agent's options appear only when set, as a plan spells them.
  if (!x.model.empty())
    j["model"] = x.model;
  if (x.max_tokens != 0)
    j["max_tokens"] = x.max_tokens;
  if (!x.stream)
    j["stream"] = false;
  if (x.max_turns != 0)
    j["max_turns"] = x.max_turns;
  if (!x.allowed_tools.empty())
    j["allowed_tools"] = x.allowed_tools;
  if (!x.permission_mode.empty())
    j["permission_mode"] = x.permission_mode;
}

void to_json(json& j, const model_price& x) {
  j = {{"input", x.input},
       {"output", x.output},
       {"cache_read", x.cache_read},
       {"cache_write", x.cache_write}};
}

void to_json(json& j, const cost_range& x) {
  j = json::array({x.low, x.high});
}

void to_json(json& j, const workstream& x) {
  j = {{"id", x.id},
       {"title", x.title},
       {"persona", x.persona},
       {"agent", to_string(x.agent)},
       {"model", to_string(x.model)},
       {"prompt", x.prompt},
       {"owns", x.owns},
       {"depends_on", x.depends_on},
       {"executor", x.executor},
       {"retries", x.retries},
       {"estimate_s", x.estimate_s}};
  if (!x.estimate_usd.empty())
    j["estimate_usd"] = x.estimate_usd;
  // 0 means "the plan's default", which the plan schema spells by leaving
  // the key out.
  if (x.timeout_s != 0)
    j["timeout_s"] = x.timeout_s;
  if (!x.output.empty())
    j["output"] = x.output;
  if (x.iterates()) {
    auto& u = j["until"];
    u = {{"run", x.until.run}};
    if (!x.until.cwd.empty())
      u["cwd"] = x.until.cwd;
    if (x.until.timeout_s != 0)
      u["timeout_s"] = x.until.timeout_s;
    if (x.max_iterations != 0)
      j["max_iterations"] = x.max_iterations;
  }
}

void to_json(json& j, const gate_check& x) {
  // The plan spelling: a bare word for the built-in checks, an object for
  // commands.
  if ((x.kind == "completion" || x.kind == "conflicts") && x.run.empty()
      && x.cwd.empty() && x.timeout_s == 0) {
    j = x.kind;
    return;
  }
  j = json::object();
  if (x.kind != "command")
    j["kind"] = x.kind;
  j["run"] = x.run;
  if (!x.cwd.empty())
    j["cwd"] = x.cwd;
  if (x.timeout_s != 0)
    j["timeout_s"] = x.timeout_s;
}

void to_json(json& j, const remediation& x) {
  j = {{"persona", x.persona},
       {"max_attempts", x.max_attempts},
       {"prompt", x.prompt},
       {"executor", x.executor}};
}

void to_json(json& j, const gate& x) {
  j = {{"id", x.id},
       {"after", x.after},
       {"checks", x.checks},
       {"remediate", x.remediate}};
}

void to_json(json& j, const synthesis_spec& x) {
  j = {{"persona", x.persona}};
  // The agent's options only with an agent, as the plan spells them.
  if (!x.by_agent())
    return;
  j["executor"] = x.executor;
  j["prompt"] = x.prompt;
  j["model"] = to_string(x.model);
  j["retries"] = x.retries;
  if (x.timeout_s != 0)
    j["timeout_s"] = x.timeout_s;
}

void to_json(json& j, const plan_settings& x) {
  j = {{"max_parallel_agents", x.max_parallel_agents},
       {"default_timeout_s", x.default_timeout_s},
       {"on_failure", to_string(x.on_failure)},
       {"confirm_before_execute", x.confirm_before_execute},
       {"max_phase_width", x.max_phase_width}};
  if (!x.models.empty())
    j["models"] = x.models;
  if (!x.prices.empty())
    j["prices"] = x.prices;
  if (!x.limits.empty()) {
    auto& l = j["limits"];
    l = json::object();
    if (!x.limits.persona.empty())
      l["persona"] = x.limits.persona;
    if (!x.limits.model.empty())
      l["model"] = x.limits.model;
  }
  if (!x.personas.empty())
    j["personas"] = x.personas;
  if (x.max_cost_usd != 0)
    j["max_cost_usd"] = x.max_cost_usd;
  if (!x.cost_estimates.empty())
    j["cost_estimates"] = x.cost_estimates;
  j["max_subplan_depth"] = x.max_subplan_depth;
  j["max_workstreams"] = x.max_workstreams;
}

void to_json(json& j, const repo_spec& x) {
  j = json::object();
  j["path"] = x.path;
  if (!x.url.empty())
    j["url"] = x.url;
  if (!x.base.empty())
    j["base"] = x.base;
  if (!x.branch.empty())
    j["branch"] = x.branch;
}

void to_json(json& j, const plan& x) {
  j = {{"name", x.name},
       {"goal", x.goal},
       {"settings", x.settings},
       {"workstreams", x.workstreams},
       {"gates", x.gates},
       {"synthesis", x.synthesis}};
  // Only a plan that names a repository has this.
  if (!x.repo.empty())
    j["repo"] = x.repo;
}

// -- results ------------------------------------------------------------------

void to_json(json& j, const usage& x) {
  j = {{"model", x.model},
       {"input_tokens", x.input_tokens},
       {"output_tokens", x.output_tokens},
       {"cache_read_tokens", x.cache_read_tokens},
       {"cache_write_tokens", x.cache_write_tokens},
       {"cost_usd", x.cost_usd}};
}

void from_json(const json& j, usage& x) {
  read(j, "model", x.model);
  read(j, "input_tokens", x.input_tokens);
  read(j, "output_tokens", x.output_tokens);
  read(j, "cache_read_tokens", x.cache_read_tokens);
  read(j, "cache_write_tokens", x.cache_write_tokens);
  read(j, "cost_usd", x.cost_usd);
}

void to_json(json& j, const workstream_result& x) {
  j = {{"id", x.id},
       {"persona", x.persona},
       {"title", x.title},
       {"status", to_string(x.status)},
       {"attempts", x.attempts},
       {"node", x.node},
       {"wall_s", x.wall_s},
       {"started_s", x.started_s},
       {"exit_code", x.exit_code},
       {"summary", x.summary},
       {"output", x.output},
       {"files_changed", x.files_changed},
       {"outputs", x.outputs},
       {"usage", x.usage}};
  // Only an agent that ran sub-agents has this.
  if (!x.sub_agent_usage.empty())
    j["sub_agent_usage"] = x.sub_agent_usage;
  // Only an `until` workstream has these.
  if (!x.check.name.empty())
    j["check"] = x.check;
  if (!x.iterations.empty())
    j["iterations"] = x.iterations;
  // Only a change in a run on a repository has lines.
  if (x.lines_added != 0 || x.lines_removed != 0) {
    j["lines_added"] = x.lines_added;
    j["lines_removed"] = x.lines_removed;
  }
}

void from_json(const json& j, workstream_result& x) {
  read(j, "id", x.id);
  read(j, "persona", x.persona);
  read(j, "title", x.title);
  x.status = enum_at<ws_state>(j, "status", "workstream state");
  read(j, "attempts", x.attempts);
  read(j, "node", x.node);
  read(j, "wall_s", x.wall_s);
  read(j, "started_s", x.started_s);
  read(j, "exit_code", x.exit_code);
  read(j, "summary", x.summary);
  read(j, "output", x.output);
  read(j, "files_changed", x.files_changed);
  x.lines_added = j.value("lines_added", int64_t{0});
  x.lines_removed = j.value("lines_removed", int64_t{0});
  read(j, "outputs", x.outputs);
  read(j, "usage", x.usage);
  x.sub_agent_usage.clear();
  if (auto i = j.find("sub_agent_usage"); i != j.end())
    i->get_to(x.sub_agent_usage);
  x.check = {};
  if (auto i = j.find("check"); i != j.end())
    i->get_to(x.check);
  x.iterations.clear();
  if (auto i = j.find("iterations"); i != j.end())
    i->get_to(x.iterations);
}

void to_json(json& j, const check_result& x) {
  j = {{"name", x.name}, {"passed", x.passed}, {"detail", x.detail}};
}

void from_json(const json& j, check_result& x) {
  read(j, "name", x.name);
  read(j, "passed", x.passed);
  read(j, "detail", x.detail);
}

void to_json(json& j, const gate_result& x) {
  j = {{"id", x.id},
       {"status", to_string(x.status)},
       {"attempts", x.attempts},
       {"checks", x.checks}};
}

void from_json(const json& j, gate_result& x) {
  read(j, "id", x.id);
  x.status = enum_at<gate_state>(j, "status", "gate state");
  read(j, "attempts", x.attempts);
  read(j, "checks", x.checks);
}

void to_json(json& j, const run_report& x) {
  j = {{"run_id", x.run_id},
       {"plan", x.plan},
       {"goal", x.goal},
       {"status", to_string(x.status)},
       {"wall_s", x.wall_s},
       {"sequential_s", x.sequential_s},
       {"critical_path_s", x.critical_path_s},
       {"critical_path", x.critical_path},
       {"workstreams", x.workstreams},
       {"gates", x.gates},
       {"usage", x.usage},
       {"rerun", x.rerun},
       {"synthesized_by", x.synthesized_by},
       {"markdown", x.markdown},
       {"cost_usd", x.cost_usd},
       {"deep_tier_cost_usd", x.deep_tier_cost_usd}};
  // Only a report that is partial says so: complete ones stay as they were.
  if (x.partial)
    j["partial"] = true;
  if (!x.sub_agent_usage.empty())
    j["sub_agent_usage"] = x.sub_agent_usage;
  if (!x.planning_usage.empty())
    j["planning_usage"] = x.planning_usage;
  if (!x.synthesis.empty())
    j["synthesis"] = x.synthesis;
  // Only a run with a budget has these.
  if (x.max_cost_usd > 0) {
    j["max_cost_usd"] = x.max_cost_usd;
    j["budget_stopped"] = x.budget_stopped;
  }
  // Only a run on a git repository has this.
  if (!x.run_dir.empty())
    j["repository"]
      = {{"run_dir", x.run_dir}, {"base", x.base},
         {"branch", x.branch},   {"approval", x.approval},
         {"commits", x.commits}, {"commit_error", x.commit_error}};
}

void from_json(const json& j, run_report& x) {
  read(j, "run_id", x.run_id);
  read(j, "plan", x.plan);
  read(j, "goal", x.goal);
  x.status = enum_at<run_status>(j, "status", "run status");
  x.partial = false;
  if (auto i = j.find("partial"); i != j.end())
    i->get_to(x.partial);
  read(j, "wall_s", x.wall_s);
  read(j, "sequential_s", x.sequential_s);
  read(j, "critical_path_s", x.critical_path_s);
  read(j, "critical_path", x.critical_path);
  read(j, "workstreams", x.workstreams);
  read(j, "gates", x.gates);
  read(j, "usage", x.usage);
  x.sub_agent_usage.clear();
  if (auto i = j.find("sub_agent_usage"); i != j.end())
    i->get_to(x.sub_agent_usage);
  x.rerun.clear();
  if (auto i = j.find("rerun"); i != j.end())
    i->get_to(x.rerun);
  x.planning_usage.clear();
  if (auto i = j.find("planning_usage"); i != j.end())
    i->get_to(x.planning_usage);
  read(j, "synthesized_by", x.synthesized_by);
  read(j, "markdown", x.markdown);
  // Reports written before these were there.
  x.synthesis = j.value("synthesis", std::string{});
  x.cost_usd = j.value("cost_usd", 0.0);
  x.deep_tier_cost_usd = j.value("deep_tier_cost_usd", 0.0);
  x.max_cost_usd = j.value("max_cost_usd", 0.0);
  x.budget_stopped = j.value("budget_stopped", false);
  x.run_dir = x.base = x.branch = x.approval = x.commit_error = {};
  x.commits.clear();
  if (auto i = j.find("repository"); i != j.end() && i->is_object()) {
    read(*i, "run_dir", x.run_dir);
    read(*i, "base", x.base);
    read(*i, "branch", x.branch);
    read(*i, "approval", x.approval);
    read(*i, "commits", x.commits);
    read(*i, "commit_error", x.commit_error);
  }
}

void to_json(json& j, const event& x) {
  j = {{"run_id", x.run_id},   {"seq", x.seq},
       {"t_s", x.t_s},         {"at", x.at},
       {"kind", to_string(x.kind)},
       {"subject", x.subject}, {"state", x.state},
       {"attempt", x.attempt}, {"node", x.node},
       {"message", x.message}};
  if (carries_result(x.kind))
    j["result"] = x.result;
  if (carries_checks(x.kind))
    j["checks"] = x.checks;
}

void from_json(const json& j, event& x) {
  read(j, "run_id", x.run_id);
  read(j, "seq", x.seq);
  read(j, "t_s", x.t_s);
  read(j, "at", x.at);
  x.kind = enum_at<event_kind>(j, "kind", "event kind");
  read(j, "subject", x.subject);
  read(j, "state", x.state);
  read(j, "attempt", x.attempt);
  read(j, "node", x.node);
  read(j, "message", x.message);
  x.result = {};
  if (carries_result(x.kind))
    read(j, "result", x.result);
  x.checks.clear();
  if (carries_checks(x.kind))
    read(j, "checks", x.checks);
}

void to_json(json& j, const run_snapshot& x) {
  j = {{"run_id", x.run_id},         {"plan", x.plan},
       {"goal", x.goal},             {"status", x.status},
       {"started_at", x.started_at}, {"t_s", x.t_s},
       {"seq", x.seq},               {"total", x.total},
       {"ended", x.ended},           {"workstreams", x.workstreams},
       {"gates", x.gates},           {"rerun", x.rerun}};
}

void from_json(const json& j, run_snapshot& x) {
  read(j, "run_id", x.run_id);
  read(j, "plan", x.plan);
  read(j, "goal", x.goal);
  read(j, "status", x.status);
  read(j, "started_at", x.started_at);
  read(j, "t_s", x.t_s);
  read(j, "seq", x.seq);
  read(j, "total", x.total);
  read(j, "ended", x.ended);
  read(j, "workstreams", x.workstreams);
  read(j, "gates", x.gates);
  read(j, "rerun", x.rerun);
}

void to_json(json& j, const node_info& x) {
  j = {{"name", x.name},
       {"slots", x.slots},
       {"personas", x.personas},
       {"executors", x.executors},
       {"models", x.models},
       {"protocol_version", x.protocol_version}};
}

void to_json(json& j, const node_status& x) {
  j = {{"name", x.info.name},
       {"slots", x.info.slots},
       {"busy", x.busy},
       {"personas", x.info.personas},
       {"executors", x.info.executors},
       {"state", x.state},
       {"completed", x.completed}};
}

} // namespace troupe
