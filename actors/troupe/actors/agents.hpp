#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

class executor_registry;

/// Spawns an agent for one workstream: it drives the executor the
/// workstream names, tells `progress` when the attempt starts, answers with
/// the attempt's result and quits. `noop` needs no executor actor. An
/// attempt in a workspace (a run on a git repository) runs in a worktree
/// the agent makes and removes, waiting for git on a thread of its own
/// (`own_thread`): made from the run's repository in the run's directory,
/// or with `workspaces` set (a worker's), under that directory from a cache
/// of the repository there.
agent_actor spawn_agent(caf::actor_system& sys, std::string persona,
                        std::string node,
                        std::shared_ptr<const executor_registry> executors,
                        bool own_thread = false, std::string workspaces = {});

/// What an agent pool offers and how it runs work.
struct pool_config {
  /// Name, slots, personas (empty: any) and executors of the node.
  node_info info;
  std::shared_ptr<const executor_registry> executors;
  /// Long-lived agents that take every workstream of their persona, in
  /// place of Troupe's own agents.
  std::map<std::string, agent_actor> custom_agents;
  /// When set, work runs here whatever directory the run names (a worker
  /// whose checkout lives elsewhere than the submitter's).
  std::string workdir;
  /// A worker's own directory for the worktrees of runs on a git
  /// repository and its cache of their repositories; empty: worktrees of
  /// the run's repository, in the run's directory (the coordinator's
  /// machine).
  std::string workspace_root;
};

/// Spawns a node's agent pool: one agent per running workstream.
pool_actor spawn_agent_pool(caf::actor_system& sys, pool_config cfg);

} // namespace troupe
