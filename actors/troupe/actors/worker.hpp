#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

/// How a worker finds and joins its coordinator.
struct worker_config {
  std::string host;
  uint16_t port = 0;
  /// Token and node info presented when joining.
  join_request join;
  /// The middleman (plain or TLS) that connects to the coordinator.
  caf::io::middleman_actor middleman;
  std::chrono::milliseconds first_retry{200};
  std::chrono::milliseconds max_retry{5000};
  /// Called once when the worker is done: 0 after draining, non-zero when
  /// the coordinator refused it for good; with a reason.
  std::function<void(int, std::string)> on_exit;
};

/// Spawns the actor that keeps a worker's pool lent to its coordinator:
///
///   +-------------+  connect and join   +--------+  drain_atom  +----------+
///   | connecting  | ------------------> | joined | -----------> | draining |
///   +-------------+                     +--------+              +----------+
///     ^   |  retry with capped backoff      |                        |
///     |   +--<--+                           | coordinator lost       | pool idle,
///     |                                     v                        | left: exit 0
///     |       pool idle (what ran    +----------+
///     +----------------------------- | stopping |
///             is cancelled)          +----------+
///
/// A refusal for a wrong token or protocol version ends it (exit code 2).
/// Send it `drain_atom` (on SIGTERM) to finish what runs and leave. Having
/// lost its coordinator, it joins again under a new key, presenting the
/// lost one (`join_request::previous_key`).
caf::actor spawn_worker_node(caf::actor_system& sys, worker_config cfg,
                             pool_actor pool);

} // namespace troupe
