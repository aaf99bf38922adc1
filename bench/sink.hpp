#pragma once

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe::bench {

/// An observer that drops events (receiving them is part of the cost,
/// showing them is not) and tells `inbox` whether the run succeeded.
observer_actor::behavior_type sink(observer_actor::pointer self,
                                   caf::actor inbox);

} // namespace troupe::bench
