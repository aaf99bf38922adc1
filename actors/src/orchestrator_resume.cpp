// Resuming: a run rebuilt from its journal goes on where it stopped.
//
// The run's state is a function of its plan and of what happened to it
// from outside: the attempts' results and the cancels, which its journal
// holds as events. A replay feeds those to the same steps that took them
// the first time, with every workstream that becomes ready taken as
// dispatched; everything else (readiness, gates and their fixers and
// checks, retries, blocking, failure policies) follows as it did then.
// What was dispatched and has no result was in flight: it runs again,
// its lost attempt not charged.

#include <filesystem>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

// The journal, once everything queued for it is in, so that reading it
// sees what this orchestrator wrote.
std::shared_ptr<journal>& journal_to_read(self_ptr self) {
  if (auto& w = self->state.writer)
    w->sync();
  return self->state.cfg.journal;
}

caf::error resume_run(self_ptr self, const std::string& run_id,
                      run_options opts, observer_actor observer,
                      std::string& id) {
  auto& st = self->state;
  auto& j = journal_to_read(self);
  if (!j)
    return caf::make_error(errc::unknown_run, "run " + run_id
                                                + ": nothing is journaled "
                                                  "here (--no-journal)");
  plan p;
  std::vector<event> events;
  journaled_run found;
  try {
    auto r = j->find_run(run_id);
    if (!r)
      return caf::make_error(errc::unknown_run,
                             "no run " + run_id + " in journal " + j->path());
    found = *r;
    if (st.runs.count(found.id) > 0)
      return caf::make_error(errc::unknown_run,
                             "run " + found.id + " is running here already");
    if (st.reporting.count(found.id) > 0)
      return caf::make_error(errc::unknown_run,
                             "run " + found.id + " has ended here; its "
                             "report is being written");
    if (found.status != "running")
      return caf::make_error(errc::unknown_run,
                             "run " + found.id + " finished ("
                               + found.status + "); `troupe report "
                               + found.id + "` shows its report");
    j->claim_run(found.id);
    p = j->load_plan(found.id);
    events = j->events(found.id);
  } catch (const journal_error& e) {
    log()->error("cannot resume run {}: {}", run_id, e.what());
    return caf::make_error(errc::journal_failed, e.what());
  }
  id = found.id;
  diagnostics diags;
  validate_plan(p, offered_executors(self), diags);
  if (!diags.ok())
    return caf::make_error(errc::invalid_plan,
                           "run " + id + ": its journaled plan is no longer "
                           "valid here");
  // Its integrated changes live in the integrator it had.
  if (std::filesystem::exists(found.workdir + "/repository"))
    return caf::make_error(errc::invalid_plan,
                           "run " + id
                             + " works on a git repository, and "
                               "such runs cannot be resumed yet; its accepted "
                               "changes are in "
                             + found.workdir + "/diffs");
  opts.workdir = found.workdir;
  opts.run_id = id;
  auto max_parallel = opts.max_parallel > 0 ? opts.max_parallel
                                            : found.max_parallel;
  auto& run = open_run(self, id, std::move(p), std::move(opts),
                       std::move(observer), std::max(max_parallel, 1),
                       found.started_at);
  guarded(self, id, [&] {
    replay(self, run, events);
    pump(self, run);
    maybe_finish(self, id);
  });
  return {};
}

// Resumes the journal's unfinished runs that no other process runs.
void resume_unfinished(self_ptr self) {
  auto& j = self->state.cfg.journal;
  if (!j)
    return;
  std::vector<journaled_run> runs;
  try {
    runs = j->runs();
  } catch (const journal_error& e) {
    log()->error("cannot look for runs to resume: {}", e.what());
    return;
  }
  for (auto& r : runs) {
    if (r.status != "running")
      continue;
    std::string id;
    if (auto err = resume_run(self, r.id, {}, {}, id))
      log()->warn("run {} not resumed: {}", r.id, self->system().render(err));
    else
      log()->warn("run {} resumed from journal {}", id, j->path());
  }
}

void replay(self_ptr self, run_state& run, const std::vector<event>& events) {
  run.replaying = true;
  // Per workstream: dispatched according to the journal, and not answered
  // yet. Only an answer to such a dispatch is a result to replay; other
  // ends (blocked, cancelled before running) follow from the replay itself.
  std::vector<bool> in_flight(run.ws.size(), false);
  auto find = [&](const std::string& id) -> size_t {
    auto i = run.index.find(id);
    if (i == run.index.end())
      return npos;
    if (in_flight.size() < run.ws.size())
      in_flight.resize(run.ws.size(), false);
    return i->second;
  };
  for (size_t i = 0; i < run.ws.size(); ++i)
    make_ready(self, run, i);
  pump(self, run);
  for (auto& ev : events) {
    switch (ev.kind) {
      case event_kind::ws_dispatched:
        if (auto idx = find(ev.subject); idx != npos)
          in_flight[idx] = true;
        break;
      case event_kind::ws_requeued:
        if (auto idx = find(ev.subject); idx != npos)
          in_flight[idx] = false;
        break;
      case event_kind::ws_retrying:
      case event_kind::ws_iterating:
      case event_kind::ws_expanded:
      case event_kind::ws_ended: {
        auto idx = find(ev.subject);
        if (idx == npos || !in_flight[idx])
          break;
        in_flight[idx] = false;
        if (run.ws[idx].state != ws_state::dispatched) {
          log()->warn("run {}: the journal's result for {} does not fit the "
                      "replay; it runs again",
                      run.id, ev.subject);
          break;
        }
        auto r = ev.result;
        // A workstream's end holds every attempt's tokens; the failed
        // attempts' came with their own events, replayed already.
        if (ev.kind == event_kind::ws_ended)
          for (auto* earlier :
               {&run.ws[idx].failures, &run.ws[idx].iteration_results})
            for (auto& f : *earlier) {
              r.usage = usage_less(r.usage, f.usage);
              r.sub_agent_usage
                = usage_less(r.sub_agent_usage, f.sub_agent_usage);
            }
        accept_attempt(self, run, idx, npos, std::move(r));
        break;
      }
      case event_kind::run_cancelling:
        // The budget stopped it, or somebody cancelled it.
        if (ev.message.rfind("budget: ", 0) == 0) {
          run.budget_stopped = true;
          start_cancel(self, run, "not run: " + ev.message.substr(8));
        } else {
          run.user_cancelled = true;
          start_cancel(self, run, "cancelled");
        }
        break;
      case event_kind::run_failing:
        run.internal_error = ev.message;
        start_cancel(self, run, "cancelled: " + ev.message);
        break;
      default:
        break;
    }
    // Should everything else have ended, the synthesis came next, as it did
    // then: the events that follow may be its own.
    maybe_synthesize(self, run);
    run.seq = ev.seq;
  }
  run.outbox.clear();
  run.must_journal = false;
  run.replaying = false;
  if (in_flight.size() < run.ws.size())
    in_flight.resize(run.ws.size(), false);
  // Dispatched in the replay but unanswered: in flight when the run
  // stopped (those the journal saw go out), or never sent at all.
  std::vector<size_t> unanswered;
  for (size_t idx = 0; idx < run.ws.size(); ++idx) {
    if (run.ws[idx].state != ws_state::dispatched)
      continue;
    unanswered.push_back(idx);
    if (in_flight[idx])
      run.rerun.push_back(run.ws[idx].def->id);
  }
  std::string message = "resumed after an interruption";
  if (!run.rerun.empty()) {
    message += "; in flight then, running again:";
    for (auto& id : run.rerun)
      message += " " + id;
  }
  emit(self, run, event_kind::run_resumed, run.id, "resumed", 0, {},
       message);
  for (auto idx : unanswered) {
    auto& w = run.ws[idx];
    if (requeue(self, run, idx, "cancelled") && in_flight[idx])
      emit(self, run, event_kind::ws_requeued, w.def->id, "ready",
           w.attempts, {}, "requeued: in flight when the run stopped");
  }
  // The resumption is journaled before anything runs again.
  run.must_journal = true;
  log()->info("run {} {}", run.id, message);
}

} // namespace troupe::orch
