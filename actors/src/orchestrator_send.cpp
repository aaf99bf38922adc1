// Sending dispatches, once the journal has what they follow from, and
// taking their answers (or not: a stale or forged one).

#include <chrono>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "orchestrator_state.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/protocol/valid_text.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

// An attempt ended, with a result or an error turned into one. Accepts it
// only if it answers the workstream's latest dispatch.
void on_attempt_end(self_ptr self, const std::string& run_id, size_t idx,
                    int32_t token, size_t pool_idx, workstream_result r) {
  auto& st = self->state;
  auto i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  auto& run = i->second;
  auto& w = run.ws[idx];
  // An answer to an older dispatch: its node was declared lost, or the
  // watchdog gave up on it, and the workstream went on without it.
  if (token != w.dispatches) {
    log()->info("ignored a late result for {} from node {}", w.def->id,
                st.pools[pool_idx].info.name);
    return;
  }
  if (integrate_result(self, run, idx, pool_idx, r))
    return;
  accept_attempt(self, run, idx, pool_idx, std::move(r));
}

// True if the current message comes from `pool_idx`'s pool: an answer from
// anyone else (a response forged by guessing a request id) is dropped.
static bool from_pool(self_ptr self, size_t pool_idx) {
  auto& pool = self->state.pools[pool_idx].handle;
  return self->current_sender()
         && self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(
              pool);
}

// The dispatch `key` to `pool_idx` was answered: its slot is free again,
// unless the node was declared lost since (which freed them all).
static void release_slot(self_ptr self, size_t pool_idx, uint64_t key) {
  auto& pool = self->state.pools[pool_idx];
  pool.overdue.erase(key);
  if (pool.active() && pool.busy > 0)
    pool.busy -= 1;
}

// Takes the end of the workstream's current dispatch into account.
namespace {

// Bytes of a check's output each iteration keeps in the report.
constexpr size_t iteration_detail_bytes = 2000;

} // namespace

void iteration_ended(self_ptr self, run_state& run, size_t idx,
                     workstream_result r) {
  auto& w = run.ws[idx];
  auto n = static_cast<int32_t>(w.iterations.size()) + 1;
  auto bound = w.def->max_iterations > 0 ? w.def->max_iterations
                                         : default_max_iterations;
  auto& v = w.iterations.emplace_back(r.check);
  v.name = "iteration " + std::to_string(n);
  v.detail = utf8_tail(v.detail, iteration_detail_bytes);
  if (r.check.passed) {
    r.iterations = w.iterations;
    mark_terminal(self, run, idx, std::move(r));
    return;
  }
  if (n >= bound) {
    r.status = ws_state::failed;
    r.summary = "until: `" + w.def->until.run + "` still fails after "
                + std::to_string(n) + " iteration" + (n == 1 ? "" : "s") + ": "
                + last_line(r.check.detail);
    r.iterations = w.iterations;
    mark_terminal(self, run, idx, std::move(r));
    return;
  }
  emit(self, run, event_kind::ws_iterating, w.def->id, "iterating", n, r.node,
       "check failed: " + last_line(r.check.detail))
    .result
    = r;
  w.iteration_results.push_back(std::move(r));
  // An iteration is no failed attempt: the retry budget stays whole.
  w.attempts -= 1;
  w.state = ws_state::ready;
  enqueue(self, run, idx);
}

void accept_attempt(self_ptr self, run_state& run, size_t idx,
                    size_t pool_idx, workstream_result r) {
  auto& st = self->state;
  auto run_id = run.id;
  auto& w = run.ws[idx];
  if (pool_idx != npos)
    st.pools[pool_idx].completed += 1;
  run.in_flight -= 1;
  count_limits(run, idx, true);
  settle_budget(run, idx, &r);
  if (is_terminal(w.state)) {
    pump_all(self);
    maybe_finish(self, run_id);
    return;
  }
  // Results come from other nodes and their commands: carry them as text.
  make_valid_utf8_fields(r);
  r.id = w.def->id;
  r.title = w.def->title;
  r.persona = w.def->persona;
  r.attempts = w.attempts;
  // A replayed result keeps when it started, and its node.
  if (pool_idx != npos) {
    r.started_s
      = std::chrono::duration<double>(w.dispatched_at - run.start).count();
    if (r.node.empty())
      r.node = st.pools[pool_idx].info.name;
  }
  // A cancel leaves work that made a plan, or whose check has not passed,
  // unfinished: it did not succeed.
  if (run.cancelling
      && (r.status != ws_state::succeeded || w.def->makes_plan()
          || (w.def->iterates() && !r.check.passed)))
    r.status = ws_state::cancelled;
  // Nobody asked for this cancel (an agent gave up by itself): it is a
  // failure, so the failure policy decides what follows.
  if (!run.cancelling && r.status == ws_state::cancelled) {
    r.status = ws_state::failed;
    if (r.summary.empty())
      r.summary = "cancelled by its agent";
  }
  // Work that made a plan runs it; a plan that cannot run fails the work
  // (`expand` adds to `run.ws` only when it runs).
  if (w.def->makes_plan() && r.status == ws_state::succeeded && !run.cancelling
      && expand(self, run, idx, r)) {
    pump_all(self);
    maybe_finish(self, run_id);
    return;
  }
  // An agent of the embedding program's own ran the work but no check: no
  // verdict, so no iteration.
  if (w.def->iterates() && r.status == ws_state::succeeded
      && r.check.name.empty()) {
    r.status = ws_state::failed;
    r.summary = "its until check did not run on node " + r.node;
  }
  // An iteration's end: its work succeeded, or (replayed from the journal)
  // its check ran and decided.
  if (w.def->iterates() && !run.cancelling
      && (r.status == ws_state::succeeded || !r.check.name.empty())) {
    iteration_ended(self, run, idx, std::move(r));
  } else if (r.status == ws_state::succeeded
             || r.status == ws_state::cancelled) {
    r.iterations = w.iterations;
    mark_terminal(self, run, idx, std::move(r));
  } else if (w.attempts <= w.def->retries) {
    emit(self, run, event_kind::ws_retrying, w.def->id, "retrying", w.attempts,
         r.node, r.summary)
      .result = r;
    w.failures.push_back(std::move(r));
    w.state = ws_state::ready;
    enqueue(self, run, idx);
  } else {
    r.iterations = w.iterations;
    mark_terminal(self, run, idx, std::move(r));
  }
  pump_all(self);
  maybe_finish(self, run_id);
}

namespace {

// Sends one dispatch and takes its answer.
void send_dispatch(self_ptr self, run_state& run, outgoing_dispatch& out) {
  auto& st = self->state;
  auto& w = run.ws[out.idx];
  // An `until` workstream's node runs its check too.
  w.deadline = clock_type::now()
               + to_ms(out.spec.timeout_s + until_timeout_s(out.spec.ws))
               + st.cfg.dispatch_grace;
  auto run_id = run.id;
  auto idx = out.idx;
  auto pool_idx = out.pool;
  auto token = w.dispatches;
  auto key = w.key;
  auto progress = caf::actor_cast<progress_actor>(self);
  // The watchdog bounds this request: a timeout per request would cost
  // every dispatch a trip through CAF's clock thread.
  self->request(st.pools[pool_idx].handle, caf::infinite, dispatch_atom_v,
                std::move(out.spec), progress)
    .then(
      [=](workstream_result& r) {
        if (!from_pool(self, pool_idx) || r.key != key) {
          refused(self, "a result not from the node it was asked of");
          return;
        }
        release_slot(self, pool_idx, key);
        guarded(self, run_id, [&] {
          on_attempt_end(self, run_id, idx, token, pool_idx, std::move(r));
        });
      },
      [=](caf::error& err) {
        if (!from_pool(self, pool_idx)) {
          refused(self, "an error not from the node it was asked of");
          return;
        }
        release_slot(self, pool_idx, key);
        guarded(self, run_id, [&] {
          workstream_result r;
          r.status = err == caf::sec::request_timeout ? ws_state::timed_out
                                                      : ws_state::failed;
          r.summary = self->system().render(err);
          r.output = r.summary;
          on_attempt_end(self, run_id, idx, token, pool_idx, std::move(r));
        });
      });
}

// Takes back a dispatch that was never sent: its slot is free, and the
// workstream ready again (or cancelled, in a run being cancelled).
void unsend(self_ptr self, run_state& run, outgoing_dispatch& out,
            const std::string& why) {
  auto& w = run.ws[out.idx];
  release_slot(self, out.pool, w.key);
  w.dispatches += 1;
  requeue(self, run, out.idx, why);
}

} // namespace

void unsend_parked(self_ptr self, run_state& run) {
  auto parked = std::move(run.parked);
  run.parked = {};
  for (auto& [ticket, out] : parked) {
    auto& w = run.ws[out.idx];
    if (w.state == ws_state::dispatched && w.dispatches == out.spec.dispatch
        && w.pool == out.pool)
      unsend(self, run, out, "cancelled");
  }
}

// Sends what `dispatch` prepared once the journal has it all: what it
// follows from, and the dispatches themselves (so a resumed run knows what
// was in flight). Without a journal, at once; with one, when the writer
// says so (`journaled`).
void send_dispatches(self_ptr self, run_state& run) {
  if (run.outgoing.empty())
    return;
  auto outgoing = std::move(run.outgoing);
  run.outgoing = {};
  auto ticket = journal_events(self, run);
  if (ticket == 0) {
    arm_watchdog(self);
    for (auto& out : outgoing)
      send_dispatch(self, run, out);
    return;
  }
  for (auto& out : outgoing)
    run.parked.emplace_back(ticket, std::move(out));
}

void journaled(self_ptr self, uint64_t ticket, const std::string& error) {
  auto& st = self->state;
  std::vector<std::string> ids;
  for (auto& [id, run] : st.runs)
    ids.push_back(id);
  for (auto& id : ids) {
    auto i = st.runs.find(id);
    if (i == st.runs.end())
      continue;
    auto& run = i->second;
    guarded(self, id, [&] {
      if (!error.empty() && !run.journal_failed
          && run.last_ticket > run.committed_ticket) {
        run.journal_failed = true;
        throw journal_error(error);
      }
      run.committed_ticket = std::max(run.committed_ticket, ticket);
      // Parked in the order of their tickets: what this commit holds is
      // at the front.
      std::vector<outgoing_dispatch> ready;
      auto& parked = run.parked;
      while (error.empty() && !parked.empty()
             && parked.front().first <= ticket) {
        ready.push_back(std::move(parked.front().second));
        parked.pop_front();
      }
      if (ready.empty())
        return;
      arm_watchdog(self);
      for (auto& out : ready) {
        auto& w = run.ws[out.idx];
        // Taken back meanwhile: its node was lost (and the work requeued).
        if (w.state != ws_state::dispatched || w.dispatches != out.spec.dispatch
            || w.pool != out.pool)
          continue;
        if (run.cancelling)
          unsend(self, run, out, "cancelled");
        else
          send_dispatch(self, run, out);
      }
      flush(self, run);
      maybe_finish(self, id);
    });
  }
}

} // namespace troupe::orch
