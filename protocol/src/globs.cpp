// Ownership globs: whether a path matches one, and whether two of them can
// match the same path.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <algorithm>
#include <utility>
#include <vector>

#include "troupe/protocol/plan_io.hpp"

namespace troupe {

namespace {

/// A glob as a nondeterministic automaton: state i means "tokens before i
/// matched"; `accepting[i]` marks the states where a whole path matched.
struct glob_automaton {
  enum kind_t : uint8_t {
    literal, // the character `c`
    one,     // `?`: one character but '/'
    star,    // `*`: any run without '/'
    any,     // `**`: any run
    opt,     // before `dirs`: reads nothing, and may skip it
    dirs,    // `**/` once started: any run ending in '/'
  };
  struct token {
    kind_t kind;
    char c;
  };
  std::vector<token> tokens;
  std::vector<bool> accepting;

  explicit glob_automaton(std::string p) {
    while (p.compare(0, 2, "./") == 0)
      p.erase(0, 2);
    // A plain path, or one ending in '/', owns everything below it too.
    bool subtree = !p.empty()
      && (p.back() == '/' || p.find_first_of("*?") == std::string::npos);
    while (!p.empty() && p.back() == '/')
      p.pop_back();
    for (size_t i = 0; i < p.size();) {
      if (p[i] == '?') {
        tokens.push_back({one, 0});
        ++i;
      } else if (p[i] != '*') {
        tokens.push_back({literal, p[i]});
        ++i;
      } else {
        auto j = p.find_first_not_of('*', i);
        if (j == std::string::npos)
          j = p.size();
        if (j - i == 1) {
          tokens.push_back({star, 0});
        } else if ((i == 0 || p[i - 1] == '/') && j < p.size() && p[j] == '/') {
          // `a/**/z` matches `a/z`: the slash after `**` is part of it.
          tokens.push_back({opt, 0});
          tokens.push_back({dirs, 0});
          ++j;
        } else {
          tokens.push_back({any, 0});
        }
        i = j;
      }
    }
    auto end = tokens.size();
    if (subtree) {
      tokens.push_back({literal, '/'});
      tokens.push_back({any, 0});
    }
    accepting.assign(tokens.size() + 1, false);
    accepting[end] = true;
    accepting[tokens.size()] = true;
  }

  size_t size() const {
    return tokens.size() + 1;
  }

  /// Where state `i` goes without reading, if anywhere: past a `*` or
  /// `**` matching nothing; into `**/`, or past it.
  void skips(size_t i, std::vector<size_t>& to) const {
    to.clear();
    if (i >= tokens.size())
      return;
    auto k = tokens[i].kind;
    if (k == star || k == any || k == opt)
      to.push_back(i + 1);
    if (k == opt)
      to.push_back(i + 2);
  }

  /// The states reading `c` in state `i` leads to.
  void step(size_t i, char c, std::vector<size_t>& next) const {
    next.clear();
    if (i >= tokens.size())
      return;
    auto& t = tokens[i];
    switch (t.kind) {
      case literal:
        if (c == t.c)
          next.push_back(i + 1);
        break;
      case one:
        if (c != '/')
          next.push_back(i + 1);
        break;
      case star:
        if (c != '/')
          next.push_back(i);
        break;
      case any:
        next.push_back(i);
        break;
      case opt:
        break;
      case dirs:
        next.push_back(i);
        if (c == '/')
          next.push_back(i + 1);
        break;
    }
  }
};

} // namespace

bool glob_matches(const std::string& glob, std::string_view path) {
  glob_automaton g{glob};
  while (path.compare(0, 2, "./") == 0)
    path.remove_prefix(2);
  // The set of states the path read so far leads to, closed under skips.
  std::vector<bool> now(g.size(), false), next(g.size(), false);
  std::vector<size_t> skip;
  // Skips lead forward only: one pass in order closes the set.
  auto close = [&](std::vector<bool>& set) {
    for (size_t i = 0; i < g.size(); ++i) {
      if (!set[i])
        continue;
      g.skips(i, skip);
      for (auto j : skip)
        set[j] = true;
    }
  };
  now[0] = true;
  close(now);
  std::vector<size_t> to;
  for (char c : path) {
    std::fill(next.begin(), next.end(), false);
    bool any = false;
    for (size_t i = 0; i < g.size(); ++i) {
      if (!now[i])
        continue;
      g.step(i, c, to);
      for (auto j : to)
        next[j] = any = true;
    }
    if (!any)
      return false;
    close(next);
    now.swap(next);
  }
  for (size_t i = 0; i < g.size(); ++i)
    if (now[i] && g.accepting[i])
      return true;
  return false;
}

bool globs_overlap(const std::string& a, const std::string& b) {
  glob_automaton x{a}, y{b};
  // Only whether a character equals some literal, or is '/', matters; one
  // character no pattern names stands for all the others.
  std::set<char> alphabet{'/'};
  for (auto* g : {&x, &y})
    for (auto& t : g->tokens)
      if (t.kind == glob_automaton::literal)
        alphabet.insert(t.c);
  for (int c = 1; c < 256; ++c)
    if (alphabet.count(static_cast<char>(c)) == 0) {
      alphabet.insert(static_cast<char>(c));
      break;
    }
  // Breadth-first search of the product automaton: some path matches both
  // patterns iff a pair of accepting states is reachable.
  std::vector<bool> seen(x.size() * y.size(), false);
  std::vector<std::pair<size_t, size_t>> todo{{0, 0}};
  seen[0] = true;
  auto visit = [&](size_t i, size_t j) {
    if (!seen[i * y.size() + j]) {
      seen[i * y.size() + j] = true;
      todo.push_back({i, j});
    }
  };
  std::vector<size_t> next_x, next_y;
  while (!todo.empty()) {
    auto [i, j] = todo.back();
    todo.pop_back();
    if (x.accepting[i] && y.accepting[j])
      return true;
    x.skips(i, next_x);
    for (auto i2 : next_x)
      visit(i2, j);
    y.skips(j, next_y);
    for (auto j2 : next_y)
      visit(i, j2);
    for (auto c : alphabet) {
      x.step(i, c, next_x);
      if (next_x.empty())
        continue;
      y.step(j, c, next_y);
      for (auto i2 : next_x)
        for (auto j2 : next_y)
          visit(i2, j2);
    }
  }
  return false;
}

} // namespace troupe
