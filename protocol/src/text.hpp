#pragma once

#include <cstddef>
#include <string>

namespace troupe::detail {

/// Edit distance with transpositions (optimal string alignment), for "did
/// you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

} // namespace troupe::detail
