#pragma once

// The orchestrator's state and the steps its handlers are made of, shared
// by orchestrator*.cpp: runs (orchestrator_run.cpp), their end
// (orchestrator_finish.cpp), their dispatch
// (orchestrator_dispatch.cpp), gates (orchestrator_gates.cpp), nodes and
// the watchdog (orchestrator_nodes.cpp), and the behaviour
// (orchestrator.cpp).

#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/typed_event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "integrator.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/journal.hpp"

namespace troupe::orch {

using clock_type = std::chrono::steady_clock;

constexpr size_t npos = static_cast<size_t>(-1);

// Bytes of a failed attempt's output handed to the next attempt.
constexpr size_t retry_context_limit = 8000;

/// Seconds since the Unix epoch.
inline double unix_now() {
  return std::chrono::duration<double>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

inline std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}


/// A workstream's life in one run.
struct ws_run {
  /// The plan's workstream, or a gate's fixer in `run_state::fixers`.
  const workstream* def = nullptr;
  ws_state state = ws_state::pending;
  /// Attempts charged to the retry budget.
  int32_t attempts = 0;
  /// Dispatches made; a result must carry the latest to be accepted.
  int32_t dispatches = 0;
  size_t remaining_deps = 0;
  size_t remaining_gates = 0;
  std::vector<size_t> dependents;
  /// Gates that list this workstream in `after`.
  std::vector<size_t> gates_after;
  /// For remediation workstreams: the gate they fix.
  size_t fixes_gate = npos;
  /// For a gate's command checks, run like work: the gate, and which of
  /// its checks this is.
  size_t checks_gate = npos;
  size_t check_index = 0;
  /// Set for the agent that writes the run's synthesis, which reads every
  /// result once everything else has ended.
  bool synthesizes = false;
  size_t pool = npos;
  /// Its queue in `run_state::shapes`, once it was first ready.
  size_t shape = npos;
  /// The secret of the current dispatch, which its node's answer carries.
  uint64_t key = 0;
  bool waiting_reported = false;
  clock_type::time_point dispatched_at;
  /// When the watchdog gives up on the current dispatch.
  clock_type::time_point deadline;
  workstream_result result;
  std::vector<workstream_result> failures;
  /// For an `until` workstream: the iterations whose check failed, and
  /// every iteration's verdict so far.
  std::vector<workstream_result> iteration_results;
  std::vector<check_result> iterations;
  /// The share of the run's budget its attempt in flight may spend.
  double reserved_usd = 0;
  /// For a sub-plan's workstreams: the workstream whose plan they are, and
  /// how deep that nests (0 for the plan's own).
  size_t parent = npos;
  int32_t depth = 0;
  /// For a workstream whose work made a plan: its children, how many have
  /// not ended, the plan's gates, and the result of the work that made it.
  std::vector<size_t> children;
  size_t children_left = 0;
  std::vector<size_t> child_gates;
  workstream_result plan_result;
  /// In a run on a git repository: set while its change is with the
  /// integrator; once integrated, the file the change is kept in (under the
  /// run directory); why it did not apply, when a gate's `conflicts` check
  /// is to say so; and an `until` workstream's change so far, which its
  /// next iteration starts from.
  bool integrating = false;
  std::string diff_file;
  std::string conflict;
  std::string carry;
};

/// Ready workstreams that need the same kind of node (persona, executor
/// and model) and fall under the same limits, oldest first: a workstream no
/// node can take now, or that a full limit holds, waits in its own queue
/// without holding up the others.
struct shape_queue {
  std::string persona;
  std::string executor;
  /// Its tier, and the model it names (empty when it names none).
  std::string tier;
  std::string model;
  /// (when it became ready, workstream), in that order.
  std::deque<std::pair<uint64_t, size_t>> ready;
  /// Set while no node offers this shape at all; cleared when nodes change.
  bool waiting = false;
};

/// A dispatch decided and not sent yet: it goes out once the journal has
/// it.
struct outgoing_dispatch {
  size_t idx = 0;
  size_t pool = 0;
  workstream_spec spec;
};

struct gate_run {
  gate def;
  gate_state state = gate_state::pending;
  size_t remaining_after = 0;
  int32_t fixes = 0;
  std::vector<size_t> guarded;
  gate_result result;
  /// The evaluation in progress: the next check to run, and the verdicts
  /// so far.
  size_t next_check = 0;
  std::vector<check_result> round;
  /// Command checks dispatched so far, to name each one.
  int32_t commands_run = 0;
  /// For a sub-plan's gate: the workstream whose plan it is in.
  size_t parent = npos;
};

struct run_state {
  std::string id;
  /// Never changed once the run is open: the journal's writer reads it too.
  std::shared_ptr<const plan> p;
  run_options opts;
  /// Who follows the run: the submitter's observer, and any that
  /// subscribed since.
  std::vector<observer_actor> observers;
  std::vector<ws_run> ws;
  /// Workstream ids (viewing the plan's or the fixers' strings) to indexes.
  std::unordered_map<std::string_view, size_t> index;
  std::vector<gate_run> gates;
  /// Workstreams made by gates (fixers and command checks) and the
  /// synthesis agent's; a deque keeps them in place.
  std::deque<workstream> fixers;
  /// The synthesis agent's workstream, once it was started.
  size_t synthesis = npos;
  /// The workstreams of sub-plans, their ids prefixed with their parent's;
  /// a deque keeps them in place.
  std::deque<workstream> children;
  std::vector<shape_queue> shapes;
  std::unordered_map<std::string, size_t> shape_index;
  /// Workstreams in flight under each of the plan's limits, by persona
  /// ("p" + name) and by model or tier ("m" + name).
  std::unordered_map<std::string, int32_t> limited;
  /// Counts workstreams becoming ready, to dispatch the oldest first.
  uint64_t ready_seq = 0;
  int32_t in_flight = 0;
  int32_t max_parallel = 1;
  size_t terminal = 0;
  int32_t gates_busy = 0;
  bool cancelling = false;
  bool user_cancelled = false;
  /// What the agents' attempts spent, and what those in flight may still
  /// spend (their shares), against `settings.max_cost_usd`.
  double spent_usd = 0;
  double reserved_usd = 0;
  /// Set when the budget left work unstarted.
  bool budget_stopped = false;
  /// Set when a step of this run threw: the run fails with it.
  std::string internal_error;
  bool finishing = false;
  clock_type::time_point start;
  uint64_t seq = 0;
  /// When it started, in seconds since the Unix epoch.
  double started_at = 0;
  /// Events not sent yet: each handler sends what it produced as one batch.
  std::vector<event> outbox;
  /// Dispatches `pump` decided on, sent once journaled.
  std::vector<outgoing_dispatch> outgoing;
  /// Dispatches waiting for the journal's ticket that holds them.
  std::deque<std::pair<uint64_t, outgoing_dispatch>> parked;
  /// The journal's ticket of the run's last events, and the last ticket
  /// known committed.
  uint64_t last_ticket = 0;
  uint64_t committed_ticket = 0;
  /// Batches of events handed to the journal and not yet to observers: a
  /// batch is one message that all of them share.
  std::vector<caf::message> sealed;
  /// Set when `outbox` holds an event that something must not follow
  /// before it is journaled (a result, a gate's verdict, a cancel).
  bool must_journal = false;
  /// Set once writing its journal failed: the run fails, unjournaled.
  bool journal_failed = false;
  /// The plan's workstreams that have ended.
  int64_t plan_ended = 0;
  /// Set while the run is rebuilt from its journal (`resume`): events are
  /// neither sent nor journaled again, and work is not really dispatched.
  bool replaying = false;
  /// Workstreams that were in flight when the run was interrupted, and ran
  /// again once it was resumed.
  std::vector<std::string> rerun;
  /// In a run on a git repository: its integrator, everything integrated
  /// so far as one diff from the base, and who changed each file.
  orch::integrator_actor integrator;
  std::string integrated_patch;
  std::map<std::string, std::set<std::string>> file_writers;

  double now_s() const {
    return std::chrono::duration<double>(clock_type::now() - start).count();
  }
};

/// A node's pool as the orchestrator sees it:
///
///   joined -> draining -> left
///      \---------\------> lost   (connection gone: its work runs elsewhere)
struct pool_entry {
  pool_actor handle;
  node_info info;
  /// The secret the node chose when joining; drain and leave carry it.
  std::string key;
  int32_t busy = 0;
  std::string state = "joined";
  int64_t completed = 0;
  /// Dispatches the watchdog gave up on, by key, with the time by which the
  /// node must have answered them (their slots stay taken until it does):
  /// a node that lets one pass is declared lost.
  std::map<uint64_t, clock_type::time_point> overdue;

  bool active() const {
    return state == "joined" || state == "draining";
  }
};

/// A run that has ended and waits for its synthesized report.
struct reporting_run {
  /// Its state when it ended.
  run_snapshot last;
  /// Who gets the report; observers may still join.
  std::vector<observer_actor> observers;
  /// Report queries that came meanwhile.
  std::vector<caf::typed_response_promise<run_report>> waiters;
};

struct orchestrator_state {
  static inline const char* name = "troupe.orchestrator";
  orchestrator_config cfg;
  bool shutting_down = false;
  /// Runs whose reports the synthesizer is writing, by id.
  std::map<std::string, reporting_run> reporting;
  std::vector<caf::typed_response_promise<bool>> shutdown_waiters;
  std::map<std::string, run_state> runs;
  std::vector<pool_entry> pools;
  synthesizer_actor synthesizer;
  /// Writes `cfg.journal` on a thread of its own.
  std::unique_ptr<journal_writer> writer;
  /// Carried by the writer's notices, so nobody else can send them.
  uint64_t journal_key = 0;
  bool watchdog_armed = false;
  /// Carried by the watchdog's own ticks, so nobody else can send them.
  uint64_t watchdog_key = 0;
  /// Makes dispatch keys.
  std::mt19937_64 keys;
  /// Peers already warned about, with what they were refused: each kind of
  /// refusal is logged once per peer.
  std::set<std::string> refused_peers;
};

using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;
constexpr watchdog_atom watchdog_atom_v{};
using journaled_atom = caf::atom_constant<caf::atom("journaled")>;
constexpr journaled_atom journaled_atom_v{};

// How often the watchdog looks for dispatches past their deadline.
constexpr auto watchdog_interval = std::chrono::seconds(1);

/// The orchestrator's own view of itself: its public interface plus the
/// watchdog's tick.
using orchestrator_impl = orchestrator_actor::extend<
  caf::reacts_to<watchdog_atom, uint64_t>,
  caf::reacts_to<journaled_atom, uint64_t /* key */, uint64_t /* ticket */,
                 std::string /* error */>>;

using self_ptr = orchestrator_impl::stateful_pointer<orchestrator_state>;


/// Logs, once per peer and kind, that a message from the current sender
/// was refused as `why`.
void refused(self_ptr self, const std::string& why);

// -- runs: orchestrator_run.cpp, orchestrator_dispatch.cpp -----------------

std::string make_run_id();

/// Makes the run's next event and queues it for `flush`, which sends the
/// queue; the caller may add its payload.
event& emit(self_ptr self, run_state& run, event_kind kind,
            std::string subject, std::string state, int32_t attempt = 0,
            std::string node = {}, std::string message = {});
void flush(self_ptr self, run_state& run);
/// Seals the run's new events into one message and queues it with the
/// journal's writer (observers get the same message on `flush`); returns
/// the ticket that holds them (0 without a journal, or when nothing was
/// queued).
uint64_t journal_events(self_ptr self, run_state& run);
/// Sends what `dispatch` prepared, once journaled.
void send_dispatches(self_ptr self, run_state& run);
/// Takes back the run's dispatches that wait for the journal.
void unsend_parked(self_ptr self, run_state& run);
/// The journal's writer committed everything up to `ticket` (or failed
/// to, saying why): dispatches waiting for it go out.
void journaled(self_ptr self, uint64_t ticket, const std::string& error);

/// The context a dispatch of `w` carries, as JSON text: the handoff
/// contract (orchestrator_context.cpp).
std::string make_context(const run_state& run, const ws_run& w);
/// Dispatches what the run's limits and the pools allow.
void pump(self_ptr self, run_state& run);
/// Counts a dispatch of workstream `idx` against the limits it falls under,
/// or (`release`) its end.
void count_limits(run_state& run, size_t idx, bool release);
/// `pump` and `flush` every run.
void pump_all(self_ptr self);
void make_ready(self_ptr self, run_state& run, size_t idx);
/// Queues a workstream that is `ready` for dispatch.
void enqueue(self_ptr self, run_state& run, size_t idx);
/// Lets every run look again for nodes (one joined, or left).
void nodes_changed(self_ptr self);
/// Sends the workstream to `pool_idx`; while the run replays, only marks
/// it dispatched (`pool_idx` is then `npos`).
void dispatch(self_ptr self, run_state& run, size_t idx, size_t pool_idx);
/// Takes back a dispatch that will never be answered, without charging its
/// attempt: the workstream is ready again (true), or, in a run being
/// cancelled, ends cancelled with `cancel_why` (false).
bool requeue(self_ptr self, run_state& run, size_t idx,
             const std::string& cancel_why);
/// Takes the end of the workstream's current dispatch into account;
/// `pool_idx` is `npos` for a result replayed from the journal.
void accept_attempt(self_ptr self, run_state& run, size_t idx,
                    size_t pool_idx, workstream_result r);
/// An iteration of an `until` workstream succeeded and its check ran: the
/// workstream succeeds (the check passed), runs again, or fails at its
/// bound.
void iteration_ended(self_ptr self, run_state& run, size_t idx,
                     workstream_result r);
void on_attempt_end(self_ptr self, const std::string& run_id, size_t idx,
                    int32_t token, size_t pool_idx, workstream_result r);
void block(self_ptr self, run_state& run, size_t idx, const std::string& why);
/// Ends a workstream that did not (or no longer) run with `status` and
/// `why` as its summary.
void end_unrun(self_ptr self, run_state& run, size_t idx, ws_state status,
               std::string why);
void start_cancel(self_ptr self, run_state& run, const std::string& why);
void mark_terminal(self_ptr self, run_state& run, size_t idx,
                   workstream_result r);
/// Sends the report once everything has ended.
void maybe_finish(self_ptr self, const std::string& run_id);
/// How the run's work went, whatever its synthesis agent does.
run_status work_status(const run_state& run);
/// Once everything else has ended in a run that goes on, starts the agent
/// that writes its synthesis, if its plan has one; true if it did.
bool maybe_synthesize(self_ptr self, run_state& run);
void report_delivered(self_ptr self, run_report report, bool journaled);
/// Has the synthesizer fold `report` of a run of `p`, then delivers it.
void synthesize_report(self_ptr self, plan p, run_report report,
                       bool journaled);
/// Builds a run's bookkeeping from a validated plan.
void prepare(run_state& run);
/// Wires gate `gi` of `run.gates` (its `def` set) to the workstreams it
/// waits for and those it guards.
void wire_gate(run_state& run, size_t gi);

// -- sub-plans: orchestrator_subplans.cpp -------------------------------------

/// The work of `idx` (`output: plan`) succeeded with `r`: runs the plan in
/// it as the workstream's children and says true; or, when that plan
/// cannot run (invalid, too deep, too many workstreams), makes `r` a
/// failure saying why and says false.
bool expand(self_ptr self, run_state& run, size_t idx, workstream_result& r);
/// A child of `parent` ended: once all have, and the sub-plan's gates
/// passed or failed, so does the parent.
void child_ended(self_ptr self, run_state& run, size_t parent);
/// Gate `gi` reached its verdict: if it is a sub-plan's, the parent may end.
void child_gate_ended(self_ptr self, run_state& run, size_t gi);
/// The order a report lists the run's workstreams in: the plan's, each
/// followed by its children (depth first), then the rest.
std::vector<size_t> report_order(const run_state& run);
/// The run's state now, with every workstream unless `summary_only`.
run_snapshot snapshot(self_ptr self, const run_state& run,
                      bool summary_only = false);
/// Sends `msg` to observer `to` as it is: its content is shared, not
/// copied, with every other receiver of `msg`.
void send_shared(self_ptr self, const observer_actor& to,
                 const caf::message& msg);
/// Adds a run of validated plan `p`, prepared, that started at `started_at`
/// (seconds since the Unix epoch).
run_state& open_run(self_ptr self, const std::string& id, plan p,
                    run_options opts, observer_actor observer,
                    int32_t max_parallel, double started_at);
/// Continues interrupted run `run_id` (or the one its start names) from
/// the journal; sets `id` to its full id.
caf::error resume_run(self_ptr self, const std::string& run_id,
                      run_options opts, observer_actor observer,
                      std::string& id);

/// What failing with `e` is called: a journal's failure, or an internal
/// error.
std::string failure_reason(const std::exception& e);
/// Fails run `run_id` for `why` (one of its steps threw): cancels what
/// runs and reports it failed, or, should even that throw, drops it and
/// tells its observer.
void fail_run(self_ptr self, const std::string& run_id,
              const std::string& why);

/// Calls `f()` for a step of run `run_id`. Code the orchestrator runs does
/// not throw on bad data; should something throw anyway (a library, memory),
/// that run fails with the error instead of the orchestrator ending, and
/// every run on it with it.
template <class F>
void guarded(self_ptr self, const std::string& run_id, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    fail_run(self, run_id, failure_reason(e));
  }
}

// -- runs on a repository: orchestrator_repo.cpp -----------------------------

bool on_repository(const run_state& run);
/// Checks the repository a run asks for (`opts.repo`), which must be a git
/// checkout here, and gives the run its directory, where its work runs;
/// says what is wrong, or nothing.
std::string settle_repository(run_options& opts, const std::string& id,
                              const std::string& node);
/// Whether `w`'s change is captured and integrated: the work of a writing
/// agent (the plan's `general` workstreams, and gates' fixers).
bool writes(const ws_run& w);
/// Spawns the run's integrator, on a repository.
void start_integrator(self_ptr self, run_state& run);
/// The workspace a dispatch of `w` runs in; none off a repository.
workspace_spec workspace_for(const run_state& run, const ws_run& w);
/// What a fixer of gate `g` may change: what the gate's work owns.
std::vector<std::string> fixer_owns(const run_state& run, const gate_run& g);
/// Hands the change of a successful attempt to the integrator and says
/// true: the attempt is accepted once integrated (or refused: not owned,
/// not applying). False when there is nothing to integrate.
bool integrate_result(self_ptr self, run_state& run, size_t idx,
                      size_t pool_idx, workstream_result& r);
/// The `conflicts` check of gate `g` on a repository: the changes of its
/// work that did not apply.
check_result check_integration(const run_state& run, const gate_run& g);
/// The run's integrated changes, in the order they are committed.
change_set changes_of(const run_state& run);

// -- queries: orchestrator_queries.cpp ----------------------------------------

/// Sends `observer` the state of run `run_id` so far, then every event and
/// the report; an ended run that waits for its report takes observers too.
caf::result<std::string> subscribe(self_ptr self, const std::string& run_id,
                                   observer_actor observer);
bool unsubscribe(self_ptr self, const std::string& run_id,
                 const observer_actor& observer);
/// Every run here, then those only the journal holds.
caf::result<std::vector<run_snapshot>> list_runs(self_ptr self);
caf::result<run_snapshot> status_of(self_ptr self, const std::string& run_id);
/// Cancels `run` at somebody's request; `why` says whose.
void cancel_run(self_ptr self, run_state& run, const std::string& why);

/// Before `idx` is dispatched: under a budget, reserves the agent's share
/// of what is left (`reserved_usd`) and says true; false when even its
/// lowest estimate would pass the budget.
bool reserve_budget(run_state& run, size_t idx);

/// An attempt of `idx` ended (or went back to the queue): what it spent is
/// spent, and its share is free again.
void settle_budget(run_state& run, size_t idx, const workstream_result* r);

/// Adds the usage of `w`'s failed attempts to `r`, its last: every
/// attempt's tokens were paid for, and the workstream reports them all.
void add_failed_usage(const ws_run& w, workstream_result& r);

/// Starts no more work, so as not to pass the budget: what has not
/// started ends unrun; agents in flight finish within their shares.
void stop_for_budget(self_ptr self, run_state& run, size_t idx);
caf::result<std::string> abort_run(self_ptr self, const std::string& run_id);
/// A finished run's report: from the journal, or once it is written.
caf::result<run_report> report_of(self_ptr self, const std::string& run_id);

// -- resuming: orchestrator_resume.cpp ----------------------------------------

/// The journal, once everything queued for it is in: reading it then sees
/// what this orchestrator wrote.
std::shared_ptr<journal>& journal_to_read(self_ptr self);
/// Resumes the journal's unfinished runs that no other process runs.
void resume_unfinished(self_ptr self);
/// Validates a plan against the built-in executors and the nodes' ones.
validation_options offered_executors(self_ptr self);

/// Rebuilds `run` (prepared from its journaled plan) from its journaled
/// `events`, then goes on: work that was in flight runs again.
void replay(self_ptr self, run_state& run, const std::vector<event>& events);

// -- gates: orchestrator_gates.cpp --------------------------------------------

/// Starts a round of the gate's checks.
void evaluate_gate(self_ptr self, run_state& run, size_t gi);
/// A gate's command check (workstream `idx`) ended: on to the next check.
void check_ended(self_ptr self, run_state& run, size_t idx);

// -- nodes: orchestrator_nodes.cpp --------------------------------------------

/// Takes in a node that asks to join with `req`, its agents behind `pool`;
/// returns the coordinator's name.
caf::result<std::string> join_node(self_ptr self, join_request& req,
                                   pool_actor pool);
void node_lost(self_ptr self, size_t pool_idx, const std::string& why);
void arm_watchdog(self_ptr self);
void watchdog(self_ptr self);

} // namespace troupe::orch
