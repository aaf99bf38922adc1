#pragma once

#include <cstdint>

#include <caf/fwd.hpp>

#include "troupe/protocol/result.hpp" // protocol_version

namespace troupe {

/// Registers every Troupe message type (and the `troupe` error category)
/// with `cfg`. Nodes, tests and embedding programs all call it, so every
/// process uses the same wire names.
void add_message_types(caf::actor_system_config& cfg);

} // namespace troupe
