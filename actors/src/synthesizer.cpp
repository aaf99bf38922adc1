#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "troupe/actors/gate.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe {

namespace {

// Succeeded workstreams the Markdown table lists at most.
constexpr size_t markdown_ok_rows = 200;

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

std::string dollars(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "$%.4f", usd);
  return buf;
}

// Markdown table cells cannot hold pipes, newlines or other control
// characters.
std::string cell(const std::string& text) {
  auto s = terminal_text(text);
  std::string out;
  for (auto c : s) {
    if (c == '|')
      out += '\\';
    out += c;
  }
  return out;
}

// `text` as valid UTF-8 with control characters other than newlines and
// tabs (escape sequences a terminal would obey) as spaces.
std::string readable(const std::string& text) {
  auto s = valid_utf8(text);
  for (auto& c : s)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
        || c == 0x7F)
      c = ' ';
  return s;
}

// The last `n` lines of `text`, `readable`.
std::string last_lines(const std::string& text, size_t n) {
  auto s = readable(text);
  size_t pos = s.size();
  while (pos > 0 && (s[pos - 1] == '\n'))
    --pos;
  size_t end = pos;
  for (size_t lines = 0; pos > 0; --pos) {
    if (s[pos - 1] == '\n' && ++lines == n)
      break;
  }
  return s.substr(pos, end - pos);
}

// What the synthesis agent wrote: an agent's reply, else a command's
// output; as text to read, control characters (escape sequences a terminal
// would obey) taken out.
std::string synthesis_text(const workstream_result& w) {
  auto i = w.outputs.find("reply");
  auto text = readable(i != w.outputs.end() ? i->second : w.output);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

} // namespace

void fold_report(const plan& p, run_report& r) {
  r.sequential_s = 0;
  r.usage.clear();
  r.sub_agent_usage.clear();
  for (auto& u : r.planning_usage)
    add_usage(r.usage, u);
  for (auto& w : r.workstreams) {
    r.sequential_s += w.wall_s;
    for (auto& u : w.usage)
      add_usage(r.usage, u);
    for (auto& u : w.sub_agent_usage)
      add_usage(r.sub_agent_usage, u);
  }
  // Longest path by wall time over the plan's dependencies, by position in
  // the plan, in topological order (Kahn), so deep chains need no recursion.
  auto n = p.workstreams.size();
  std::unordered_map<std::string_view, size_t> def_index;
  def_index.reserve(n);
  for (size_t i = 0; i < n; ++i)
    def_index.emplace(p.workstreams[i].id, i);
  // What was spent, and what the deep tier alone would have cost.
  r.cost_usd = 0;
  r.deep_tier_cost_usd = 0;
  r.max_cost_usd = p.settings.max_cost_usd;
  // Planning asks the deep tier: it saved nothing.
  for (auto& u : r.planning_usage) {
    r.cost_usd += u.cost_usd;
    r.deep_tier_cost_usd += u.cost_usd;
  }
  auto synthesis_ws = synthesis_workstream(p);
  for (auto& w : r.workstreams) {
    auto d = def_index.find(w.id);
    auto def = d != def_index.end()    ? &p.workstreams[d->second]
               : is_synthesis(p, w.id) ? &synthesis_ws
                                       : nullptr;
    for (auto& u : w.usage) {
      r.cost_usd += u.cost_usd;
      double deep = u.cost_usd;
      if (def)
        deep_tier_cost(p.settings, *def, u, deep);
      r.deep_tier_cost_usd += deep;
    }
  }
  // Wall time per plan position: reports list the plan's workstreams first,
  // in order, then any remediation; look ids up only if that does not hold.
  std::vector<double> own(n, 0.0);
  for (size_t k = 0; k < r.workstreams.size(); ++k) {
    auto& w = r.workstreams[k];
    if (k < n && p.workstreams[k].id == w.id)
      own[k] = w.wall_s;
    else if (auto d = def_index.find(w.id); d != def_index.end())
      own[d->second] = w.wall_s;
  }
  constexpr size_t none = static_cast<size_t>(-1);
  std::vector<size_t> pending(n, 0);
  std::vector<std::vector<size_t>> deps(n);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i)
    for (auto& dep : p.workstreams[i].depends_on)
      if (auto d = def_index.find(dep); d != def_index.end()) {
        ++pending[i];
        deps[i].push_back(d->second);
        dependents[d->second].push_back(i);
      }
  std::vector<size_t> order;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0)
      order.push_back(i);
  for (size_t k = 0; k < order.size(); ++k)
    for (auto j : dependents[order[k]])
      if (--pending[j] == 0)
        order.push_back(j);
  std::vector<double> best(n, 0.0);
  std::vector<size_t> via(n, none);
  for (auto i : order) {
    double before = 0;
    for (auto d : deps[i])
      if (via[i] == none || best[d] > before) {
        before = best[d];
        via[i] = d;
      }
    best[i] = own[i] + before;
  }
  r.critical_path_s = 0;
  size_t end = none;
  for (size_t i = 0; i < n; ++i)
    if (end == none || best[i] > r.critical_path_s) {
      r.critical_path_s = best[i];
      end = i;
    }
  // Remediation runs outside the plan's graph; it can be the longest alone.
  // The synthesis agent comes after everything else.
  const workstream_result* synthesis = nullptr;
  std::string lone;
  for (auto& w : r.workstreams) {
    if (is_synthesis(p, w.id)) {
      synthesis = &w;
      continue;
    }
    if (def_index.count(w.id) == 0 && w.wall_s > r.critical_path_s) {
      r.critical_path_s = w.wall_s;
      lone = w.id;
    }
  }
  r.critical_path.clear();
  if (!lone.empty()) {
    r.critical_path.push_back(lone);
  } else {
    for (auto i = end; i != none; i = via[i])
      r.critical_path.push_back(p.workstreams[i].id);
    std::reverse(r.critical_path.begin(), r.critical_path.end());
  }
  r.synthesis.clear();
  // Only a synthesis that ran is on the path.
  if (synthesis && synthesis->attempts > 0) {
    r.critical_path_s += synthesis->wall_s;
    r.critical_path.push_back(synthesis->id);
  }
  if (synthesis && synthesis->status == ws_state::succeeded)
    r.synthesis = synthesis_text(*synthesis);
}

// The changes of a run on a repository, and what became of them.
void render_changes(std::ostringstream& md, const run_report& r) {
  md << "\n## Changes\n\nOn " << r.base.substr(0, 12) << ", for branch "
     << cell(r.branch) << ".\n\n| workstream | files | lines |\n"
     << "|---|---|---|\n";
  size_t changed = 0;
  for (auto& w : r.workstreams) {
    if (w.files_changed.empty())
      continue;
    ++changed;
    std::string files;
    for (auto& f : w.files_changed)
      files += (files.empty() ? "" : ", ") + f;
    md << "| " << cell(w.id) << " | " << cell(files) << " | +" << w.lines_added
       << " -" << w.lines_removed << " |\n";
  }
  if (changed == 0)
    md << "| (no workstream changed a file) | | |\n";
  md << "\n";
  if (!r.commit_error.empty())
    md << "Not committed: " << cell(r.commit_error) << "\n";
  else if (r.approval == "committed")
    md << "Committed: " << r.commits.size() << " commit"
       << (r.commits.size() == 1 ? "" : "s") << " onto " << cell(r.branch)
       << ".\n";
  else if (r.approval == "awaiting")
    md << "Awaiting approval: `troupe approve " << r.run_id
       << "` commits them, `troupe reject " << r.run_id << "` drops them.\n";
  else
    md << "Nothing is committed: the run did not succeed; the accepted "
          "changes stay in "
       << cell(r.run_dir) << "/diffs.\n";
}

std::string render_markdown(const plan& p, const run_report& r) {
  std::ostringstream md;
  md << "# " << (r.plan.empty() ? "Run" : r.plan) << ": "
     << to_string(r.status) << "\n\n";
  if (!r.goal.empty())
    md << "Goal: " << r.goal << "\n\n";
  // The synthesis agent's work is the report's own, not one of the run's.
  size_t ok = 0;
  size_t all = 0;
  for (auto& w : r.workstreams) {
    if (is_synthesis(p, w.id))
      continue;
    ++all;
    ok += w.status == ws_state::succeeded ? 1 : 0;
  }
  md << "Run `" << r.run_id << "`: " << ok << " of " << all
     << " workstreams succeeded in " << seconds(r.wall_s) << " (sequential "
     << seconds(r.sequential_s);
  if (r.sequential_s > r.wall_s)
    md << ", " << seconds(r.sequential_s - r.wall_s) << " saved by parallelism";
  md << "; critical path " << seconds(r.critical_path_s);
  if (!r.critical_path.empty()) {
    md << ": ";
    for (size_t i = 0; i < r.critical_path.size(); ++i)
      md << (i ? " -> " : "") << r.critical_path[i];
  }
  md << ").\n\n";
  if (!r.rerun.empty()) {
    md << "The run was interrupted and resumed; what was in flight ran "
          "again: ";
    for (size_t i = 0; i < r.rerun.size(); ++i)
      md << (i ? ", " : "") << r.rerun[i];
    md << ".\n\n";
  }
  if (p.synthesis.by_agent()) {
    md << "## Synthesis\n\n";
    auto w = std::find_if(r.workstreams.begin(), r.workstreams.end(),
                          [](auto& x) { return x.id == synthesis_id; });
    if (!r.synthesis.empty())
      md << r.synthesis << "\n\n";
    else if (w == r.workstreams.end())
      md << "Not written: the run stopped before its synthesis agent "
            "started. What follows is Troupe's own account.\n\n";
    else if (w->status == ws_state::succeeded)
      md << "Its agent wrote nothing. What follows is Troupe's own "
            "account.\n\n";
    else
      md << "Not written: its agent ended " << to_string(w->status) << " ("
         << terminal_text(w->summary)
         << "). What follows is Troupe's own account.\n\n";
    md << "## Workstreams\n\n";
  }
  md << "| workstream | persona | status | attempts | node | wall | summary |\n"
     << "|---|---|---|---|---|---|---|\n";
  // A huge run lists what went wrong and the first of what went right; the
  // JSON report has every row.
  size_t shown_ok = 0;
  for (auto& w : r.workstreams) {
    if (w.status == ws_state::succeeded && ++shown_ok > markdown_ok_rows)
      continue;
    md << "| " << cell(w.id) << " | " << cell(w.persona) << " | "
       << to_string(w.status) << " | " << w.attempts << " | " << cell(w.node)
       << " | " << seconds(w.wall_s) << " | " << cell(w.summary) << " |\n";
  }
  if (shown_ok > markdown_ok_rows)
    md << "\n" << shown_ok - markdown_ok_rows
       << " more succeeded workstreams are in the JSON report.\n";
  bool iterated = std::any_of(r.workstreams.begin(), r.workstreams.end(),
                              [](auto& w) { return !w.iterations.empty(); });
  if (iterated) {
    md << "\n## Iterations\n\n| workstream | iteration | check | detail |\n"
       << "|---|---|---|---|\n";
    size_t rows = 0;
    for (auto& w : r.workstreams)
      for (auto& it : w.iterations)
        if (++rows <= markdown_ok_rows)
          md << "| " << cell(w.id) << " | " << cell(it.name) << " | "
             << (it.passed ? "passed" : "failed") << " | "
             << cell(last_line(it.detail)) << " |\n";
    if (rows > markdown_ok_rows)
      md << "| " << rows - markdown_ok_rows
         << " more iterations in the JSON report | | | |\n";
  }
  if (!r.gates.empty()) {
    md << "\n## Gates\n\n| gate | status | attempts | checks |\n"
       << "|---|---|---|---|\n";
    for (auto& g : r.gates) {
      std::string checks;
      for (auto& c : g.checks)
        checks += (checks.empty() ? "" : ", ") + c.name + " "
                  + (c.passed ? "passed" : "failed");
      md << "| " << cell(g.id) << " | " << to_string(g.status) << " | "
         << g.attempts << " | " << cell(checks) << " |\n";
    }
  }
  if (!r.run_dir.empty())
    render_changes(md, r);
  if (!r.usage.empty()) {
    md << "\n## Usage\n\n| | model | input | output | cache read | "
          "cache write | cost |\n"
       << "|---|---|---|---|---|---|---|\n";
    auto row = [&](const std::string& who, const troupe::usage& u) {
      md << "| " << cell(who) << " | " << cell(u.model) << " | "
         << u.input_tokens << " | " << u.output_tokens << " | "
         << u.cache_read_tokens << " | " << u.cache_write_tokens << " | "
         << dollars(u.cost_usd) << " |\n";
    };
    // An agent's own calls, then its sub-agents', apart; each token once.
    size_t rows = 0;
    for (auto& u : r.planning_usage)
      row("planning", u);
    for (auto& w : r.workstreams) {
      auto own = w.sub_agent_usage.empty()
                   ? w.usage
                   : usage_less(w.usage, w.sub_agent_usage);
      for (auto& u : own)
        if (++rows <= markdown_ok_rows)
          row(w.id, u);
      for (auto& u : w.sub_agent_usage)
        if (++rows <= markdown_ok_rows)
          row(w.id + " (sub-agents)", u);
    }
    if (rows > markdown_ok_rows)
      md << "| " << rows - markdown_ok_rows
         << " more rows in the JSON report | | | | | | |\n";
    troupe::usage total{"all models"};
    for (auto& u : r.usage) {
      row("total", u);
      total += u;
    }
    if (r.usage.size() > 1)
      row("total", total);
    for (auto& u : r.sub_agent_usage)
      row("of which sub-agents", u);
    md << "\nSpent " << dollars(r.cost_usd) << "; with every agent on the "
       << "deep tier, the same tokens would have cost "
       << dollars(r.deep_tier_cost_usd) << ".\n";
  }
  if (r.max_cost_usd > 0) {
    md << "\nBudget: " << dollars(r.cost_usd) << " of "
       << dollars(r.max_cost_usd) << " spent.";
    if (r.budget_stopped)
      md << " The budget stopped the run: what had not started was not "
            "started, so as not to pass it.";
    if (r.cost_usd > r.max_cost_usd)
      md << " An agent's last call cost more than its share had left: an "
            "agent can stop only between calls.";
    md << "\n";
  }
  bool heading = false;
  for (auto& w : r.workstreams) {
    if (w.status != ws_state::failed && w.status != ws_state::timed_out)
      continue;
    if (!heading) {
      md << "\n## Failures\n";
      heading = true;
    }
    md << "\n### " << w.id << " (" << to_string(w.status) << ", exit "
       << w.exit_code << ", " << w.attempts << " attempts)\n\n```\n"
       << last_lines(w.output, 20) << "\n```\n";
  }
  for (auto& g : r.gates) {
    if (g.status != gate_state::failed)
      continue;
    if (!heading) {
      md << "\n## Failures\n";
      heading = true;
    }
    md << "\n### gate " << g.id << "\n\n";
    for (auto& c : g.checks)
      if (!c.passed)
        md << "- " << c.name << ": " << last_lines(c.detail, 10) << "\n";
  }
  size_t blocked = 0;
  for (auto& w : r.workstreams)
    blocked += w.status == ws_state::blocked ? 1 : 0;
  if (blocked > 0)
    md << "\nPartial result: " << blocked
       << (blocked == 1 ? " workstream was" : " workstreams were")
       << " blocked and did not run.\n";
  return md.str();
}

namespace {

struct synthesizer_state {
  static inline const char* name = "troupe.synthesizer";
};

synthesizer_actor::behavior_type
synthesizer(synthesizer_actor::stateful_pointer<synthesizer_state>) {
  return {
    [](synthesize_atom, const plan& p, run_report& r) -> run_report {
      fold_report(p, r);
      r.synthesized_by = p.synthesis.persona;
      r.markdown = render_markdown(p, r);
      return std::move(r);
    },
  };
}

struct planner_state {
  static inline const char* name = "troupe.planner";
};

planner_actor::behavior_type
planner(planner_actor::stateful_pointer<planner_state>) {
  return {
    [](assess_atom, const plan& p) -> plan_assessment { return assess(p); },
  };
}

} // namespace

synthesizer_actor spawn_synthesizer(caf::actor_system& sys) {
  return sys.spawn(synthesizer);
}

planner_actor spawn_planner(caf::actor_system& sys) {
  return sys.spawn(planner);
}

} // namespace troupe
