// Sub-plans: a workstream whose work makes a plan (`output: plan`) runs
// that plan as its children, within the same run. Their ids are the
// parent's with their own after a '/', their dependents are the parent's
// once all of them ended, and the parent's result is their account.

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/llm_planner.hpp"

namespace troupe::orch {

namespace {

// Bytes of a refused sub-plan's errors in the parent's result.
constexpr size_t subplan_errors_bytes = 8000;

// Where a result holds its plan: what a command's result file or the
// command itself printed, or an agent's reply.
std::string plan_text_of(const workstream_result& r) {
  for (auto key : {"plan", "reply"})
    if (auto i = r.outputs.find(key); i != r.outputs.end())
      return plan_text_in(i->second);
  return plan_text_in(r.output);
}

void refuse(workstream_result& r, const std::string& why,
            const std::string& detail = {}) {
  r.status = ws_state::failed;
  r.summary = "its sub-plan cannot run: " + why;
  r.output = utf8_tail(r.output, 16 * 1024) + "\n[troupe] " + r.summary
             + (detail.empty() ? "" : "\n" + detail);
}

// What in `p` would run a shell command, named; empty if nothing would:
// a workstream's executor, its `until` check, a gate's command check or
// its fixer's executor.
std::string command_in(const plan& p) {
  if (!p.repo.empty())
    return "the plan an agent made names a repository";
  auto runs_commands = [](const executor_spec& x) {
    return !is_agent_executor(x.kind) && x.kind != "noop" && x.kind != "sleep";
  };
  for (auto& ws : p.workstreams) {
    if (runs_commands(ws.executor))
      return "workstream " + ws.id + " of the plan an agent made asks for a "
             + ws.executor.kind + " executor";
    if (ws.iterates())
      return "workstream " + ws.id
             + " of the plan an agent made repeats until a command passes";
  }
  for (auto& g : p.gates) {
    for (auto& c : g.checks)
      if (c.kind == "command")
        return "gate " + g.id + " of the plan an agent made runs a command";
    if (runs_commands(g.remediate.executor))
      return "gate " + g.id + " of the plan an agent made has a fixer with a "
             + g.remediate.executor.kind + " executor";
  }
  return {};
}

} // namespace

bool expand(self_ptr self, run_state& run, size_t idx, workstream_result& r) {
  auto& s = run.p->settings;
  auto depth = run.ws[idx].depth + 1;
  if (depth > s.max_subplan_depth) {
    refuse(r, "it would nest " + std::to_string(depth)
                + " deep, more than settings.max_subplan_depth ("
                + std::to_string(s.max_subplan_depth) + ")");
    return false;
  }
  diagnostics d;
  auto child = load_plan_text(plan_text_of(r), "", offered_executors(self), d);
  if (!d.ok()) {
    std::string errors;
    size_t count = 0;
    for (auto& x : d.items())
      if (!x.warning) {
        errors += (errors.empty() ? "" : "\n") + to_string(x);
        ++count;
      }
    refuse(r,
           std::to_string(count) + " error" + (count == 1 ? "" : "s")
             + " in the plan it made: "
             + utf8_clip(errors.substr(0, errors.find('\n')), 300),
           utf8_head(errors, subplan_errors_bytes));
    return false;
  }
  // What a model wrote runs no command: an agent's reply (a prompt may
  // have steered it) is no shell script.
  if (is_agent_executor(run.ws[idx].def->executor.kind))
    if (auto what = command_in(child); !what.empty()) {
      refuse(r, what + "; an agent's sub-plan may only run agents");
      return false;
    }
  auto total = run.p->workstreams.size() + run.children.size()
               + child.workstreams.size();
  if (total > static_cast<size_t>(s.max_workstreams)) {
    refuse(r, "the run would have " + std::to_string(total)
                + " workstreams, more than settings.max_workstreams ("
                + std::to_string(s.max_workstreams) + ")");
    return false;
  }

  // The children, their ids and dependencies under the parent's.
  auto prefix = run.ws[idx].def->id + "/";
  auto first = run.ws.size();
  for (auto& cw : child.workstreams) {
    auto& def = run.children.emplace_back(std::move(cw));
    def.id = prefix + def.id;
    for (auto& dep : def.depends_on)
      dep = prefix + dep;
    auto& w = run.ws.emplace_back();
    w.def = &def;
    w.parent = idx;
    w.depth = depth;
    run.index.emplace(def.id, run.ws.size() - 1);
  }
  auto last = run.ws.size();
  for (auto i = first; i < last; ++i)
    for (auto& dep : run.ws[i].def->depends_on)
      if (auto d = run.index.find(dep); d != run.index.end()) {
        run.ws[i].remaining_deps += 1;
        run.ws[d->second].dependents.push_back(i);
      }
  for (auto& g : child.gates) {
    auto gi = run.gates.size();
    auto& gr = run.gates.emplace_back();
    gr.def = std::move(g);
    gr.def.id = prefix + gr.def.id;
    for (auto& a : gr.def.after)
      a = prefix + a;
    gr.parent = idx;
    wire_gate(run, gi);
    run.ws[idx].child_gates.push_back(gi);
  }

  auto& w = run.ws[idx];
  for (auto i = first; i < last; ++i)
    w.children.push_back(i);
  w.children_left = last - first;
  // The parent's own work is done: its slot is free while its children
  // run, and nothing about it can time out.
  w.state = ws_state::running;
  w.pool = npos;
  w.deadline = clock_type::time_point::max();
  r.outputs["subplan"] = child.name;
  emit(self, run, event_kind::ws_expanded, w.def->id, "expanded", w.attempts,
       r.node,
       std::to_string(last - first) + " workstreams in sub-plan " + child.name)
    .result
    = r;
  w.plan_result = std::move(r);
  for (auto i = first; i < last; ++i)
    make_ready(self, run, i);
  return true;
}

namespace {

// Ends `parent` once its sub-plan has: every child ended, and every gate
// passed or failed (a gate's checks and fixers run after the work it
// follows; a cancel stops them).
void end_subplan(self_ptr self, run_state& run, size_t parent) {
  auto& w = run.ws[parent];
  if (w.children_left > 0 || is_terminal(w.state))
    return;
  std::vector<std::string> failed_gates;
  for (auto gi : w.child_gates) {
    auto& g = run.gates[gi];
    if (g.state == gate_state::failed)
      failed_gates.push_back("gate " + g.def.id + " failed");
    else if (g.state != gate_state::passed && !run.cancelling)
      return;
  }
  auto r = w.plan_result;
  // The plan is in the event that expanded it; the result tells what came
  // of it.
  r.outputs.erase("plan");
  r.outputs.erase("reply");
  size_t ok = 0;
  std::vector<std::string> failed, other;
  std::set<std::string> files(r.files_changed.begin(), r.files_changed.end());
  for (auto c : w.children) {
    auto& cr = run.ws[c].result;
    files.insert(cr.files_changed.begin(), cr.files_changed.end());
    if (cr.status == ws_state::succeeded)
      ++ok;
    else if (cr.status == ws_state::failed || cr.status == ws_state::timed_out)
      failed.push_back(run.ws[c].def->id + " " + to_string(cr.status));
    else
      other.push_back(run.ws[c].def->id + " " + to_string(cr.status));
  }
  auto n = w.children.size();
  r.files_changed.assign(files.begin(), files.end());
  r.status = ok == n && failed_gates.empty() ? ws_state::succeeded
             : run.cancelling                ? ws_state::cancelled
                                             : ws_state::failed;
  r.summary = "sub-plan " + r.outputs["subplan"] + ": " + std::to_string(ok)
              + " of " + std::to_string(n) + " workstreams succeeded";
  auto list = [&](const std::vector<std::string>& xs) {
    std::string out;
    for (size_t i = 0; i < xs.size() && i < 5; ++i)
      out += (i == 0 ? "" : ", ") + xs[i];
    if (xs.size() > 5)
      out += ", ...";
    return out;
  };
  if (!failed.empty())
    r.summary += "; " + list(failed);
  if (!other.empty())
    r.summary += "; " + list(other);
  if (!failed_gates.empty())
    r.summary += "; " + list(failed_gates);
  // Its children's account, handed to what depends on it.
  std::string account;
  for (auto c : w.children) {
    auto& cr = run.ws[c].result;
    account += "- " + run.ws[c].def->id + " (" + to_string(cr.status)
               + "): " + cr.summary + "\n";
  }
  r.output = utf8_tail(account, 64 * 1024);
  r.outputs["children"] = utf8_head(account, 64 * 1024);
  mark_terminal(self, run, parent, std::move(r));
}

} // namespace

void child_ended(self_ptr self, run_state& run, size_t parent) {
  auto& w = run.ws[parent];
  if (w.children_left > 0)
    w.children_left -= 1;
  end_subplan(self, run, parent);
}

void child_gate_ended(self_ptr self, run_state& run, size_t gi) {
  if (auto parent = run.gates[gi].parent; parent != npos)
    end_subplan(self, run, parent);
}

std::vector<size_t> report_order(const run_state& run) {
  std::vector<size_t> order;
  order.reserve(run.ws.size());
  std::vector<bool> placed(run.ws.size(), false);
  std::function<void(size_t)> place = [&](size_t i) {
    order.push_back(i);
    placed[i] = true;
    for (auto c : run.ws[i].children)
      place(c);
  };
  for (size_t i = 0; i < run.ws.size(); ++i)
    if (!placed[i] && run.ws[i].parent == npos)
      place(i);
  for (size_t i = 0; i < run.ws.size(); ++i)
    if (!placed[i])
      order.push_back(i);
  return order;
}

} // namespace troupe::orch
