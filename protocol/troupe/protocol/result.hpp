#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor_control_block.hpp>
#include <caf/meta/type_name.hpp>
#include <nlohmann/json_fwd.hpp>

#include "troupe/protocol/plan.hpp"

namespace troupe {

/// The protocol version; a coordinator refuses nodes with another one.
constexpr int32_t protocol_version = 12;

/// Workstream states:
///
///   pending -> ready -> dispatched -> running -> succeeded
///                                             -> failed | timed_out
///   any state before an end may become cancelled or blocked.
enum class ws_state : uint8_t {
  pending,
  ready,
  dispatched,
  running,
  succeeded,
  failed,
  timed_out,
  cancelled,
  blocked,
};

/// How a run (or a gate) ended.
enum class run_status : uint8_t { succeeded, failed, blocked, cancelled };

enum class gate_state : uint8_t {
  pending,
  evaluating,
  remediating,
  passed,
  failed,
  /// The run was cancelled before the gate reached a verdict.
  cancelled,
};

std::string to_string(ws_state x);
std::string to_string(run_status x);
std::string to_string(gate_state x);
bool from_string(const std::string& s, ws_state& x);
bool from_string(const std::string& s, run_status& x);
bool from_string(const std::string& s, gate_state& x);

/// True for the states a workstream never leaves.
bool is_terminal(ws_state x);

/// Tokens and money one model spent. `input_tokens` counts the prompt's
/// tokens read afresh; those read from or written to the provider's prompt
/// cache are counted apart, as providers bill them.
struct usage {
  std::string model;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  double cost_usd = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage& x) {
  return f(caf::meta::type_name("troupe::usage"), x.model, x.input_tokens,
           x.output_tokens, x.cache_read_tokens, x.cache_write_tokens,
           x.cost_usd);
}

/// Where an attempt of a run on a git repository gets its files: a
/// worktree of its own at `base` with `patch` (the run's integrated change)
/// applied, made before the work and removed after it.
struct workspace_spec {
  /// `write`: the change the work makes is captured (`diff` in the
  /// result); `read`: its files cannot be written; `check`: a gate's check,
  /// whose change is thrown away. Empty: no workspace, the work runs in
  /// the spec's `workdir`.
  std::string mode;
  /// The repository, where the coordinator has it: a node there makes
  /// worktrees of it.
  std::string repo;
  /// Where a worker fetches it from into a cache of its own: a URL or a
  /// path; empty: `repo`.
  std::string url;
  /// The run's base commit, a full object id.
  std::string base;
  /// Applied onto `base` first; the captured change is what the work adds.
  std::string patch;
  /// Applied after `patch` and kept in the captured change: an `until`
  /// workstream's change from its earlier iterations.
  std::string carry;
  /// The directory worktrees are made in; empty takes the node's own.
  std::string root;

  bool enabled() const {
    return !mode.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, workspace_spec& x) {
  return f(caf::meta::type_name("troupe::workspace_spec"), x.mode, x.repo,
           x.url, x.base, x.patch, x.carry, x.root);
}

/// What an agent is asked to do: one attempt at one workstream.
struct workstream_spec {
  std::string run_id;
  workstream ws;
  int32_t attempt = 1;
  /// Which dispatch of the workstream this is: unique within a run, even
  /// when an attempt is repeated because its node was lost.
  int32_t dispatch = 1;
  /// Seconds the attempt may take.
  double timeout_s = 0;
  /// The directory the work runs in.
  std::string workdir;
  /// JSON text: dependencies' results, earlier failed attempts, gate output.
  std::string context;
  /// A secret of this dispatch: its start notice and its result must carry
  /// it back, so nobody else can pass theirs off as the node's.
  uint64_t key = 0;
  /// For agents: the model the workstream's tier (or its executor) names,
  /// and its price, from the run's settings.
  std::string model;
  model_price price;
  /// For agents: the system prompt of the workstream's persona, from the
  /// run's settings or the built-in ones.
  std::string system_prompt;
  /// For agents: US dollars this attempt may spend, its share of what is
  /// left of the run's budget; 0 for no limit.
  double budget_usd = 0;
  /// For a run on a git repository: the worktree the attempt runs in.
  workspace_spec workspace;
  /// Where the attempt's executor may send how far it got (a
  /// `progress_actor`): set by the agent that runs it, on its own node,
  /// and never sent over the network.
  caf::strong_actor_ptr progress;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, workstream_spec& x) {
  return f(caf::meta::type_name("troupe::workstream_spec"), x.run_id, x.ws,
           x.attempt, x.dispatch, x.timeout_s, x.workdir, x.context, x.key,
           x.model, x.price, x.system_prompt, x.budget_usd, x.workspace);
}

/// The verdict of one gate check.
struct check_result {
  std::string name;
  bool passed = false;
  std::string detail;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, check_result& x) {
  return f(caf::meta::type_name("troupe::check_result"), x.name, x.passed,
           x.detail);
}

/// The outcome of one attempt, or of a whole workstream in a report.
struct workstream_result {
  std::string id;
  std::string persona;
  std::string title;
  ws_state status = ws_state::pending;
  int32_t attempts = 0;
  std::string node;
  double wall_s = 0;
  /// Seconds since the run started, when the accepted attempt began.
  double started_s = 0;
  int32_t exit_code = -1;
  std::string summary;
  /// The tail of the attempt's standard output and error.
  std::string output;
  std::vector<std::string> files_changed;
  /// In a run on a git repository: the lines the change adds and removes
  /// (`files_changed` is then the change's files, whatever the work said).
  int64_t lines_added = 0;
  int64_t lines_removed = 0;
  /// The change, as `git diff --binary` writes it: bytes, never in JSON
  /// (the run directory keeps it as a file).
  std::string diff;
  std::map<std::string, std::string> outputs;
  /// What the attempts spent, per model: the agent's own calls and its
  /// sub-agents', each token once.
  std::vector<troupe::usage> usage;
  /// The part of `usage` that sub-agents spent (agents the agent started
  /// itself, as the Claude Code CLI does), per model.
  std::vector<troupe::usage> sub_agent_usage;
  /// The key of the dispatch this answers (see `workstream_spec::key`);
  /// set by the agent pool, never written to reports.
  uint64_t key = 0;
  /// For an `until` workstream: this attempt's check (`name` empty when
  /// none ran), and in the end every iteration's, in order.
  check_result check;
  std::vector<check_result> iterations;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, workstream_result& x) {
  return f(caf::meta::type_name("troupe::workstream_result"), x.id, x.persona,
           x.title, x.status, x.attempts, x.node, x.wall_s, x.started_s,
           x.exit_code, x.summary, x.output, x.files_changed, x.lines_added,
           x.lines_removed, x.diff, x.outputs, x.usage, x.sub_agent_usage,
           x.key, x.check, x.iterations);
}

/// The verdict of a gate, after any remediation.
struct gate_result {
  std::string id;
  gate_state status = gate_state::pending;
  int32_t attempts = 0;
  std::vector<check_result> checks;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_result& x) {
  return f(caf::meta::type_name("troupe::gate_result"), x.id, x.status,
           x.attempts, x.checks);
}

/// Everything a run produced, folded by the synthesizer.
struct run_report {
  std::string run_id;
  std::string plan;
  std::string goal;
  run_status status = run_status::succeeded;
  /// Built from what a follower saw before it lost the run (its coordinator
  /// went away), not from the run's end: workstreams may have gone on.
  bool partial = false;
  double wall_s = 0;
  double sequential_s = 0;
  double critical_path_s = 0;
  std::vector<std::string> critical_path;
  std::vector<workstream_result> workstreams;
  std::vector<gate_result> gates;
  /// What the run spent per model, each token once, and the part of it
  /// that sub-agents spent.
  std::vector<troupe::usage> usage;
  std::vector<troupe::usage> sub_agent_usage;
  /// Workstreams that were in flight (dispatched, their commands perhaps
  /// not started yet) when the run was interrupted (its coordinator
  /// killed), and ran again when it was resumed.
  std::vector<std::string> rerun;
  std::string synthesized_by;
  /// What the synthesis agent wrote (`plan.synthesis.executor`); empty
  /// when the plan has none, or it wrote nothing.
  std::string synthesis;
  /// The report as Markdown.
  std::string markdown;
  /// What the agents spent, in US dollars: every attempt's tokens.
  double cost_usd = 0;
  /// What the same tokens would have cost with every agent on the deep
  /// tier (work whose deep price is unknown counts at its own).
  double deep_tier_cost_usd = 0;
  /// The run's budget (`settings.max_cost_usd`), 0 for none, and whether
  /// it stopped the run: work was left unrun so as not to pass it.
  double max_cost_usd = 0;
  bool budget_stopped = false;
  /// What making the plan spent, per model (the LLM planner); in `usage`
  /// and `cost_usd` too.
  std::vector<troupe::usage> planning_usage;
  /// For a run on a git repository: its directory, base commit and branch;
  /// what became of its changes: `awaiting` approval, `committed` (the
  /// commits, oldest first), `rejected`, or empty when its work did not
  /// succeed; and why committing failed, if it did.
  std::string run_dir;
  std::string base;
  std::string branch;
  std::string approval;
  std::vector<std::string> commits;
  std::string commit_error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_report& x) {
  return f(caf::meta::type_name("troupe::run_report"), x.run_id, x.plan, x.goal,
           x.status, x.partial, x.wall_s, x.sequential_s, x.critical_path_s,
           x.critical_path, x.workstreams, x.gates, x.usage, x.sub_agent_usage,
           x.rerun, x.synthesized_by, x.synthesis, x.markdown, x.cost_usd,
           x.deep_tier_cost_usd, x.max_cost_usd, x.budget_stopped,
           x.planning_usage, x.run_dir, x.base, x.branch, x.approval, x.commits,
           x.commit_error);
}

/// What an event tells. Every state change of a run, its workstreams,
/// gates and nodes is one of these, made in one place (the orchestrator).
enum class event_kind : uint8_t {
  /// The run began; `message` counts its workstreams and gates.
  run_started,
  /// The run goes on after its coordinator stopped; `message` names the
  /// workstreams that were in flight and run again.
  run_resumed,
  /// Somebody cancelled the run; `message` says who.
  run_cancelling,
  /// A step of the run failed inside the orchestrator; `message` says how.
  run_failing,
  /// Everything ended; `state` is the run's status. The report follows.
  run_finished,
  ws_ready,
  /// Ready, but no node offers what it needs; `message` says what.
  ws_waiting,
  /// Sent to `node` as attempt `attempt`.
  ws_dispatched,
  /// Its node started it.
  ws_running,
  /// Its agent is at work: `message` says how far (turns, tool uses,
  /// tokens so far).
  ws_progress,
  /// Attempt `attempt` failed and another follows; `result` is the failed
  /// attempt's.
  ws_retrying,
  /// Its node was lost: it is ready again, the lost attempt not charged.
  ws_requeued,
  /// It ended in `state`; `result` is its result.
  ws_ended,
  gate_evaluating,
  /// A check failed and a fixer runs; `checks` holds the verdicts.
  gate_remediating,
  gate_passed,
  gate_failed,
  node_joined,
  node_draining,
  node_left,
  node_lost,
  /// An `until` workstream's iteration ended and its check failed: it runs
  /// again; `attempt` is the iteration, `result` its result with the
  /// check's verdict.
  ws_iterating,
  /// Its work made a plan (`output: plan`), whose workstreams now run as
  /// its children; `result` is the work's, with the plan; `message` counts
  /// the children.
  ws_expanded,
};

std::string to_string(event_kind x);
bool from_string(const std::string& s, event_kind& x);

/// A state change in a run: what observers, the event log and the journal
/// see, in order of `seq`.
struct event {
  std::string run_id;
  /// Counts the run's events from 1, without gaps.
  uint64_t seq = 0;
  /// Seconds since the run started.
  double t_s = 0;
  /// When it happened: seconds since the Unix epoch.
  double at = 0;
  event_kind kind = event_kind::run_started;
  /// The workstream, gate or node concerned, or the run's id.
  std::string subject;
  /// The subject's new state.
  std::string state;
  int32_t attempt = 0;
  std::string node;
  std::string message;
  /// For ws_retrying and ws_ended: the result, whole.
  workstream_result result;
  /// For a gate's verdict (passed, failed, remediating): its checks.
  std::vector<check_result> checks;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(caf::meta::type_name("troupe::event"), x.run_id, x.seq, x.t_s,
           x.at, x.kind, x.subject, x.state, x.attempt, x.node, x.message,
           x.result, x.checks);
}

/// True for the events whose `result` is set.
inline bool carries_result(event_kind k) {
  return k == event_kind::ws_retrying || k == event_kind::ws_ended
         || k == event_kind::ws_iterating || k == event_kind::ws_expanded;
}

/// True for the events whose `checks` are set.
inline bool carries_checks(event_kind k) {
  return k == event_kind::gate_remediating || k == event_kind::gate_passed
         || k == event_kind::gate_failed;
}

/// A run's state at one point: what an observer that subscribes late gets
/// before the events that follow (those with a greater `seq`), and what a
/// status query answers.
struct run_snapshot {
  std::string run_id;
  std::string plan;
  std::string goal;
  /// running, cancelling, or how the run ended.
  std::string status;
  /// Seconds since the Unix epoch, and run time so far.
  double started_at = 0;
  double t_s = 0;
  /// The last event included.
  uint64_t seq = 0;
  /// The plan's workstreams, and how many of them have ended.
  int64_t total = 0;
  int64_t ended = 0;
  /// Every workstream (the plan's, then a gate's fixers and checks), each
  /// in its current state; a finished one with its result.
  std::vector<workstream_result> workstreams;
  std::vector<gate_result> gates;
  std::vector<std::string> rerun;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_snapshot& x) {
  return f(caf::meta::type_name("troupe::run_snapshot"), x.run_id, x.plan,
           x.goal, x.status, x.started_at, x.t_s, x.seq, x.total, x.ended,
           x.workstreams, x.gates, x.rerun);
}

/// A node's offer of agent slots.
struct node_info {
  std::string name;
  int32_t slots = 0;
  /// Personas served; empty means any.
  std::vector<std::string> personas;
  /// Executor kinds available; empty means the built-in ones.
  std::vector<std::string> executors;
  int32_t protocol_version = troupe::protocol_version;
  /// Models its agents may ask for; empty means any.
  std::vector<std::string> models;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("troupe::node_info"), x.name, x.slots,
           x.personas, x.executors, x.protocol_version, x.models);
}

/// How a run works on a git repository (`troupe run --repo`).
struct repo_options {
  /// The repository's top directory, where the coordinator reaches it;
  /// empty: the run works in a plain directory.
  std::string path;
  /// Where workers fetch it from; empty: `path`.
  std::string url;
  /// The commit the run starts from, a full object id.
  std::string base;
  /// The branch its commits land on (`troupe/<run id>` when empty).
  std::string branch;
  /// The run's directory: workspaces, diffs, the integration tree.
  std::string run_dir;
  /// Commit without asking once everything has passed (`--yes`).
  bool approved = false;
  /// Who the commits are by.
  std::string author_name;
  std::string author_email;

  bool enabled() const {
    return !path.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repo_options& x) {
  return f(caf::meta::type_name("troupe::repo_options"), x.path, x.url, x.base,
           x.branch, x.run_dir, x.approved, x.author_name, x.author_email);
}

/// How to run a plan, beside the plan itself.
struct run_options {
  /// Overrides the plan's max_parallel_agents when above zero.
  int32_t max_parallel = 0;
  /// Where workstreams and gate checks run, unless they say otherwise.
  std::string workdir;
  /// Run id to use; empty lets the orchestrator make one.
  std::string run_id;
  /// The cluster's shared secret, when the coordinator has one.
  std::string token;
  /// A secret the submitter chooses: `cancel_atom` must present it, so only
  /// the submitter can cancel its run. Empty: nobody can.
  std::string cancel_key;
  /// The git repository the run works on: its workstreams' changes are
  /// captured, checked against what they own, integrated and committed.
  repo_options repo;
  /// What making the plan spent (the LLM planner), per model: the report
  /// counts it, and so does the budget.
  std::vector<troupe::usage> planning_usage;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_options& x) {
  return f(caf::meta::type_name("troupe::run_options"), x.max_parallel,
           x.workdir, x.run_id, x.token, x.cancel_key, x.repo,
           x.planning_usage);
}

/// A worker's request to lend its pool to a coordinator.
struct join_request {
  /// The cluster's shared secret; checked when the coordinator has one.
  std::string token;
  node_info info;
  /// A secret the node chooses: `drain_atom` and `leave_atom` for its pool
  /// must present it.
  std::string key;
  /// The key of the membership this node lost, when it joins again after
  /// losing the coordinator: should the coordinator still count that
  /// membership, it ends it as lost. Empty on a first join.
  std::string previous_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  return f(caf::meta::type_name("troupe::join_request"), x.token, x.info,
           x.key, x.previous_key);
}

/// A node as the coordinator sees it.
struct node_status {
  node_info info;
  int32_t busy = 0;
  /// joined, draining, left or lost.
  std::string state;
  /// Workstreams this node has completed (any end) since it joined.
  int64_t completed = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("troupe::node_status"), x.info, x.busy,
           x.state, x.completed);
}

void to_json(nlohmann::json& j, const usage& x);
void to_json(nlohmann::json& j, const workstream_result& x);
void to_json(nlohmann::json& j, const check_result& x);
void to_json(nlohmann::json& j, const gate_result& x);
void to_json(nlohmann::json& j, const run_report& x);
void to_json(nlohmann::json& j, const event& x);
/// `x` as one line of JSON, the text `to_json` makes, written without
/// building a JSON tree (events and reports are the journal's bulk).
std::string json_text(const event& x);
std::string json_text(const run_report& x);
/// Appends `json_text(x)` to `out`.
void append_json(std::string& out, const event& x);
void to_json(nlohmann::json& j, const run_snapshot& x);
void to_json(nlohmann::json& j, const node_info& x);
void to_json(nlohmann::json& j, const node_status& x);

void from_json(const nlohmann::json& j, usage& x);
void from_json(const nlohmann::json& j, workstream_result& x);
void from_json(const nlohmann::json& j, check_result& x);
void from_json(const nlohmann::json& j, gate_result& x);
void from_json(const nlohmann::json& j, run_report& x);
void from_json(const nlohmann::json& j, event& x);
void from_json(const nlohmann::json& j, run_snapshot& x);

/// A new secret: 128 random bits as 32 hexadecimal digits.
std::string make_secret();

} // namespace troupe
