#include <cstdio>
#include <iostream>
#include <sstream>
#include <unordered_map>

#include "commands.hpp"
#include "troupe/protocol/models.hpp"

namespace troupe::cli {

bool report_diagnostics(const std::string& origin, const diagnostics& d) {
  for (auto& item : d.items())
    std::cerr << origin << ": " << (item.warning ? "warning: " : "error: ")
              << to_string(item) << '\n';
  if (!d.ok())
    std::cerr << origin << ": " << d.error_count() << " error"
              << (d.error_count() == 1 ? "" : "s") << ", nothing was run\n";
  return d.ok();
}

namespace {

std::string secs(double s) {
  char buf[32];
  if (s >= 120)
    std::snprintf(buf, sizeof(buf), "%.1f min", s / 60);
  else
    std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

std::string usd(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), x < 1 ? "$%.4f" : "$%.2f", x);
  return buf;
}

std::string pad(std::string s, size_t n) {
  if (s.size() < n)
    s.append(n - s.size(), ' ');
  return s;
}

} // namespace

std::string render_plan(const plan& p, const plan_assessment& a,
                        int32_t max_parallel) {
  std::ostringstream out;
  std::unordered_map<std::string, const workstream*> by_id;
  size_t id_width = 2;
  size_t persona_width = 7;
  for (auto& w : p.workstreams) {
    by_id.emplace(w.id, &w);
    id_width = std::max(id_width, w.id.size());
    persona_width = std::max(persona_width, w.persona.size());
  }
  out << "Plan " << p.name << ": " << p.workstreams.size() << " workstream"
      << (p.workstreams.size() == 1 ? "" : "s") << ", " << p.gates.size()
      << " gate" << (p.gates.size() == 1 ? "" : "s") << ", "
      << a.phases.size() << " phase" << (a.phases.size() == 1 ? "" : "s")
      << '\n';
  if (!p.goal.empty())
    out << "Goal: " << p.goal << '\n';
  out << "Complexity: " << to_string(a.level) << " (score " << a.score;
  for (size_t i = 0; i < a.indicators.size(); ++i)
    out << (i == 0 ? ": " : ", ") << a.indicators[i];
  out << ")\nStrategy: " << a.strategy << "\n";
  std::unordered_map<std::string, size_t> phase_of;
  for (size_t i = 0; i < a.phases.size(); ++i)
    for (auto& id : a.phases[i])
      phase_of[id] = i;
  for (size_t i = 0; i < a.phases.size(); ++i) {
    out << "\nPhase " << i + 1 << " (" << a.phases[i].size()
        << (a.phases[i].size() == 1 ? " workstream" : " in parallel")
        << ")\n";
    for (auto& id : a.phases[i]) {
      auto w = by_id.find(id);
      if (w == by_id.end())
        continue;
      auto& ws = *w->second;
      out << "  " << pad(ws.id, id_width) << "  " << pad(ws.persona,
                                                        persona_width)
          << "  " << pad(to_string(ws.agent) + "/" + to_string(ws.model), 16)
          << "  " << pad(ws.executor.kind, 7);
      if (!ws.depends_on.empty()) {
        out << "  after ";
        for (size_t k = 0; k < ws.depends_on.size(); ++k)
          out << (k ? ", " : "") << ws.depends_on[k];
      }
      if (ws.title != ws.id)
        out << "  \"" << ws.title << '"';
      if (ws.makes_plan())
        out << "  -> a sub-plan, run as its children";
      if (ws.iterates())
        out << "  until `" << ws.until.run << "` passes (at most "
            << (ws.max_iterations > 0 ? ws.max_iterations
                                      : default_max_iterations)
            << " iterations)";
      out << '\n';
    }
    // Gates whose last workstream finishes in this phase.
    for (auto& g : p.gates) {
      size_t last = 0;
      for (auto& id : g.after)
        if (auto k = phase_of.find(id); k != phase_of.end())
          last = std::max(last, k->second);
      if (last != i)
        continue;
      out << "  gate " << g.id << " after ";
      for (size_t k = 0; k < g.after.size(); ++k)
        out << (k ? ", " : "") << g.after[k];
      out << ": ";
      for (size_t k = 0; k < g.checks.size(); ++k)
        out << (k ? ", " : "")
            << (g.checks[k].kind == "command" ? "run `" + g.checks[k].run + "`"
                                              : g.checks[k].kind);
      if (g.remediate.max_attempts > 0)
        out << "; on failure " << g.remediate.persona << " remediates (up to "
            << g.remediate.max_attempts << "x)";
      out << '\n';
    }
  }
  out << "\nCritical path: ";
  for (size_t i = 0; i < a.critical_path.size(); ++i)
    out << (i ? " -> " : "") << a.critical_path[i];
  out << " (" << secs(a.critical_path_s) << ")\n";
  out << "Estimated time: " << secs(a.sequential_s) << " sequential, "
      << secs(a.parallel_s) << " with " << max_parallel
      << " parallel agent" << (max_parallel == 1 ? "" : "s") << '\n';
  if (a.agents > 0) {
    out << "Estimated cost: " << usd(a.cost_usd.low) << " to "
        << usd(a.cost_usd.high) << " for " << a.agents << " agent"
        << (a.agents == 1 ? "" : "s")
        << " (first attempts; estimate_usd, else settings.cost_estimates, "
           "else Troupe's guess per tier)\n";
  }
  if (p.settings.max_cost_usd > 0) {
    out << "Budget: " << usd(p.settings.max_cost_usd);
    if (a.cost_usd.low > p.settings.max_cost_usd)
      out << ", below even the lowest estimate: the run will stop before "
             "every agent has run";
    else if (a.cost_usd.high > p.settings.max_cost_usd)
      out << ", below the highest estimate: the run may stop before every "
             "agent has run";
    out << '\n';
  }
  if (p.synthesis.by_agent()) {
    auto w = synthesis_workstream(p);
    out << "Synthesis: an agent (" << w.persona << ", " << w.executor.kind;
    if (auto model = resolve_model(p.settings, w); !model.empty())
      out << ", " << model;
    out << ") writes it from every result once everything else has ended\n";
  } else {
    out << "Synthesis: Troupe's account of the results (synthesis.executor "
           "has an agent write one)\n";
  }
  return out.str();
}

} // namespace troupe::cli
