#pragma once

// Checks that plan validation (plan_validate.cpp) shares with the checks of
// a plan's synthesis (plan_checks.cpp).

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"

namespace troupe::detail {

/// Where diagnostics about workstream `i` go: its index and id, as decoding
/// names it.
std::string ws_path(const plan& p, size_t i);

/// Where diagnostics about gate `k` go.
std::string gate_path(const plan& p, size_t k);

/// False, with an error at `path`, for infinities and NaN.
bool check_finite(double x, const std::string& path, diagnostics& out);

/// An executor's kind (known, and runnable here), command and seconds.
void check_executor(const executor_spec& x, const std::string& path,
                    const validation_options& opts, diagnostics& out);

/// The plan's `synthesis`, given the ids of its workstreams and gates.
void validate_synthesis(
  const plan& p, const std::unordered_map<std::string_view, size_t>& ws_ids,
  const std::unordered_map<std::string_view, size_t>& gate_ids,
  const validation_options& opts, diagnostics& out);

} // namespace troupe::detail
