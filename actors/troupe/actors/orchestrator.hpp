#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

class journal;

/// What an orchestrator stands on.
struct orchestrator_config {
  /// The cluster's shared secret; empty accepts any node and submitter.
  std::string token;
  /// The secret `shutdown_atom` must carry; the program that spawns the
  /// orchestrator keeps it. Empty: shutting down by message is refused.
  std::string owner_key;
  /// How the coordinator introduces itself to joining nodes.
  std::string name = "coordinator";
  /// How long past a workstream's timeout a node may take to answer before
  /// the attempt counts as timed out (the node's executor enforces the
  /// timeout itself; this catches nodes that stopped answering).
  std::chrono::milliseconds dispatch_grace{60000};
  /// Where runs are recorded, if anywhere: each run's plan, then each event
  /// before anything follows from it (a result is journaled before its
  /// dependents are dispatched), then its report. Should writing fail, the
  /// run fails saying so. Only the orchestrator may use it while it runs.
  std::shared_ptr<troupe::journal> journal;
  /// Resumes, as it starts, every run the journal holds unfinished (and no
  /// other process runs): a coordinator restarted on its journal goes on
  /// with its runs once workers join.
  bool resume_unfinished = false;
};

/// Spawns an orchestrator. It owns runs: a run starts with `run_atom` (the
/// answer is its id), dispatches each workstream to the least-loaded pool
/// that fits the moment its dependencies and gates allow, never exceeding
/// the run's parallelism, retries failures within their budget, applies the
/// plan's failure policy, holds gates (with remediation), and finally sends
/// the synthesized report to the run's observer. Pools join with `join_atom`.
///
/// It can be published: a message that lacks its secret changes nothing
/// (and is logged once per peer), and it takes exit, down and error
/// messages only from local actors that no other node can address. So
/// `anon_send_exit` does not stop it; `stop_orchestrator` does.
orchestrator_actor spawn_orchestrator(caf::actor_system& sys,
                                      orchestrator_config cfg);

/// Stops an orchestrator (every run on it ends with it) with an exit
/// message from a local actor of `sys`, which is the only kind it obeys.
void stop_orchestrator(caf::actor_system& sys, const orchestrator_actor& orch);

} // namespace troupe
