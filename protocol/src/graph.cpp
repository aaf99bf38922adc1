#include "graph.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <utility>

namespace troupe::detail {

std::vector<size_t> components(const std::vector<std::vector<size_t>>& succ) {
  auto n = succ.size();
  const auto none = SIZE_MAX;
  std::vector<size_t> idx(n, none), low(n, 0), comp(n, none), stack;
  std::vector<bool> on_stack(n, false);
  size_t counter = 0, comps = 0;
  std::vector<std::pair<size_t, size_t>> work; // vertex, next edge
  for (size_t root = 0; root < n; ++root) {
    if (idx[root] != none)
      continue;
    work.push_back({root, 0});
    while (!work.empty()) {
      auto& [v, e] = work.back();
      if (e == 0 && idx[v] == none) {
        idx[v] = low[v] = counter++;
        stack.push_back(v);
        on_stack[v] = true;
      }
      if (e < succ[v].size()) {
        auto w = succ[v][e++];
        if (idx[w] == none)
          work.push_back({w, 0});
        else if (on_stack[w])
          low[v] = std::min(low[v], idx[w]);
        continue;
      }
      auto done = v;
      work.pop_back();
      if (!work.empty())
        low[work.back().first] = std::min(low[work.back().first], low[done]);
      if (low[done] == idx[done]) {
        size_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          comp[w] = comps;
        } while (w != done);
        ++comps;
      }
    }
  }
  return comp;
}

std::vector<size_t> shortest_cycle(size_t v,
                                   const std::vector<std::vector<size_t>>& succ,
                                   const std::vector<size_t>& comp) {
  std::vector<size_t> parent(succ.size(), SIZE_MAX);
  std::deque<size_t> queue{v};
  while (!queue.empty()) {
    auto u = queue.front();
    queue.pop_front();
    for (auto w : succ[u]) {
      if (comp[w] != comp[v])
        continue;
      if (w == v) {
        std::vector<size_t> cycle{v};
        for (auto x = u; x != v; x = parent[x])
          cycle.push_back(x);
        cycle.push_back(v);
        std::reverse(cycle.begin() + 1, cycle.end() - 1);
        return cycle;
      }
      if (parent[w] == SIZE_MAX) {
        parent[w] = u;
        queue.push_back(w);
      }
    }
  }
  return {};
}

std::vector<bool> ancestors(size_t v,
                            const std::vector<std::vector<size_t>>& succ) {
  std::vector<bool> seen(succ.size(), false);
  std::vector<size_t> todo{v};
  while (!todo.empty()) {
    auto u = todo.back();
    todo.pop_back();
    for (auto w : succ[u])
      if (!seen[w]) {
        seen[w] = true;
        todo.push_back(w);
      }
  }
  return seen;
}

} // namespace troupe::detail
