#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

using run_atom = caf::atom_constant<caf::atom("run")>;
constexpr run_atom run_atom_v{};
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
constexpr cancel_atom cancel_atom_v{};
using dispatch_atom = caf::atom_constant<caf::atom("dispatch")>;
constexpr dispatch_atom dispatch_atom_v{};
using started_atom = caf::atom_constant<caf::atom("started")>;
constexpr started_atom started_atom_v{};
using progress_atom = caf::atom_constant<caf::atom("progress")>;
constexpr progress_atom progress_atom_v{};
using synthesize_atom = caf::atom_constant<caf::atom("synthesize")>;
constexpr synthesize_atom synthesize_atom_v{};
using assess_atom = caf::atom_constant<caf::atom("assess")>;
constexpr assess_atom assess_atom_v{};
using join_atom = caf::atom_constant<caf::atom("join")>;
constexpr join_atom join_atom_v{};
using done_atom = caf::atom_constant<caf::atom("done")>;
constexpr done_atom done_atom_v{};
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
constexpr timeout_atom timeout_atom_v{};
using status_atom = caf::atom_constant<caf::atom("status")>;
constexpr status_atom status_atom_v{};
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
constexpr nodes_atom nodes_atom_v{};
using drain_atom = caf::atom_constant<caf::atom("drain")>;
constexpr drain_atom drain_atom_v{};
using leave_atom = caf::atom_constant<caf::atom("leave")>;
constexpr leave_atom leave_atom_v{};
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
constexpr shutdown_atom shutdown_atom_v{};
using resume_atom = caf::atom_constant<caf::atom("resume")>;
constexpr resume_atom resume_atom_v{};
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
constexpr subscribe_atom subscribe_atom_v{};
using unsubscribe_atom = caf::atom_constant<caf::atom("unsubscr")>;
constexpr unsubscribe_atom unsubscribe_atom_v{};
using abort_atom = caf::atom_constant<caf::atom("abort")>;
constexpr abort_atom abort_atom_v{};
using report_atom = caf::atom_constant<caf::atom("report")>;
constexpr report_atom report_atom_v{};

/// Receives an attempt's start from wherever it runs, with its dispatch's
/// key, and how far its agent got (`progress_atom`: a line such as "turn 3,
/// 2 tool uses (last: Write), 1200 tokens in").
using progress_actor = caf::typed_actor<
  caf::reacts_to<started_atom, std::string /* run */, std::string /* ws */,
                 int32_t /* attempt */, std::string /* node */,
                 uint64_t /* key */>,
  caf::reacts_to<progress_atom, std::string /* run */, std::string /* ws */,
                 int32_t /* attempt */, uint64_t /* key */,
                 std::string /* how far */>>;

/// Runs one attempt of one workstream; one executor actor per attempt.
using executor_actor = caf::typed_actor<
  caf::replies_to<run_atom, workstream_spec>::with<workstream_result>,
  caf::reacts_to<cancel_atom>>;

/// An agent: takes workstreams for its persona and reports their results.
/// Troupe spawns one per running workstream; an embedding program may give
/// the pool a long-lived one of its own for a persona.
using agent_actor = caf::typed_actor<
  caf::replies_to<dispatch_atom, workstream_spec,
                  progress_actor>::with<workstream_result>,
  caf::reacts_to<cancel_atom, std::string /* run */, std::string /* ws */>>;

/// A node's agent slots. Answers `get_atom` with what it offers, `drain_atom`
/// once nothing runs on it any more; `shutdown_atom` (its coordinator is
/// going away) cancels everything it runs. It answers each dispatch itself
/// (not by delegating), with a result that carries the spec's `key`: the
/// orchestrator takes results only from the pool it asked, with that key.
using pool_actor = caf::typed_actor<
  caf::replies_to<dispatch_atom, workstream_spec,
                  progress_actor>::with<workstream_result>,
  caf::reacts_to<cancel_atom, std::string /* run */, std::string /* ws */>,
  caf::replies_to<caf::get_atom>::with<node_info>,
  caf::replies_to<drain_atom>::with<bool>, caf::reacts_to<shutdown_atom>>;

/// Receives a run's events, in order and in batches (whatever one step of
/// the orchestrator produced), and, last, its report. One that subscribed
/// to a run in progress first gets the run's state so far, then the events
/// after it.
using observer_actor = caf::typed_actor<caf::reacts_to<run_snapshot>,
                                        caf::reacts_to<std::vector<event>>,
                                        caf::reacts_to<run_report>>;

/// Folds a run's results into its report.
using synthesizer_actor = caf::typed_actor<
  caf::replies_to<synthesize_atom, plan, run_report>::with<run_report>>;

/// Assesses plans before they run.
using planner_actor = caf::typed_actor<
  caf::replies_to<assess_atom, plan>::with<plan_assessment>>;

/// Owns runs: takes plans, lends work to pools, tells observers. It is what
/// a coordinator publishes, so every message that changes anything carries
/// a secret: the cluster's token, or a key the sender chose earlier.
///
/// - `run_atom` (with the token in the options) answers with the new run's
///   id; the report goes to the observer. `cancel_atom` needs the run's id
///   and the `cancel_key` its options carried.
/// - `resume_atom` (with the token) continues a journaled run that was
///   interrupted, with the options' `cancel_key` and observer; it answers
///   with the run's full id.
/// - `subscribe_atom` (with the token) adds an observer to a run (by id,
///   or a unique start of it): it gets the run's state, then its events and
///   report; `unsubscribe_atom` takes it off. Observers never slow a run.
/// - `status_atom` (with the token) answers with the state of every run,
///   or of one; `abort_atom` (with the token) cancels a run; `report_atom`
///   (with the token) answers with a finished run's report, from the
///   journal.
/// - `join_atom` lends a pool (checking token and protocol version) and
///   answers with the coordinator's name; `drain_atom` stops new work for
///   the pool and `leave_atom` lets it go, each with the key of the join.
/// - `nodes_atom` (with the token) lists the nodes.
/// - `shutdown_atom` (with the `owner_key` of its config) cancels every run
///   and tells every pool, answering once the runs have reported.
using orchestrator_actor = caf::typed_actor<
  caf::replies_to<run_atom, plan, run_options,
                  observer_actor>::with<std::string>,
  caf::replies_to<resume_atom, std::string /* run */, run_options,
                  observer_actor>::with<std::string>,
  caf::reacts_to<cancel_atom, std::string /* run */, std::string /* key */>,
  caf::replies_to<subscribe_atom, std::string /* run */,
                  std::string /* token */, observer_actor>::with<std::string>,
  caf::replies_to<unsubscribe_atom, std::string /* run */,
                  std::string /* token */, observer_actor>::with<bool>,
  caf::replies_to<status_atom, std::string /* token */>::with<
    std::vector<run_snapshot>>,
  caf::replies_to<status_atom, std::string /* run */,
                  std::string /* token */>::with<run_snapshot>,
  caf::replies_to<abort_atom, std::string /* run */,
                  std::string /* token */>::with<std::string>,
  caf::replies_to<report_atom, std::string /* run */,
                  std::string /* token */>::with<run_report>,
  caf::replies_to<join_atom, join_request, pool_actor>::with<std::string>,
  caf::reacts_to<started_atom, std::string, std::string, int32_t,
                 std::string, uint64_t>,
  caf::reacts_to<progress_atom, std::string, std::string, int32_t, uint64_t,
                 std::string>,
  caf::replies_to<nodes_atom, std::string /* token */>::with<
    std::vector<node_status>>,
  caf::replies_to<drain_atom, pool_actor, std::string /* key */>::with<bool>,
  caf::replies_to<leave_atom, pool_actor, std::string /* key */>::with<bool>,
  caf::replies_to<shutdown_atom, std::string /* key */>::with<bool>>;

} // namespace troupe
