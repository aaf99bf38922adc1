#pragma once

// The message types the binary fuzz target reads, in the order its first
// input byte picks them; the seed generator writes values of each.

#include <cstddef>
#include <cstdint>
#include <tuple>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe::fuzz {

/// Every data type `add_message_types` registers (the handles aside).
using message_types
  = std::tuple<executor_spec, workstream, gate_check, remediation, gate,
               plan_settings, synthesis_spec, plan, usage, workstream_spec,
               workstream_result, check_result, gate_result, run_report, event,
               node_info, run_options, join_request, node_status,
               plan_assessment, run_snapshot>;

constexpr size_t type_count = std::tuple_size_v<message_types>;

/// The first byte that selects a whole `caf::message`, read by type name
/// as a node reads what a peer sends.
constexpr uint8_t message_selector = type_count;

/// How many values the first byte selects from.
constexpr size_t selector_count = type_count + 1;

} // namespace troupe::fuzz
