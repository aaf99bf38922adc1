// Semantic checks of a plan: ids, dependencies, cycles, ownership, agent
// kinds, executors, gates and settings. Works on any plan, decoded or built
// in code, and reports everything it finds.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "decode_fields.hpp"
#include "graph.hpp"
#include "plan_checks.hpp"
#include "text.hpp"
#include "troupe/protocol/planning.hpp"

namespace troupe {

namespace {

using detail::ancestors;
using detail::check_executor;
using detail::check_finite;
using detail::components;
using detail::gate_path;
using detail::shortest_cycle;
using detail::validate_synthesis;
using detail::ws_path;

// -- messages -----------------------------------------------------------------

using detail::format_number;
using detail::quote;

// A timeout in seconds: 0 (none named) or positive, and at most
// `max_timeout_s`, which any clock can count in milliseconds.
void check_timeout(double x, const std::string& path, diagnostics& out,
                   bool zero_ok = true) {
  if (!check_finite(x, path, out))
    return;
  if (x < 0 || (!zero_ok && x == 0))
    out.error(path, "must be positive, got " + format_number(x));
  else if (x > max_timeout_s)
    out.error(path, "must be at most "
                      + std::to_string(static_cast<int64_t>(max_timeout_s))
                      + " (a year), got " + format_number(x));
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

/// ` (did you mean "jwt"?)` for the closest id within two edits, or nothing.
std::string suggestion(const std::string& word,
                       const std::unordered_map<std::string_view, size_t>& ids) {
  std::string best;
  size_t best_d = 3;
  for (auto& [id, pos] : ids) {
    if (std::max(word.size(), id.size()) - std::min(word.size(), id.size()) > 2)
      continue;
    auto d = detail::edit_distance(word, std::string{id});
    if (d >= std::min(word.size(), id.size()))
      continue;
    // Ties go to the smallest id, whatever the map's order.
    if (d < best_d || (d == best_d && id < best)) {
      best = std::string{id};
      best_d = d;
    }
  }
  return best.empty() ? "" : " (did you mean " + quote(best) + "?)";
}

void check_id(const std::string& id, const std::string& path,
              diagnostics& out) {
  auto valid = [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  };
  if (id.empty())
    out.error(path, "missing");
  else if (!std::all_of(id.begin(), id.end(), valid))
    out.error(path,
              "invalid id " + quote(id)
                + " (use letters, digits, '_', '.' and '-')");
}

} // namespace

const std::set<std::string>& builtin_executor_kinds() {
  static const std::set<std::string> kinds{"anthropic", "command", "noop",
                                           "openai", "sleep"};
  return kinds;
}

void validate_settings(const plan_settings& s, diagnostics& out) {
  if (s.max_parallel_agents < 1)
    out.error("settings.max_parallel_agents",
              "must be at least 1, got "
                + std::to_string(s.max_parallel_agents));
  check_timeout(s.default_timeout_s, "settings.default_timeout_s", out, false);
  if (s.max_phase_width < 1)
    out.error("settings.max_phase_width",
              "must be at least 1, got " + std::to_string(s.max_phase_width));
  if (s.max_subplan_depth < 0)
    out.error("settings.max_subplan_depth",
              "must not be negative, got "
                + std::to_string(s.max_subplan_depth));
  if (s.max_workstreams < 1)
    out.error("settings.max_workstreams",
              "must be at least 1, got " + std::to_string(s.max_workstreams));
  if (check_finite(s.max_cost_usd, "settings.max_cost_usd", out)
      && s.max_cost_usd < 0)
    out.error("settings.max_cost_usd",
              "must not be negative, got " + format_number(s.max_cost_usd));
  for (auto& [persona, prompt] : s.personas) {
    auto path = detail::key_path("settings.personas", persona);
    if (persona.empty())
      out.error("settings.personas", "a persona must have a name");
    else if (prompt.empty())
      out.error(path, "must not be empty");
    else if (prompt.size() > max_persona_prompt_bytes)
      out.error(path, "too long: " + std::to_string(prompt.size())
                        + " bytes (at most "
                        + std::to_string(max_persona_prompt_bytes) + ")");
  }
}

void validate_plan(const plan& p, const validation_options& opts,
                   diagnostics& out) {
  // A plan that did not come through decoding (one sent by a submitter)
  // meets the same bounds before any work that grows with its size.
  if (p.workstreams.size() > max_plan_workstreams
      || p.gates.size() > max_plan_gates) {
    if (p.workstreams.size() > max_plan_workstreams)
      out.error("workstreams", "too many: "
                                 + std::to_string(p.workstreams.size())
                                 + " (at most "
                                 + std::to_string(max_plan_workstreams) + ")");
    if (p.gates.size() > max_plan_gates)
      out.error("gates", "too many: " + std::to_string(p.gates.size())
                           + " (at most " + std::to_string(max_plan_gates)
                           + ")");
    return;
  }
  auto& s = p.settings;
  validate_settings(s, out);
  if (p.workstreams.empty())
    out.error("workstreams", "must not be empty");

  // Ids: workstreams and gates share one name space.
  auto n = p.workstreams.size();
  // Keys view the plan's own strings, which outlive the maps.
  std::unordered_map<std::string_view, size_t> ws_ids, gate_ids;
  ws_ids.reserve(n);
  std::vector<bool> first(n, false);
  for (size_t i = 0; i < n; ++i) {
    auto& id = p.workstreams[i].id;
    check_id(id, ws_path(p, i) + ".id", out);
    if (id.empty())
      continue;
    auto [pos, fresh] = ws_ids.emplace(id, i);
    first[i] = fresh;
    if (!fresh)
      out.error(ws_path(p, i) + ".id",
                "duplicate id " + quote(id) + " (first at "
                  + index("workstreams", pos->second) + ")");
  }
  for (size_t k = 0; k < p.gates.size(); ++k) {
    auto& id = p.gates[k].id;
    check_id(id, gate_path(p, k) + ".id", out);
    if (id.empty())
      continue;
    if (auto w = ws_ids.find(id); w != ws_ids.end())
      out.error(gate_path(p, k) + ".id",
                "duplicate id " + quote(id) + " (a workstream at "
                  + index("workstreams", w->second) + ")");
    else if (auto [pos, fresh] = gate_ids.emplace(id, k); !fresh)
      out.error(gate_path(p, k) + ".id",
                "duplicate id " + quote(id) + " (first at "
                  + index("gates", pos->second) + ")");
  }

  // A gate's fixers and command checks are named after it (`g.fix1`,
  // `g.check2`): no workstream may take such a name.
  for (size_t i = 0; i < n; ++i) {
    auto& id = p.workstreams[i].id;
    auto dot = id.rfind('.');
    if (dot == std::string::npos || gate_ids.count(id.substr(0, dot)) == 0)
      continue;
    auto tail = id.substr(dot + 1);
    for (std::string word : {"fix", "check"})
      if (tail.size() > word.size() && tail.compare(0, word.size(), word) == 0
          && tail.find_first_not_of("0123456789", word.size())
               == std::string::npos)
        out.error(ws_path(p, i) + ".id",
                  quote(id) + " is how gate " + quote(id.substr(0, dot))
                    + " names its " + word + (word == "fix" ? "ers" : "s")
                    + "; choose another id");
  }

  // Each workstream on its own; `succ[i]` lists what i depends on.
  std::vector<std::vector<size_t>> succ(n);
  bool self_dependency = false;
  for (size_t i = 0; i < n; ++i) {
    auto& ws = p.workstreams[i];
    auto path = ws_path(p, i);
    if (ws.persona.empty())
      out.error(path + ".persona", "must not be empty");
    for (size_t k = 0; k < ws.owns.size(); ++k)
      if (ws.owns[k].empty())
        out.error(index(path + ".owns", k), "must not be empty");
    if (ws.agent == agent_kind::explore && !ws.owns.empty())
      out.error(path + ".agent",
                "an explore agent is read-only, but this workstream owns "
                  + quote(ws.owns.front())
                  + "; use agent general, or drop owns");
    check_timeout(ws.timeout_s, path + ".timeout_s", out);
    if (ws.retries < 0)
      out.error(path + ".retries",
                "must not be negative, got " + std::to_string(ws.retries));
    if (ws.makes_plan() && ws.iterates())
      out.error(path + ".output",
                "a workstream that makes a plan cannot iterate (until)");
    if (ws.iterates()) {
      if (ws.max_iterations < 0 || ws.max_iterations > max_iterations_limit)
        out.error(path + ".max_iterations",
                  "must be from 1 to " + std::to_string(max_iterations_limit)
                    + ", got " + std::to_string(ws.max_iterations));
      check_timeout(ws.until.timeout_s, path + ".until.timeout_s", out);
    }
    if (!(ws.estimate_usd.low >= 0 && ws.estimate_usd.high >= ws.estimate_usd.low
          && std::isfinite(ws.estimate_usd.high)))
      out.error(path + ".estimate_usd",
                "must be US dollars, not negative, low <= high");
    if (check_finite(ws.estimate_s, path + ".estimate_s", out)
        && ws.estimate_s < 0)
      out.error(path + ".estimate_s",
                "must not be negative, got " + format_number(ws.estimate_s));
    check_executor(ws.executor, path + ".executor", opts, out);
    if (is_agent_executor(ws.executor.kind)) {
      // Agents hand the prompt to a model, and do nothing without either.
      if (ws.prompt.empty())
        out.error(path + ".prompt",
                  "must not be empty: executor " + quote(ws.executor.kind)
                    + " needs a prompt");
      if (resolve_model(p.settings, ws).empty())
        out.error(path + ".model",
                  "no model for tier " + quote(to_string(ws.model))
                    + " with executor " + quote(ws.executor.kind)
                    + ": name one in settings.models." + to_string(ws.model)
                    + " or the executor's model");
    }
    std::unordered_set<std::string_view> seen;
    seen.reserve(ws.depends_on.size());
    for (size_t k = 0; k < ws.depends_on.size(); ++k) {
      auto& dep = ws.depends_on[k];
      if (!seen.insert(dep).second) {
        out.warn(index(path + ".depends_on", k),
                 quote(dep) + " is listed twice");
        continue;
      }
      auto dpath = [&] { return index(path + ".depends_on", k); };
      if (!ws.id.empty() && dep == ws.id) {
        out.error(dpath(), "depends on itself");
        self_dependency = true;
      } else if (auto d = ws_ids.find(dep); d != ws_ids.end()) {
        succ[i].push_back(d->second);
      } else if (gate_ids.count(dep) > 0) {
        out.error(dpath(),
                  "unknown workstream " + quote(dep)
                    + " (it is a gate: depend on its workstreams)");
      } else {
        out.error(dpath(),
                  "unknown workstream " + quote(dep) + suggestion(dep, ws_ids));
      }
    }
  }

  // Gates.
  for (size_t k = 0; k < p.gates.size(); ++k) {
    auto& g = p.gates[k];
    auto path = gate_path(p, k);
    if (g.after.empty())
      out.error(path + ".after", "must not be empty");
    for (size_t a = 0; a < g.after.size(); ++a)
      if (ws_ids.count(g.after[a]) == 0)
        out.error(index(path + ".after", a),
                  "unknown workstream " + quote(g.after[a])
                    + suggestion(g.after[a], ws_ids));
    for (size_t c = 0; c < g.checks.size(); ++c) {
      auto& check = g.checks[c];
      auto cpath = index(path + ".checks", c);
      if (check.kind != "completion" && check.kind != "conflicts"
          && check.kind != "command")
        out.error(cpath + ".kind",
                  "unknown check " + quote(check.kind)
                    + " (expected completion, conflicts or "
                      "command)");
      if (check.kind == "command" && check.run.empty())
        out.error(cpath + ".run", "must not be empty");
      check_timeout(check.timeout_s, cpath + ".timeout_s", out);
    }
    auto rpath = path + ".remediate";
    if (g.remediate.persona.empty())
      out.error(rpath + ".persona", "must not be empty");
    if (g.remediate.max_attempts < 0)
      out.error(rpath + ".max_attempts",
                "must not be negative, got "
                  + std::to_string(g.remediate.max_attempts));
    check_executor(g.remediate.executor, rpath + ".executor", opts, out);
  }
  check_timeout(p.synthesis.timeout_s, "synthesis.timeout_s", out);
  validate_synthesis(p, ws_ids, gate_ids, opts, out);

  // Cycles, each reported once, on its first member in plan order.
  auto comp = components(succ);
  std::vector<size_t> comp_size(n, 0);
  for (auto c : comp)
    ++comp_size[c];
  std::set<std::vector<size_t>> cycles;
  // Bounded, so a huge tangle costs no more than a few hundred searches.
  constexpr size_t max_cycles = 20;
  size_t searches = 0;
  for (size_t v = 0; v < n && cycles.size() < max_cycles && searches < 500;
       ++v) {
    if (comp_size[comp[v]] < 2)
      continue;
    ++searches;
    auto cycle = shortest_cycle(v, succ, comp);
    if (cycle.empty())
      continue;
    cycle.pop_back();
    std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()),
                cycle.end());
    if (!cycles.insert(cycle).second)
      continue;
    std::string text;
    for (auto u : cycle)
      text += p.workstreams[u].id + " -> ";
    text += p.workstreams[cycle.front()].id;
    out.error(ws_path(p, cycle.front()) + ".depends_on",
              "dependency cycle: " + text);
  }
  // Without a DAG, "can run at the same time" and phases mean nothing.
  if (!cycles.empty() || self_dependency)
    return;

  // Ancestor sets, made only for the workstreams asked about.
  std::map<size_t, std::vector<bool>> anc_cache;
  auto depends = [&](size_t i, size_t j) -> bool {
    auto a = anc_cache.find(i);
    if (a == anc_cache.end())
      a = anc_cache.emplace(i, ancestors(i, succ)).first;
    return a->second[j];
  };
  std::vector<std::vector<size_t>> pred(n);
  for (size_t i = 0; i < n; ++i)
    for (auto d : succ[i])
      pred[d].push_back(i);

  // A gate holds back everything downstream of its `after` members; if one
  // of those members itself depends on such work, the gate never opens.
  for (size_t k = 0; k < p.gates.size(); ++k) {
    std::vector<bool> member(n, false), downstream(n, false);
    std::vector<size_t> todo;
    for (auto& a : p.gates[k].after)
      if (auto w = ws_ids.find(a); w != ws_ids.end() && !member[w->second]) {
        member[w->second] = true;
        todo.push_back(w->second);
      }
    auto members = todo;
    while (!todo.empty()) {
      auto u = todo.back();
      todo.pop_back();
      for (auto v : pred[u])
        if (!downstream[v]) {
          downstream[v] = true;
          todo.push_back(v);
        }
    }
    // Whatever depends on held-back work (`origin` remembers which piece),
    // in one pass over the graph rather than one per member.
    constexpr size_t none = static_cast<size_t>(-1);
    std::vector<size_t> origin(n, none);
    for (size_t c = 0; c < n; ++c)
      if (downstream[c] && !member[c]) {
        origin[c] = c;
        todo.push_back(c);
      }
    while (!todo.empty()) {
      auto u = todo.back();
      todo.pop_back();
      for (auto v : pred[u])
        if (origin[v] == none) {
          origin[v] = origin[u];
          todo.push_back(v);
        }
    }
    for (auto a : members) {
      if (origin[a] == none)
        continue;
      auto c = origin[a];
      out.error(gate_path(p, k) + ".after",
                "workstream " + quote(p.workstreams[c].id)
                  + " waits for this gate, but " + quote(p.workstreams[a].id)
                  + ", which the gate waits for, depends on it (add it to "
                    "after?)");
      break;
    }
  }

  // Writers that can run at the same time must own disjoint files, unless
  // a gate that checks for conflicts comes after both: then integration
  // tells whether their changes meet, and that gate says so.
  auto conflicts_checked = [&](const std::string& x, const std::string& y) {
    for (auto& g : p.gates) {
      auto has = [&](const std::string& id) {
        return std::find(g.after.begin(), g.after.end(), id) != g.after.end();
      };
      auto checks = std::any_of(
        g.checks.begin(), g.checks.end(),
        [](const gate_check& c) { return c.kind == "conflicts"; });
      if (checks && has(x) && has(y))
        return g.id;
    }
    return std::string{};
  };
  for (size_t j = 0; j < n; ++j) {
    auto& b = p.workstreams[j];
    if (!first[j] || b.owns.empty())
      continue;
    for (size_t i = 0; i < j; ++i) {
      auto& a = p.workstreams[i];
      if (!first[i] || a.owns.empty() || depends(i, j) || depends(j, i))
        continue;
      bool found = false;
      for (size_t kb = 0; kb < b.owns.size() && !found; ++kb)
        for (size_t ka = 0; ka < a.owns.size() && !found; ++ka)
          if (!a.owns[ka].empty() && !b.owns[kb].empty()
              && globs_overlap(b.owns[kb], a.owns[ka])) {
            auto what = quote(b.owns[kb]) + " overlaps " + quote(a.owns[ka])
                        + " owned by workstream " + quote(a.id)
                        + ", which can run at the same time";
            auto gate = conflicts_checked(a.id, b.id);
            if (gate.empty())
              out.error(index(ws_path(p, j) + ".owns", kb), what);
            else
              out.warn(index(ws_path(p, j) + ".owns", kb),
                       what + "; gate " + quote(gate)
                         + " checks their changes for conflicts");
            found = true;
          }
    }
  }

  // Wide phases are allowed, but usually a sign of a plan to split.
  // No phase can be wider than the plan; skip the assessment when the
  // limit cannot be broken.
  if (n <= static_cast<size_t>(std::max(s.max_phase_width, 1)))
    return;
  auto phases = assess(p).phases;
  for (size_t k = 0; k < phases.size(); ++k) {
    auto& phase = phases[k];
    if (phase.size() <= static_cast<size_t>(std::max(s.max_phase_width, 1)))
      continue;
    std::string names;
    for (size_t i = 0; i < phase.size() && i < 8; ++i)
      names += (i == 0 ? "" : ", ") + phase[i];
    if (phase.size() > 8)
      names += ", ...";
    out.warn("workstreams",
             "phase " + std::to_string(k + 1) + " has "
               + std::to_string(phase.size()) + " workstreams (" + names
               + "), more than max_phase_width "
               + std::to_string(s.max_phase_width));
  }
}

} // namespace troupe
