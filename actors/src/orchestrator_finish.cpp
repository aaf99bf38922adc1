// A run's end: its status, the agent that writes its synthesis once
// everything else has ended, and its report, journaled and sent to its
// observers.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

run_status work_status(const run_state& run) {
  if (!run.internal_error.empty())
    return run_status::failed;
  if (run.user_cancelled)
    return run_status::cancelled;
  bool blocked = false;
  for (auto& w : run.ws) {
    if (w.fixes_gate != npos || w.checks_gate != npos || w.synthesizes)
      continue;
    if (w.state == ws_state::failed || w.state == ws_state::timed_out)
      return run_status::failed;
    if (w.state == ws_state::cancelled)
      return run_status::failed; // cancelled by fail_fast
    blocked = blocked || w.state == ws_state::blocked;
  }
  for (auto& g : run.gates)
    blocked = blocked || g.state == gate_state::failed;
  return blocked ? run_status::blocked : run_status::succeeded;
}

// Journals the report of a run that was reporting (unless its journal
// failed) and sends it to its observers, all sharing one message; answers
// a pending shutdown once every run has reported.
// A run on a repository keeps its report, and each workstream's output,
// in its directory beside its diffs.
static void keep_in_run_dir(const run_report& report) {
  auto& dir = report.run_dir;
  std::string failed;
  auto keep = [&](const std::string& name, const std::string& text) {
    if (auto ec = write_file_atomically(dir + "/" + name, text))
      failed = name + ": " + ec.message();
  };
  std::error_code ec;
  std::filesystem::create_directories(dir + "/logs", ec);
  keep("report.json", json_text(report) + "\n");
  keep("report.md", report.markdown);
  for (auto& w : report.workstreams) {
    auto name = w.id;
    std::replace(name.begin(), name.end(), '/', '+');
    keep("logs/" + name + ".log", w.output);
  }
  if (!failed.empty())
    log()->warn("run {}: cannot keep {} in {}", report.run_id, failed, dir);
}

void report_delivered(self_ptr self, run_report report, bool journaled) {
  auto& st = self->state;
  if (!report.run_dir.empty())
    keep_in_run_dir(report);
  auto i = st.reporting.find(report.run_id);
  std::vector<observer_actor> observers;
  std::vector<caf::typed_response_promise<run_report>> waiters;
  if (i != st.reporting.end()) {
    observers = std::move(i->second.observers);
    waiters = std::move(i->second.waiters);
    st.reporting.erase(i);
  }
  for (auto& rp : waiters)
    rp.deliver(report);
  auto msg = caf::make_message(std::move(report));
  // The run is over: should the journal fail now, that is logged, and the
  // report goes out anyway.
  if (auto& w = st.writer; w && journaled)
    w->finish_run(msg, unix_now());
  for (auto& o : observers)
    send_shared(self, o, msg);
  if (st.shutting_down && st.runs.empty() && st.reporting.empty()) {
    for (auto& rp : st.shutdown_waiters)
      rp.deliver(true);
    st.shutdown_waiters.clear();
  }
}

bool maybe_synthesize(self_ptr self, run_state& run) {
  if (!run.p->synthesis.by_agent() || run.synthesis != npos || run.cancelling
      || run.terminal < run.ws.size() || run.in_flight > 0
      || run.gates_busy > 0)
    return false;
  run.fixers.push_back(synthesis_workstream(*run.p));
  ws_run s;
  s.def = &run.fixers.back();
  s.synthesizes = true;
  run.synthesis = run.ws.size();
  run.index.emplace(s.def->id, run.synthesis);
  run.ws.push_back(std::move(s));
  make_ready(self, run, run.synthesis);
  pump(self, run);
  return true;
}

void maybe_finish(self_ptr self, const std::string& run_id) {
  auto& st = self->state;
  auto i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  auto& run = i->second;
  if (run.replaying)
    return;
  maybe_synthesize(self, run);
  if (run.finishing || run.terminal < run.ws.size() || run.in_flight > 0
      || run.gates_busy > 0) {
    flush(self, run);
    return;
  }
  run.finishing = true;
  auto status = work_status(run);
  emit(self, run, event_kind::run_finished, run.id, to_string(status));
  flush(self, run);
  log()->info("run {} finished: {}", run.id, to_string(status));
  // Until its report is out, the run answers status queries and takes
  // observers as it was when it ended.
  auto& waiting = st.reporting[run.id];
  waiting.last = snapshot(self, run);
  waiting.last.status = to_string(status);
  waiting.observers = std::move(run.observers);
  run_report report;
  report.run_id = run.id;
  report.plan = run.p->name;
  report.goal = run.p->goal;
  report.status = status;
  report.wall_s = run.now_s();
  report.rerun = run.rerun;
  report.budget_stopped = run.budget_stopped;
  report.planning_usage = run.opts.planning_usage;
  // On a repository, the run's changes wait for approval, or are committed
  // now; either way its integration tree goes.
  auto integrator = run.integrator;
  change_set changes;
  bool approved = run.opts.repo.approved;
  if (on_repository(run)) {
    report.run_dir = run.opts.repo.run_dir;
    report.base = run.opts.repo.base;
    auto c = changes_of(run);
    report.branch = c.branch;
    if (status == run_status::succeeded)
      changes = std::move(c);
  }
  report.workstreams.reserve(run.ws.size());
  for (auto i : report_order(run))
    if (run.ws[i].checks_gate == npos) // checks report in their gates
      report.workstreams.push_back(std::move(run.ws[i].result));
  for (auto& g : run.gates) {
    auto r = g.result;
    r.id = g.def.id;
    r.status = g.state;
    // A cancelled run leaves gates that never reached a verdict.
    if (run.cancelling && r.status != gate_state::passed
        && r.status != gate_state::failed)
      r.status = gate_state::cancelled;
    report.gates.push_back(std::move(r));
  }
  waiting.last.gates = report.gates;
  auto journaled = !run.journal_failed;
  // The writer may still hold the plan, to record it: then a copy. (The
  // plan is const to the run, not in itself.)
  auto shared = std::move(run.p);
  auto p = shared.use_count() == 1 ? std::move(const_cast<plan&>(*shared))
                                   : *shared;
  shared.reset();
  st.runs.erase(i);
  if (!integrator) {
    synthesize_report(self, std::move(p), std::move(report), journaled);
    return;
  }
  auto held = std::make_shared<std::pair<plan, run_report>>(std::move(p),
                                                            std::move(report));
  self
    ->request(integrator, caf::infinite, seal_atom_v, std::move(changes),
              approved)
    .then(
      [=](seal_outcome& o) {
        auto& r = held->second;
        r.approval = o.approval;
        r.commits = o.commits;
        r.commit_error = o.why;
        if (!o.why.empty())
          log()->error("run {}: {}", r.run_id, o.why);
        synthesize_report(self, std::move(held->first), std::move(r),
                          journaled);
      },
      [=](caf::error& err) {
        auto& r = held->second;
        r.commit_error = "the integrator failed: " + self->system().render(err);
        log()->error("run {}: {}", r.run_id, r.commit_error);
        synthesize_report(self, std::move(held->first), std::move(r),
                          journaled);
      });
}

void synthesize_report(self_ptr self, plan p, run_report report,
                       bool journaled) {
  auto& st = self->state;
  // The report moves into the request; should synthesis fail, the observer
  // still learns how the run ended.
  run_report outline;
  outline.run_id = report.run_id;
  outline.plan = report.plan;
  outline.status = report.status;
  outline.wall_s = report.wall_s;
  self->request(st.synthesizer, std::chrono::minutes(5), synthesize_atom_v,
                std::move(p), std::move(report))
    .then(
      [=](run_report& full) {
        report_delivered(self, std::move(full), journaled);
      },
      [=](caf::error& err) mutable {
        auto why = self->system().render(err);
        log()->error("synthesis of run {} failed: {}", outline.run_id, why);
        outline.markdown = "# " + outline.plan + ": "
                           + to_string(outline.status)
                           + "\n\nThe report could not be synthesized: " + why
                           + "\n";
        report_delivered(self, std::move(outline), journaled);
      });
}

} // namespace troupe::orch
