// What the orchestrator tells about its runs, and to whom: observers that
// subscribe, status queries, reports of finished runs, aborts. The token
// is checked before any of these is called.

#include <algorithm>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

namespace {

// The entry of `runs` that `run_id` names, in full or by a unique start.
template <class Map>
typename Map::mapped_type* find_in(Map& runs, const std::string& run_id) {
  if (auto i = runs.find(run_id); i != runs.end())
    return &i->second;
  typename Map::mapped_type* found = nullptr;
  for (auto i = runs.lower_bound(run_id);
       !run_id.empty() && i != runs.end()
       && i->first.compare(0, run_id.size(), run_id) == 0;
       ++i) {
    if (found)
      return nullptr; // ambiguous
    found = &i->second;
  }
  return found;
}

// The active run `run_id` names.
run_state* find_run(self_ptr self, const std::string& run_id) {
  return find_in(self->state.runs, run_id);
}

// The run `run_id` names that has ended and waits for its report.
reporting_run* find_reporting(self_ptr self, const std::string& run_id) {
  return find_in(self->state.reporting, run_id);
}

// Why `run_id` has no active run here.
std::string not_running(self_ptr self, const std::string& run_id) {
  if (auto ended = find_reporting(self, run_id))
    return "run " + ended->last.run_id + " finished (" + ended->last.status
           + ")";
  auto& j = journal_to_read(self);
  if (j) {
    try {
      if (auto r = j->find_run(run_id); r && r->status != "running")
        return "run " + r->id + " finished (" + r->status + ")";
    } catch (const journal_error& e) {
      return "no run " + run_id + " is running here (" + e.what() + ")";
    }
  }
  return "no run " + run_id + " is running here";
}

} // namespace

caf::result<std::string> subscribe(self_ptr self, const std::string& run_id,
                                   observer_actor observer) {
  if (!observer)
    return caf::make_error(errc::unknown_run, "no observer");
  auto run = find_run(self, run_id);
  if (!run) {
    // An ended run still takes observers for its report.
    auto ended = find_reporting(self, run_id);
    if (!ended)
      return caf::make_error(errc::unknown_run, not_running(self, run_id));
    self->send(observer, ended->last);
    self->monitor(observer);
    ended->observers.push_back(std::move(observer));
    return ended->last.run_id;
  }
  // What the run produced so far goes out first, so the snapshot is the
  // state after the last event any observer saw.
  flush(self, *run);
  self->send(observer, snapshot(self, *run));
  self->monitor(observer);
  run->observers.push_back(std::move(observer));
  return run->id;
}

bool unsubscribe(self_ptr self, const std::string& run_id,
                 const observer_actor& observer) {
  auto run = find_run(self, run_id);
  if (!run)
    return false;
  auto& obs = run->observers;
  auto n = obs.size();
  obs.erase(std::remove(obs.begin(), obs.end(), observer), obs.end());
  return obs.size() < n;
}

caf::result<std::vector<run_snapshot>> list_runs(self_ptr self) {
  auto& st = self->state;
  std::vector<run_snapshot> out;
  for (auto& [id, run] : st.runs)
    out.push_back(snapshot(self, run, true));
  for (auto& [id, ended] : st.reporting) {
    auto s = ended.last;
    s.workstreams.clear();
    s.gates.clear();
    out.push_back(std::move(s));
  }
  // Then what the journal holds of runs no longer (or not yet again)
  // running here.
  if (auto& j = journal_to_read(self)) {
    try {
      for (auto& r : j->runs()) {
        if (st.runs.count(r.id) > 0 || st.reporting.count(r.id) > 0)
          continue;
        run_snapshot s;
        s.run_id = r.id;
        s.plan = r.plan_name;
        s.status = r.status == "running" ? "interrupted" : r.status;
        s.started_at = r.started_at;
        s.seq = r.last_seq;
        s.total = r.workstreams;
        s.ended = r.ended;
        out.push_back(std::move(s));
      }
    } catch (const journal_error& e) {
      return caf::make_error(errc::journal_failed, e.what());
    }
  }
  return out;
}

caf::result<run_snapshot> status_of(self_ptr self, const std::string& run_id) {
  if (auto run = find_run(self, run_id))
    return snapshot(self, *run);
  if (auto ended = find_reporting(self, run_id))
    return ended->last;
  return caf::make_error(errc::unknown_run, not_running(self, run_id));
}

// Cancels `run` at somebody's request; `why` says whose.
void cancel_run(self_ptr self, run_state& run, const std::string& why) {
  if (run.cancelling && run.user_cancelled)
    return;
  log()->info("run {} {}", run.id, why);
  run.user_cancelled = true;
  auto id = run.id;
  guarded(self, id, [&] {
    emit(self, run, event_kind::run_cancelling, id, "cancelling", 0, {}, why);
    start_cancel(self, run, "cancelled");
    maybe_finish(self, id);
  });
}

caf::result<std::string> abort_run(self_ptr self, const std::string& run_id) {
  auto run = find_run(self, run_id);
  if (!run)
    return caf::make_error(errc::unknown_run, not_running(self, run_id));
  auto id = run->id;
  cancel_run(self, *run, "aborted");
  return id;
}

caf::result<run_report> report_of(self_ptr self, const std::string& run_id) {
  if (auto run = find_run(self, run_id))
    return caf::make_error(errc::unknown_run,
                           "run " + run->id + " has not finished");
  // An ended run's report comes once it is written.
  if (auto ended = find_reporting(self, run_id)) {
    auto rp = self->make_response_promise<run_report>();
    ended->waiters.push_back(rp);
    return rp;
  }
  auto& j = journal_to_read(self);
  if (!j)
    return caf::make_error(errc::unknown_run,
                           "no run " + run_id
                             + " is running here, and nothing is journaled "
                               "(--no-journal)");
  try {
    auto r = j->find_run(run_id);
    auto report = r ? j->report(r->id) : std::nullopt;
    if (!report)
      return caf::make_error(errc::unknown_run,
                             r ? "run " + r->id + " has not finished ("
                                   + r->status + ")"
                               : "no run " + run_id + " in journal "
                                   + j->path());
    return std::move(*report);
  } catch (const journal_error& e) {
    return caf::make_error(errc::journal_failed, e.what());
  }
}

} // namespace troupe::orch
