#pragma once

// YAML and JSON text to JSON with bounds on depth and on values (YAML
// aliases expanded), so that no text can make it grow without bound. For
// protocol/src.

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"

namespace troupe::detail {

// Limits on what parsing may cost, far beyond real plans; past one,
// parsing stops with an error instead of growing without bound.

// Deeper YAML or JSON is refused; it also stops self-referencing YAML
// aliases (`&a [*a]`) from recursing forever.
inline constexpr size_t max_depth = 64;

// Values (scalars, arrays and objects; keys not counted) a plan may hold,
// YAML aliases expanded: nine lines of `&b [*a,*a,*a,*a,*a,*a,*a,*a,*a]`
// spell out 387,420,489. yaml-cpp takes some 500 bytes a node, so this also
// bounds what it builds.
inline constexpr size_t max_values = 1'000'000;

/// Parses JSON `text` into `result`; false, saying why (with line and
/// column) in `out`, when it is not JSON or passes a bound.
bool parse_bounded_json(const std::string& text, nlohmann::json& result,
                        diagnostics& out);

/// Parses YAML `text` into `result` as JSON; false, saying why in `out`,
/// when it is not YAML, or passes a bound. Strings come out as valid UTF-8.
bool parse_bounded_yaml(const std::string& text, nlohmann::json& result,
                        diagnostics& out);

} // namespace troupe::detail
