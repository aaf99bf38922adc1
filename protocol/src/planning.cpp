// Assessment of a plan before it runs: phases, critical path, time
// estimates, complexity and strategy (DESIGN.md, "Planning").

#include <algorithm>
#include <cctype>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "text.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"

namespace troupe {

namespace {

/// Seconds a workstream is expected to take: its estimate, or what a sleep
/// executor will sleep.
double weight(const workstream& ws) {
  if (ws.estimate_s > 0)
    return ws.estimate_s;
  if (ws.executor.kind == "sleep" && ws.executor.seconds > 0)
    return ws.executor.seconds;
  return 0;
}

/// The dependency graph as the scheduler sees it, made acyclic and ordered.
struct schedule_graph {
  /// Workstream indices, every one after all its predecessors.
  std::vector<size_t> order;
  /// What each workstream waits for: its dependencies and, when a gate
  /// guards it, every workstream the gate waits for.
  std::vector<std::vector<size_t>> preds;
  std::vector<std::vector<size_t>> succs;
};

schedule_graph make_graph(const plan& p) {
  auto n = p.workstreams.size();
  std::map<std::string, size_t> ids;
  for (size_t i = 0; i < n; ++i)
    ids.emplace(p.workstreams[i].id, i);
  std::vector<std::set<size_t>> preds(n);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i)
    for (auto& d : p.workstreams[i].depends_on)
      if (auto j = ids.find(d); j != ids.end() && j->second != i) {
        preds[i].insert(j->second);
        dependents[j->second].push_back(i);
      }
  // A gate guards what depends, directly or not, on its `after` members
  // without being one: that work waits for all of them.
  for (auto& g : p.gates) {
    std::vector<bool> member(n, false), guarded(n, false);
    std::vector<size_t> todo;
    for (auto& a : g.after)
      if (auto j = ids.find(a); j != ids.end() && !member[j->second]) {
        member[j->second] = true;
        todo.push_back(j->second);
      }
    auto members = todo;
    while (!todo.empty()) {
      auto u = todo.back();
      todo.pop_back();
      for (auto v : dependents[u])
        if (!guarded[v]) {
          guarded[v] = true;
          todo.push_back(v);
        }
    }
    for (size_t v = 0; v < n; ++v)
      if (guarded[v] && !member[v])
        preds[v].insert(members.begin(), members.end());
  }
  // Kahn's algorithm in plan order. Validation refuses cycles; should one
  // come here anyway, its first member goes ahead of what it waits for.
  std::vector<size_t> missing(n), position(n, n);
  std::vector<std::vector<size_t>> succ(n);
  for (size_t v = 0; v < n; ++v) {
    missing[v] = preds[v].size();
    for (auto u : preds[v])
      succ[u].push_back(v);
  }
  std::set<size_t> ready, waiting;
  for (size_t v = 0; v < n; ++v)
    (missing[v] == 0 ? ready : waiting).insert(v);
  schedule_graph g;
  while (!ready.empty() || !waiting.empty()) {
    if (ready.empty()) {
      ready.insert(*waiting.begin());
      waiting.erase(waiting.begin());
    }
    auto v = *ready.begin();
    ready.erase(ready.begin());
    position[v] = g.order.size();
    g.order.push_back(v);
    for (auto w : succ[v])
      if (--missing[w] == 0 && waiting.erase(w) > 0)
        ready.insert(w);
  }
  g.preds.resize(n);
  g.succs.resize(n);
  for (size_t v = 0; v < n; ++v)
    for (auto u : preds[v])
      if (position[u] < position[v]) {
        g.preds[v].push_back(u);
        g.succs[u].push_back(v);
      }
  return g;
}

/// Wall time of the plan on `workers` agents: list scheduling, the ready
/// workstream with the longest remaining path first.
double simulate(const plan& p, const schedule_graph& g, int32_t workers) {
  auto n = p.workstreams.size();
  std::vector<double> rest(n, 0);
  for (auto i = g.order.rbegin(); i != g.order.rend(); ++i) {
    double longest = 0;
    for (auto s : g.succs[*i])
      longest = std::max(longest, rest[s]);
    rest[*i] = weight(p.workstreams[*i]) + longest;
  }
  auto by_priority = [&](size_t a, size_t b) {
    return rest[a] != rest[b] ? rest[a] > rest[b] : a < b;
  };
  std::set<size_t, decltype(by_priority)> ready(by_priority);
  std::vector<size_t> missing(n);
  for (size_t v = 0; v < n; ++v)
    if ((missing[v] = g.preds[v].size()) == 0)
      ready.insert(v);
  using running_t = std::pair<double, size_t>; // finish time, workstream
  std::priority_queue<running_t, std::vector<running_t>, std::greater<>>
    running;
  auto slots = static_cast<size_t>(std::max(workers, 1));
  double now = 0;
  while (!ready.empty() || !running.empty()) {
    while (running.size() < slots && !ready.empty()) {
      auto v = *ready.begin();
      ready.erase(ready.begin());
      running.push({now + weight(p.workstreams[v]), v});
    }
    now = running.top().first;
    while (!running.empty() && running.top().first <= now) {
      auto v = running.top().second;
      running.pop();
      for (auto s : g.succs[v])
        if (--missing[s] == 0)
          ready.insert(s);
    }
  }
  return now;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> result;
  std::string word;
  for (unsigned char c : text + " ") {
    if (std::isalnum(c)) {
      word += static_cast<char>(std::tolower(c));
    } else if (!word.empty()) {
      result.push_back(std::move(word));
      word.clear();
    }
  }
  return result;
}

} // namespace

std::string strategy_of_text(const std::string& text,
                             std::vector<std::string>* matched) {
  // Feature first: it wins ties ("add X and fix Y" is a feature).
  static const std::vector<std::pair<std::string, std::vector<std::string>>>
    strategies{
      {"feature",
       {"feature*", "add", "adds", "adding", "implement*", "introduc*",
        "support*", "new", "build", "create"}},
      {"bug investigation",
       {"bug*", "fix", "fixes", "fixed", "fixing", "crash*", "regress*"}},
      {"security audit", {"secur*", "audit*", "vulnerab*", "cve*"}},
      {"performance",
       {"perf", "performan*", "latenc*", "speed*", "optimi*", "slow*"}},
      {"refactor", {"refactor*", "cleanup*"}},
      {"deployment", {"deploy*", "release*", "ci"}},
      {"data pipeline", {"pipeline*", "etl", "ingest*"}},
    };
  auto ws_words = words(text);
  auto matches = [](const std::string& word, const std::string& key) {
    if (key.back() == '*')
      return word.compare(0, key.size() - 1, key, 0, key.size() - 1) == 0;
    return word == key;
  };
  std::string best = "feature";
  size_t best_hits = 0;
  std::vector<std::string> best_words;
  for (auto& [name, keys] : strategies) {
    size_t hits = 0;
    std::vector<std::string> hit_words;
    for (auto& w : ws_words)
      for (auto& k : keys)
        if (matches(w, k)) {
          ++hits;
          if (std::find(hit_words.begin(), hit_words.end(), w)
              == hit_words.end())
            hit_words.push_back(w);
          break;
        }
    if (hits > best_hits) {
      best = name;
      best_hits = hits;
      best_words = std::move(hit_words);
    }
  }
  if (matched != nullptr)
    *matched = std::move(best_words);
  return best;
}

namespace {

/// The strategy the words of a plan point at; "feature" when none does.
std::string strategy_of(const plan& p) {
  auto text = p.goal + " " + p.name;
  for (auto& ws : p.workstreams)
    text += " " + ws.title;
  return strategy_of_text(text);
}

bool has_wildcard(const std::string& s) {
  return s.find_first_of("*?") != std::string::npos;
}

} // namespace

workstream synthesis_workstream(const plan& p) {
  auto& x = p.synthesis;
  workstream w;
  w.id = synthesis_id;
  w.title = "Synthesis of the run";
  w.persona = x.persona;
  w.agent = agent_kind::plan;
  w.model = x.model;
  w.executor = x.executor;
  w.timeout_s = x.timeout_s;
  w.retries = x.retries;
  w.prompt = x.prompt.empty()
               ? "Write the synthesis of this run for the people who set its "
                 "goal: how far the work got toward the goal, what each "
                 "workstream found or changed, what failed, was blocked or "
                 "is left open and why, and what to do next. Go by the "
                 "results below, and say so where they do not tell. Write "
                 "Markdown without a top-level heading; change no file."
               : x.prompt;
  w.prompt += "\n\nPlan: " + p.name;
  if (!p.goal.empty())
    w.prompt += "\nGoal: " + p.goal;
  return w;
}

plan_assessment assess(const plan& p) {
  plan_assessment a;
  auto count = [&](const workstream& w) {
    if (!is_agent_executor(w.executor.kind))
      return;
    a.agents += 1;
    auto c = estimated_cost(p.settings, w);
    a.cost_usd.low += c.low;
    a.cost_usd.high += c.high;
  };
  for (auto& w : p.workstreams)
    count(w);
  if (p.synthesis.by_agent())
    count(synthesis_workstream(p));
  auto n = p.workstreams.size();
  auto g = make_graph(p);

  // Phases: a workstream's phase is the longest chain of waits before it.
  std::vector<size_t> depth(n, 0);
  for (auto v : g.order)
    for (auto u : g.preds[v])
      depth[v] = std::max(depth[v], depth[u] + 1);
  for (size_t v = 0; v < n; ++v) {
    if (a.phases.size() <= depth[v])
      a.phases.resize(depth[v] + 1);
    a.phases[depth[v]].push_back(p.workstreams[v].id);
  }

  // Critical path: the heaviest chain; among equals the longest, then the
  // earliest in plan order.
  std::vector<double> finish(n, 0);
  std::vector<size_t> length(n, 1), via(n, n);
  for (auto v : g.order) {
    for (auto u : g.preds[v])
      if (via[v] == n || finish[u] > finish[via[v]]
          || (finish[u] == finish[via[v]] && length[u] > length[via[v]]))
        via[v] = u;
    finish[v] = weight(p.workstreams[v]) + (via[v] == n ? 0 : finish[via[v]]);
    length[v] = 1 + (via[v] == n ? 0 : length[via[v]]);
  }
  size_t end = n;
  for (size_t v = 0; v < n; ++v)
    if (end == n || finish[v] > finish[end]
        || (finish[v] == finish[end] && length[v] > length[end]))
      end = v;
  for (auto v = end; v != n; v = via[v])
    a.critical_path.push_back(p.workstreams[v].id);
  std::reverse(a.critical_path.begin(), a.critical_path.end());
  a.critical_path_s = end == n ? 0 : finish[end];

  for (auto& ws : p.workstreams)
    a.sequential_s += weight(ws);
  a.parallel_s = simulate(p, g, p.settings.max_parallel_agents);

  // Complexity: one point per indicator in DESIGN.md, plus two for sheer
  // size so that EPIC can be reached.
  auto score = [&](bool holds, const char* name) {
    if (holds) {
      ++a.score;
      a.indicators.push_back(name);
    }
  };
  size_t writers = 0, max_deps = 0;
  std::set<std::string> personas, extensions, top_dirs;
  for (auto& ws : p.workstreams) {
    writers += ws.owns.empty() ? 0 : 1;
    max_deps = std::max(max_deps, ws.depends_on.size());
    personas.insert(ws.persona);
    for (auto& pattern : ws.owns) {
      auto slash = pattern.find_last_of('/');
      auto file
        = slash == std::string::npos ? pattern : pattern.substr(slash + 1);
      auto dot = file.find_last_of('.');
      if (dot != std::string::npos && dot > 0 && dot + 1 < file.size()
          && !has_wildcard(file.substr(dot + 1)))
        extensions.insert(detail::lower(file.substr(dot + 1)));
      auto first_slash = pattern.find('/');
      if (first_slash != std::string::npos && first_slash > 0
          && !has_wildcard(pattern.substr(0, first_slash)))
        top_dirs.insert(pattern.substr(0, first_slash));
    }
  }
  score(writers > 1 || n > 2, "several distinct deliverables");
  score(personas.size() > 1, "cross-cutting concerns");
  // No diff exists before the run, so lines changed are estimated: over an
  // hour of expected work, or more than ten workstreams, is taken to mean
  // more than 500 lines.
  score(a.sequential_s > 3600 || n > 10,
        "more than 500 lines likely to change");
  score(extensions.size() > 1 || top_dirs.size() > 1,
        "several file types or domains");
  score(!p.gates.empty() || max_deps >= 2, "integration requirements");
  score(n > 7, "more than 7 workstreams");
  score(a.phases.size() > 3, "more than 3 phases");
  a.level = a.score <= 1 ? complexity::simple
    : a.score <= 3       ? complexity::moderate
    : a.score <= 5       ? complexity::complex
                         : complexity::epic;
  a.strategy = strategy_of(p);
  return a;
}

void to_json(nlohmann::json& j, const plan_assessment& x) {
  j = {{"level", to_string(x.level)},
       {"score", x.score},
       {"indicators", x.indicators},
       {"phases", x.phases},
       {"critical_path", x.critical_path},
       {"critical_path_s", x.critical_path_s},
       {"sequential_s", x.sequential_s},
       {"parallel_s", x.parallel_s},
       {"strategy", x.strategy},
       {"agents", x.agents},
       {"cost_usd", x.cost_usd}};
}

} // namespace troupe
