#pragma once

#include <cstdint>

#include <caf/fwd.hpp>

#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/interfaces.hpp"

namespace troupe::bench {

/// An observer that drops events (receiving them is part of the cost,
/// showing them is not) and tells `inbox` whether the run succeeded.
observer_actor::behavior_type sink(observer_actor::pointer self,
                                   caf::actor inbox);

/// How a benchmark's run went.
struct timed_run {
  double wall_s = 0;
  bool succeeded = false;
};

/// Runs `p` to its report through an orchestrator made with `ocfg` and one
/// agent pool of `slots` offering the built-in executors, both gone once
/// it returns; times it from submission to report.
timed_run run_plan(caf::actor_system& sys, const plan& p, int32_t slots,
                   orchestrator_config ocfg = {});

} // namespace troupe::bench
