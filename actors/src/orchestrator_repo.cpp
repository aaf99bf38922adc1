// Runs on a git repository: the workspace each dispatch names, each
// accepted change integrated (or refused) before its workstream ends, the
// `conflicts` check that integration answers, and the change set the run
// leaves for approval.

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/run_dir.hpp"

namespace troupe::orch {

bool on_repository(const run_state& run) {
  return run.opts.repo.enabled();
}

bool writes(const ws_run& w) {
  return w.def->agent == agent_kind::general && w.checks_gate == npos
         && !w.synthesizes;
}

std::string settle_repository(run_options& opts, const std::string& id,
                              const std::string& node) {
  auto& repo = opts.repo;
  if (!repo.enabled())
    return {};
  auto& base = repo.base;
  auto hex = (base.size() == 40 || base.size() == 64)
             && base.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (repo.path.front() != '/' || !hex
      || (!repo.run_dir.empty() && repo.run_dir.front() != '/'))
    return "repository: an absolute path and a full commit id are needed";
  std::error_code ec;
  if (!std::filesystem::exists(repo.path + "/.git", ec))
    return "repository: " + repo.path + " is no git checkout on " + node;
  if (repo.run_dir.empty())
    repo.run_dir = default_run_dir(repo.path, id);
  // The run works in its own directory, never in the user's checkout.
  opts.workdir = repo.run_dir;
  return {};
}

void start_integrator(self_ptr self, run_state& run) {
  if (!on_repository(run) || run.replaying)
    return;
  auto& repo = run.opts.repo;
  run.integrator
    = spawn_integrator(self->system(), repo.path, repo.base, repo.run_dir);
}

workspace_spec workspace_for(const run_state& run, const ws_run& w) {
  workspace_spec ws;
  if (!on_repository(run))
    return ws;
  auto& repo = run.opts.repo;
  ws.mode = w.checks_gate != npos ? "check" : writes(w) ? "write" : "read";
  ws.repo = repo.path;
  ws.url = repo.url;
  ws.base = repo.base;
  ws.patch = run.integrated_patch;
  ws.carry = w.carry;
  ws.root = repo.run_dir + "/workspaces";
  return ws;
}

std::vector<std::string> fixer_owns(const run_state& run, const gate_run& g) {
  std::set<std::string> owns;
  for (auto& id : g.def.after)
    if (auto i = run.index.find(id); i != run.index.end())
      owns.insert(run.ws[i->second].def->owns.begin(),
                  run.ws[i->second].def->owns.end());
  // A gate after read-only work only: its fixer may change anything.
  if (owns.empty())
    return {"**"};
  return {owns.begin(), owns.end()};
}

namespace {

// Whether a gate that runs after `w` checks for conflicts: then a change
// that does not apply fails that check instead of the workstream.
bool conflicts_checked(const run_state& run, const ws_run& w) {
  for (auto gi : w.gates_after)
    for (auto& c : run.gates[gi].def.checks)
      if (c.kind == "conflicts")
        return true;
  return false;
}

// Says which workstreams integrated before changed the files of a change
// that does not apply: "b.txt (also changed by a)".
std::string conflict_detail(const run_state& run,
                            const std::vector<std::string>& files,
                            const std::string& git_said) {
  std::string out;
  for (auto& f : files) {
    auto i = run.file_writers.find(f);
    if (i == run.file_writers.end())
      continue;
    out += (out.empty() ? "" : ", ") + f + " (also changed by";
    for (auto& id : i->second)
      out += " " + id;
    out += ")";
  }
  if (out.empty())
    return git_said;
  return out + ": " + git_said;
}

void integrated(self_ptr self, run_state& run, size_t idx, size_t pool_idx,
                workstream_result r, integration_outcome o) {
  auto& w = run.ws[idx];
  w.integrating = false;
  r.diff.clear();
  r.files_changed = o.files;
  r.lines_added = o.added;
  r.lines_removed = o.removed;
  if (o.verdict == "integrated") {
    w.diff_file = o.diff_file;
    run.integrated_patch = std::move(o.patch);
    for (auto& f : o.files)
      run.file_writers[f].insert(w.def->id);
    // A fixer made the gate's integrated tree whole again.
    if (w.fixes_gate != npos)
      for (auto& id : run.gates[w.fixes_gate].def.after)
        if (auto i = run.index.find(id); i != run.index.end())
          run.ws[i->second].conflict.clear();
  } else if (o.verdict == "conflict" && conflicts_checked(run, w)) {
    w.conflict = conflict_detail(run, o.files, o.why);
    r.summary += (r.summary.empty() ? "" : "; ")
                 + std::string{"its change does not apply: "} + w.conflict;
  } else {
    r.status = ws_state::failed;
    if (o.verdict == "ownership" && !writes(w))
      r.summary = "read-only: its agent is " + to_string(w.def->agent)
                  + ", and it changed " + joined(o.files);
    else if (o.verdict == "ownership")
      r.summary = "ownership: " + o.why;
    else if (o.verdict == "conflict")
      r.summary = "conflict: its change does not apply onto the integrated "
                  "tree: "
                  + conflict_detail(run, o.files, o.why);
    else
      r.summary = "its change could not be integrated: " + o.why;
    r.output = r.summary + (r.output.empty() ? "" : "\n" + r.output);
  }
  accept_attempt(self, run, idx, pool_idx, std::move(r));
}

} // namespace

bool integrate_result(self_ptr self, run_state& run, size_t idx,
                      size_t pool_idx, workstream_result& r) {
  auto& w = run.ws[idx];
  if (!on_repository(run) || !run.integrator || r.status != ws_state::succeeded
      || run.cancelling || (!writes(w) && r.diff.empty())) {
    r.diff.clear();
    return false;
  }
  // An iteration whose check failed: the next one goes on from its change.
  if (w.def->iterates() && !r.check.passed) {
    w.carry = std::move(r.diff);
    r.diff.clear();
    return false;
  }
  // Until the integrator answers, no watchdog or lost node takes it back.
  w.integrating = true;
  w.pool = npos;
  auto run_id = run.id;
  auto diff = std::move(r.diff);
  r.diff.clear();
  // Read-only work owns nothing: whatever it changed is refused.
  auto owns = writes(w) ? w.def->owns : std::vector<std::string>{};
  self
    ->request(run.integrator, caf::infinite, integrate_atom_v, w.def->id,
              std::move(diff), std::move(owns))
    .then(
      [=](integration_outcome& o) mutable {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        guarded(self, run_id, [&] {
          integrated(self, i->second, idx, pool_idx, std::move(r),
                     std::move(o));
        });
      },
      [=](caf::error& err) mutable {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        integration_outcome o;
        o.verdict = "failed";
        o.why = self->system().render(err);
        guarded(self, run_id, [&] {
          integrated(self, i->second, idx, pool_idx, std::move(r),
                     std::move(o));
        });
      });
  return true;
}

check_result check_integration(const run_state& run, const gate_run& g) {
  check_result c{"conflicts", true, {}};
  size_t changes = 0;
  for (auto& id : g.def.after) {
    auto i = run.index.find(id);
    if (i == run.index.end())
      continue;
    auto& w = run.ws[i->second];
    if (!w.diff_file.empty())
      ++changes;
    if (w.conflict.empty())
      continue;
    c.passed = false;
    c.detail += (c.detail.empty() ? "" : "; ") + id
                + "'s change does not apply: " + w.conflict;
  }
  if (c.passed)
    c.detail = std::to_string(changes) + " change" + (changes == 1 ? "" : "s")
               + " integrated, no conflict";
  return c;
}

namespace {

// The order the run's changes are committed in: each after everything its
// workspace was made from (its dependencies, and for a gate's fixer the
// gate's work; for work a gate guards, the gate's fixers), otherwise in the
// plan's order, so the same plan always commits in the same order.
std::vector<size_t> commit_order(const run_state& run) {
  auto n = run.ws.size();
  std::vector<std::vector<size_t>> after(n);
  auto edge = [&](size_t from, size_t to) { after[to].push_back(from); };
  for (size_t i = 0; i < n; ++i) {
    auto& w = run.ws[i];
    for (auto& d : w.def->depends_on)
      if (auto j = run.index.find(d); j != run.index.end())
        edge(j->second, i);
    if (w.parent != npos)
      edge(w.parent, i);
    if (w.fixes_gate != npos)
      for (auto& a : run.gates[w.fixes_gate].def.after)
        if (auto j = run.index.find(a); j != run.index.end())
          edge(j->second, i);
  }
  for (size_t i = 0; i < n; ++i)
    if (run.ws[i].fixes_gate != npos)
      for (auto j : run.gates[run.ws[i].fixes_gate].guarded)
        edge(i, j);
  std::vector<size_t> order;
  std::vector<bool> placed(n, false);
  // Small runs: a quadratic pass is plenty, and plainly deterministic.
  while (order.size() < n) {
    bool progressed = false;
    for (size_t i = 0; i < n; ++i) {
      if (placed[i])
        continue;
      auto ready = std::all_of(after[i].begin(), after[i].end(),
                               [&](size_t j) { return placed[j]; });
      if (!ready)
        continue;
      placed[i] = true;
      order.push_back(i);
      progressed = true;
      break;
    }
    if (!progressed) // a cycle cannot be: the plan was validated
      for (size_t i = 0; i < n; ++i)
        if (!placed[i]) {
          placed[i] = true;
          order.push_back(i);
        }
  }
  return order;
}

} // namespace

change_set changes_of(const run_state& run) {
  auto& repo = run.opts.repo;
  change_set c;
  c.run_id = run.id;
  c.repo = repo.path;
  c.base = repo.base;
  c.branch = repo.branch.empty() ? "troupe/" + run.id : repo.branch;
  c.author_name = repo.author_name.empty() ? "Troupe" : repo.author_name;
  c.author_email
    = repo.author_email.empty() ? "troupe@localhost" : repo.author_email;
  for (auto i : commit_order(run)) {
    auto& w = run.ws[i];
    if (w.diff_file.empty())
      continue;
    accepted_change a;
    a.id = w.def->id;
    a.title = w.def->title.empty() ? w.def->id : w.def->title;
    a.persona = w.def->persona;
    a.message = a.title + "\n\nWorkstream: " + a.id
                + "\nPersona: " + (a.persona.empty() ? "none" : a.persona)
                + "\nRun: " + run.id + "\n";
    a.diff_file = w.diff_file;
    a.files = w.result.files_changed;
    a.added = w.result.lines_added;
    a.removed = w.result.lines_removed;
    c.changes.push_back(std::move(a));
  }
  return c;
}

} // namespace troupe::orch
