// The handoff contract: what a dispatched workstream learns from the work
// before it (its dependencies' results, its failed attempts, its previous
// iteration, a gate's failed checks) and what the synthesis agent reads.

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include "orchestrator_state.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/protocol/valid_text.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/prompts.hpp"

namespace troupe::orch {

namespace {

nlohmann::json result_summary(const workstream_result& r) {
  return {{"id", r.id},           {"status", to_string(r.status)},
          {"summary", r.summary}, {"exit_code", r.exit_code},
          {"node", r.node},       {"files_changed", r.files_changed},
          {"outputs", r.outputs}};
}

// Bytes of results the synthesis agent reads at most, shared among them:
// a huge run's synthesis gets a line or so of each, never more than a
// model takes.
constexpr size_t synthesis_context_limit = 256 * 1024;

// `files` cut to what fits in about `bytes`, saying how many were left out.
nlohmann::json some_files(const std::vector<std::string>& files, size_t bytes) {
  auto out = nlohmann::json::array();
  size_t used = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    used += files[i].size() + 3;
    if (used > bytes && i > 0) {
      out.push_back("... and " + std::to_string(files.size() - i) + " more");
      break;
    }
    out.push_back(utf8_head(files[i], bytes));
  }
  return out;
}

// Appends `item` to `list` if its JSON fits in what is left of `limit`
// (`used` so far); else counts it in `left_out`.
void add_within(nlohmann::json& list, nlohmann::json item, size_t limit,
                size_t& used, size_t& left_out) {
  auto size = json_text(item).size() + 1;
  if (used + size > limit) {
    ++left_out;
    return;
  }
  used += size;
  list.push_back(std::move(item));
}

// What the synthesis agent reads: how the work went, every result (but
// the gates' command checks, which their gates report) and each gate's
// verdict, within `synthesis_context_limit`. The gates take a quarter of
// it at most, the results the rest: each one's text is cut to its share,
// and what still does not fit is only counted.
void add_synthesis_context(const run_state& run, nlohmann::json& ctx) {
  constexpr size_t floor = 64;
  size_t entries = 0;
  size_t planned = 0;
  size_t ok = 0;
  for (auto& w : run.ws) {
    if (w.synthesizes || w.checks_gate != npos)
      continue;
    ++entries;
    if (w.fixes_gate == npos) {
      ++planned;
      ok += w.state == ws_state::succeeded ? 1 : 0;
    }
  }
  // The gates: which passed, and what the checks that failed said.
  size_t failed_checks = 0;
  for (auto& g : run.gates)
    for (auto& c : g.result.checks)
      failed_checks += c.passed ? 0 : 1;
  auto gate_limit = synthesis_context_limit / 4;
  auto detail_share
    = std::max(floor, gate_limit / std::max<size_t>(failed_checks, 1));
  size_t used = 0;
  size_t passed = 0;
  size_t gates_left_out = 0;
  auto gates = nlohmann::json::array();
  for (auto& g : run.gates) {
    passed += g.state == gate_state::passed ? 1 : 0;
    auto checks = nlohmann::json::array();
    for (auto& c : g.result.checks)
      checks.push_back(
        {{"name", utf8_head(c.name, floor * 4)},
         {"passed", c.passed},
         {"detail",
          c.passed ? std::string{} : utf8_tail(c.detail, detail_share)}});
    add_within(gates,
               {{"id", g.def.id},
                {"status", to_string(g.state)},
                {"checks", std::move(checks)}},
               gate_limit, used, gates_left_out);
  }
  // The results, in the run's order, with what the gates left.
  auto limit = synthesis_context_limit - used;
  used = 0;
  auto share = std::max(floor, limit / std::max<size_t>(entries, 1));
  auto deps = nlohmann::json::array();
  size_t left_out = 0;
  for (auto& w : run.ws) {
    if (w.synthesizes || w.checks_gate != npos)
      continue;
    auto r = result_summary(w.result);
    r["summary"] = utf8_head(w.result.summary, share / 2);
    r["files_changed"] = some_files(w.result.files_changed, share / 4);
    auto& outputs = r["outputs"];
    auto each
      = std::max(floor, share / 2 / std::max<size_t>(outputs.size(), 1));
    for (auto& [key, value] : outputs.items())
      if (value.is_string())
        value = utf8_head(value.get<std::string>(), each);
    add_within(deps, std::move(r), limit, used, left_out);
  }
  ctx["dependencies"] = std::move(deps);
  if (left_out > 0)
    ctx["left_out"] = left_out;
  ctx["gates"] = std::move(gates);
  if (gates_left_out > 0)
    ctx["gates_left_out"] = gates_left_out;
  auto outcome = to_string(work_status(run)) + ": " + std::to_string(ok)
                 + " of " + std::to_string(planned) + " workstreams succeeded";
  if (!run.gates.empty())
    outcome += ", " + std::to_string(passed) + " of "
               + std::to_string(run.gates.size()) + " gates passed";
  ctx["outcome"] = outcome;
}

// The handoff contract: what a workstream learns from the work before it.
} // namespace

std::string make_context(const run_state& run, const ws_run& w) {
  nlohmann::json ctx;
  ctx["run_id"] = run.id;
  ctx["plan"] = run.p->name;
  ctx["goal"] = run.p->goal;
  ctx["workstream"] = {{"id", w.def->id},
                       {"title", w.def->title},
                       {"persona", w.def->persona},
                       {"prompt", w.def->prompt},
                       {"owns", w.def->owns}};
  ctx["attempt"] = w.attempts;
  if (w.synthesizes) {
    add_synthesis_context(run, ctx);
  } else {
    // A sub-plan's first workstreams start from what their parent did.
    auto* from = &w;
    while (from->def->depends_on.empty() && from->parent != npos)
      from = &run.ws[from->parent];
    auto deps = nlohmann::json::array();
    for (auto& dep : from->def->depends_on)
      if (auto i = run.index.find(dep); i != run.index.end())
        deps.push_back(result_summary(run.ws[i->second].result));
    ctx["dependencies"] = std::move(deps);
  }
  auto prev = nlohmann::json::array();
  for (auto& f : w.failures)
    prev.push_back({{"attempt", f.attempts},
                    {"status", to_string(f.status)},
                    {"exit_code", f.exit_code},
                    {"summary", f.summary},
                    {"output", utf8_tail(f.output, retry_context_limit)}});
  ctx["previous_attempts"] = std::move(prev);
  if (!w.iteration_results.empty()) {
    auto& last = w.iteration_results.back();
    ctx["previous_iteration"]
      = {{"iteration", w.iteration_results.size()},
         {"summary", last.summary},
         {"output", utf8_tail(last.output, retry_context_limit)},
         {"check",
          {{"name", last.check.name},
           {"detail", utf8_tail(last.check.detail, retry_context_limit)}}}};
  }
  if (w.fixes_gate != npos) {
    auto& g = run.gates[w.fixes_gate];
    auto checks = nlohmann::json::array();
    for (auto& c : g.result.checks)
      checks.push_back(
        {{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
    ctx["gate"] = {{"id", g.def.id}, {"checks", std::move(checks)}};
  }
  return json_text(ctx);
}

} // namespace troupe::orch
