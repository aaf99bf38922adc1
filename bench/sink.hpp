#pragma once

#include <vector>

#include <caf/all.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe::bench {

/// An observer that drops events (receiving them is part of the cost,
/// showing them is not) and tells `inbox` whether the run succeeded.
inline observer_actor::behavior_type sink(observer_actor::pointer self,
                                          caf::actor inbox) {
  return {
    [](const std::vector<event>&) {
      // nop
    },
    [=](const run_report& r) {
      caf::anon_send(inbox, r.status == run_status::succeeded);
      self->quit();
    },
  };
}

} // namespace troupe::bench
