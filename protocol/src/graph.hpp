#pragma once

// A plan's dependency graph as adjacency lists (`succ[v]`: what v depends
// on): components, cycles, ancestors. Iterative throughout, so deep plans
// cannot overflow the stack. For protocol/src.

#include <cstddef>
#include <vector>

namespace troupe::detail {

/// Strongly connected components (Tarjan's); `comp[v]` numbers v's
/// component.
std::vector<size_t> components(const std::vector<std::vector<size_t>>& succ);

/// The shortest cycle through `v` inside its component, as v, ..., v;
/// empty when there is none.
std::vector<size_t> shortest_cycle(size_t v,
                                   const std::vector<std::vector<size_t>>& succ,
                                   const std::vector<size_t>& comp);

/// Everything `v` depends on, directly or not.
std::vector<bool> ancestors(size_t v,
                            const std::vector<std::vector<size_t>>& succ);

} // namespace troupe::detail
