#include "troupe/actors/orchestrator.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "troupe/actors/gate.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr size_t npos = static_cast<size_t>(-1);

// Time gate checks get beyond their own timeouts before the orchestrator
// stops waiting for the verdict.
constexpr auto gate_grace = std::chrono::seconds(60);

// Bytes of a failed attempt's output handed to the next attempt.
constexpr size_t retry_context_limit = 8000;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

/// A workstream's life in one run.
struct ws_run {
  /// The plan's workstream, or a gate's fixer in `run_state::fixers`.
  const workstream* def = nullptr;
  ws_state state = ws_state::pending;
  /// Attempts charged to the retry budget.
  int32_t attempts = 0;
  /// Dispatches made; a result must carry the latest to be accepted.
  int32_t dispatches = 0;
  size_t remaining_deps = 0;
  size_t remaining_gates = 0;
  std::vector<size_t> dependents;
  /// Gates that list this workstream in `after`.
  std::vector<size_t> gates_after;
  /// For remediation workstreams: the gate they fix.
  size_t fixes_gate = npos;
  size_t pool = npos;
  bool waiting_reported = false;
  clock_type::time_point dispatched_at;
  /// When the watchdog gives up on the current dispatch.
  clock_type::time_point deadline;
  workstream_result result;
  std::vector<workstream_result> failures;
};

struct gate_run {
  gate def;
  gate_state state = gate_state::pending;
  size_t remaining_after = 0;
  int32_t fixes = 0;
  std::vector<size_t> guarded;
  gate_result result;
};

struct run_state {
  std::string id;
  plan p;
  run_options opts;
  observer_actor observer;
  std::vector<ws_run> ws;
  /// Workstream ids (viewing the plan's or the fixers' strings) to indexes.
  std::unordered_map<std::string_view, size_t> index;
  std::vector<gate_run> gates;
  /// Remediation workstreams made by gates; a deque keeps them in place.
  std::deque<workstream> fixers;
  std::deque<size_t> ready;
  std::vector<size_t> parked;
  int32_t in_flight = 0;
  int32_t max_parallel = 1;
  size_t terminal = 0;
  int32_t gates_busy = 0;
  bool cancelling = false;
  bool user_cancelled = false;
  bool finishing = false;
  clock_type::time_point start;
  uint64_t seq = 0;
  /// Events not sent yet: each handler sends what it produced as one batch.
  std::vector<event> outbox;

  double now_s() const {
    return std::chrono::duration<double>(clock_type::now() - start).count();
  }
};

/// A node's pool as the orchestrator sees it:
///
///   joined -> draining -> left
///      \---------\------> lost   (connection gone: its work runs elsewhere)
struct pool_entry {
  pool_actor handle;
  node_info info;
  int32_t busy = 0;
  std::string state = "joined";
  int64_t completed = 0;

  bool active() const {
    return state == "joined" || state == "draining";
  }
};

struct orchestrator_state {
  static inline const char* name = "troupe.orchestrator";
  orchestrator_config cfg;
  bool shutting_down = false;
  /// Reports requested from the synthesizer and not yet delivered.
  size_t reports_pending = 0;
  std::vector<caf::typed_response_promise<bool>> shutdown_waiters;
  std::map<std::string, run_state> runs;
  std::vector<pool_entry> pools;
  gate_actor gates;
  synthesizer_actor synthesizer;
  bool watchdog_armed = false;
};

using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;
constexpr watchdog_atom watchdog_atom_v{};

// How often the watchdog looks for dispatches past their deadline.
constexpr auto watchdog_interval = std::chrono::seconds(1);

/// The orchestrator's own view of itself: its public interface plus the
/// watchdog's tick.
using orchestrator_impl
  = orchestrator_actor::extend<caf::reacts_to<watchdog_atom>>;

using self_ptr = orchestrator_impl::stateful_pointer<orchestrator_state>;

std::string make_run_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  auto now = std::chrono::system_clock::to_time_t(
    std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "run-%04d%02d%02d-%02d%02d%02d-%04x",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<unsigned>(rng() & 0xffff));
  return buf;
}

void emit(self_ptr self, run_state& run, std::string kind,
          std::string subject, std::string state, int32_t attempt = 0,
          std::string node = {}, std::string message = {}) {
  if (!run.observer)
    return;
  event ev;
  ev.run_id = run.id;
  ev.seq = ++run.seq;
  ev.t_s = run.now_s();
  ev.kind = std::move(kind);
  ev.subject = std::move(subject);
  ev.state = std::move(state);
  ev.attempt = attempt;
  ev.node = std::move(node);
  ev.message = std::move(message);
  run.outbox.push_back(std::move(ev));
}

// Sends the events a handler produced, in order, as one message.
void flush(self_ptr self, run_state& run) {
  if (run.outbox.empty())
    return;
  self->send(run.observer, std::move(run.outbox));
  run.outbox = {};
}

bool executor_offered(const pool_entry& p, const std::string& kind) {
  if (kind == "noop")
    return true;
  auto& ex = p.info.executors;
  if (ex.empty())
    return builtin_executor_kinds().count(kind) > 0;
  return std::find(ex.begin(), ex.end(), kind) != ex.end();
}

bool fits(const pool_entry& p, const workstream& w) {
  if (p.state != "joined" || p.info.slots <= 0)
    return false;
  auto& personas = p.info.personas;
  if (!personas.empty()
      && std::find(personas.begin(), personas.end(), w.persona)
           == personas.end())
    return false;
  return executor_offered(p, w.executor.kind);
}

// The least-loaded pool that fits `w` and has a free slot; `npos` if none.
// `any_fits` tells whether some pool would fit once it had room.
size_t pick_pool(orchestrator_state& st, const workstream& w,
                 bool& any_fits) {
  any_fits = false;
  size_t best = npos;
  double best_load = 2;
  for (size_t i = 0; i < st.pools.size(); ++i) {
    auto& p = st.pools[i];
    if (!fits(p, w))
      continue;
    any_fits = true;
    if (p.busy >= p.info.slots)
      continue;
    auto load = static_cast<double>(p.busy) / p.info.slots;
    if (load < best_load) {
      best_load = load;
      best = i;
    }
  }
  return best;
}

nlohmann::json result_summary(const workstream_result& r) {
  return {{"id", r.id},
          {"status", to_string(r.status)},
          {"summary", r.summary},
          {"exit_code", r.exit_code},
          {"node", r.node},
          {"files_changed", r.files_changed},
          {"outputs", r.outputs}};
}

// The handoff contract: what a workstream learns from the work before it.
std::string make_context(const run_state& run, const ws_run& w) {
  nlohmann::json ctx;
  ctx["run_id"] = run.id;
  ctx["plan"] = run.p.name;
  ctx["goal"] = run.p.goal;
  ctx["workstream"] = {{"id", w.def->id},
                       {"title", w.def->title},
                       {"persona", w.def->persona},
                       {"prompt", w.def->prompt},
                       {"owns", w.def->owns}};
  ctx["attempt"] = w.attempts;
  auto deps = nlohmann::json::array();
  for (auto& dep : w.def->depends_on)
    if (auto i = run.index.find(dep); i != run.index.end())
      deps.push_back(result_summary(run.ws[i->second].result));
  ctx["dependencies"] = std::move(deps);
  auto prev = nlohmann::json::array();
  for (auto& f : w.failures)
    prev.push_back({{"attempt", f.attempts},
                    {"status", to_string(f.status)},
                    {"exit_code", f.exit_code},
                    {"summary", f.summary},
                    {"output", tail(f.output, retry_context_limit)}});
  ctx["previous_attempts"] = std::move(prev);
  if (w.fixes_gate != npos) {
    auto& g = run.gates[w.fixes_gate];
    auto checks = nlohmann::json::array();
    for (auto& c : g.result.checks)
      checks.push_back(
        {{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
    ctx["gate"] = {{"id", g.def.id}, {"checks", std::move(checks)}};
  }
  return ctx.dump();
}

void pump(self_ptr self, run_state& run);
void maybe_finish(self_ptr self, const std::string& run_id);
void evaluate_gate(self_ptr self, run_state& run, size_t gi);
void mark_terminal(self_ptr self, run_state& run, size_t idx,
                   workstream_result r);

void pump_all(self_ptr self) {
  for (auto& [id, run] : self->state.runs) {
    pump(self, run);
    flush(self, run);
  }
}

void make_ready(self_ptr self, run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  if (w.state != ws_state::pending)
    return;
  if (w.remaining_deps > 0 || w.remaining_gates > 0)
    return;
  w.state = ws_state::ready;
  run.ready.push_back(idx);
  emit(self, run, "workstream", w.def->id, "ready");
}

void accept_attempt(self_ptr self, run_state& run, size_t idx,
                    size_t pool_idx, workstream_result r);

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
  accept_attempt(self, run, idx, pool_idx, std::move(r));
}

// Takes the end of the workstream's current dispatch into account.
void accept_attempt(self_ptr self, run_state& run, size_t idx,
                    size_t pool_idx, workstream_result r) {
  auto& st = self->state;
  auto run_id = run.id;
  auto& w = run.ws[idx];
  st.pools[pool_idx].busy -= 1;
  st.pools[pool_idx].completed += 1;
  run.in_flight -= 1;
  if (is_terminal(w.state)) {
    pump_all(self);
    maybe_finish(self, run_id);
    return;
  }
  r.id = w.def->id;
  r.title = w.def->title;
  r.persona = w.def->persona;
  r.attempts = w.attempts;
  r.started_s
    = std::chrono::duration<double>(w.dispatched_at - run.start).count();
  if (r.node.empty())
    r.node = st.pools[pool_idx].info.name;
  if (run.cancelling && r.status != ws_state::succeeded)
    r.status = ws_state::cancelled;
  // Nobody asked for this cancel (an agent gave up by itself): it is a
  // failure, so the failure policy decides what follows.
  if (!run.cancelling && r.status == ws_state::cancelled) {
    r.status = ws_state::failed;
    if (r.summary.empty())
      r.summary = "cancelled by its agent";
  }
  if (r.status == ws_state::succeeded || r.status == ws_state::cancelled) {
    mark_terminal(self, run, idx, std::move(r));
  } else if (w.attempts <= w.def->retries) {
    emit(self, run, "workstream", w.def->id, "retrying", w.attempts, r.node,
         r.summary);
    w.failures.push_back(std::move(r));
    w.state = ws_state::ready;
    run.ready.push_back(idx);
  } else {
    mark_terminal(self, run, idx, std::move(r));
  }
  pump_all(self);
  maybe_finish(self, run_id);
}

void arm_watchdog(self_ptr self) {
  auto& st = self->state;
  if (st.watchdog_armed)
    return;
  st.watchdog_armed = true;
  self->delayed_send(self, watchdog_interval, watchdog_atom_v);
}

// Gives up on dispatches whose node never answered in time: the attempt
// times out (retried if its budget allows), the node is told to cancel it,
// and whatever it still sends is stale.
void watchdog(self_ptr self) {
  auto& st = self->state;
  st.watchdog_armed = false;
  auto now = clock_type::now();
  bool busy = false;
  std::vector<std::string> ids;
  for (auto& [id, run] : st.runs) {
    if (run.in_flight == 0)
      continue;
    busy = true;
    ids.push_back(id);
  }
  for (auto& id : ids) {
    auto i = st.runs.find(id);
    if (i == st.runs.end())
      continue;
    auto& run = i->second;
    for (size_t idx = 0; idx < run.ws.size(); ++idx) {
      auto& w = run.ws[idx];
      if ((w.state != ws_state::dispatched && w.state != ws_state::running)
          || w.deadline > now || w.pool == npos)
        continue;
      auto pool_idx = w.pool;
      auto& node = st.pools[pool_idx].info.name;
      log()->warn("workstream {} got no answer from node {} in time",
                  w.def->id, node);
      self->send(st.pools[pool_idx].handle, cancel_atom_v, run.id, w.def->id);
      w.dispatches += 1; // its answer, should it come, is stale now
      workstream_result r;
      r.status = ws_state::timed_out;
      r.summary = "no answer from node " + node + " within the timeout";
      r.output = r.summary;
      accept_attempt(self, run, idx, pool_idx, std::move(r));
      if (st.runs.find(id) == st.runs.end())
        break;
    }
  }
  if (busy)
    arm_watchdog(self);
}

void dispatch(self_ptr self, run_state& run, size_t idx, size_t pool_idx) {
  auto& st = self->state;
  auto& pool = st.pools[pool_idx];
  auto& w = run.ws[idx];
  w.state = ws_state::dispatched;
  w.attempts += 1;
  w.dispatches += 1;
  w.pool = pool_idx;
  w.dispatched_at = clock_type::now();
  pool.busy += 1;
  run.in_flight += 1;
  workstream_spec spec;
  spec.run_id = run.id;
  spec.ws = *w.def;
  spec.attempt = w.attempts;
  spec.dispatch = w.dispatches;
  spec.timeout_s = w.def->timeout_s > 0 ? w.def->timeout_s
                                       : run.p.settings.default_timeout_s;
  spec.workdir = run.opts.workdir;
  // noop and sleep never read their context; a wide gather would pay for
  // building it.
  if (w.def->executor.kind != "noop" && w.def->executor.kind != "sleep")
    spec.context = make_context(run, w);
  emit(self, run, "workstream", w.def->id, "dispatched", w.attempts,
       pool.info.name);
  SPDLOG_LOGGER_DEBUG(log(), "workstream {} dispatched to node {} (attempt {})",
                      w.def->id, pool.info.name, w.attempts);
  auto run_id = run.id;
  auto token = w.dispatches;
  w.deadline
    = w.dispatched_at + to_ms(spec.timeout_s) + st.cfg.dispatch_grace;
  arm_watchdog(self);
  auto progress = caf::actor_cast<progress_actor>(self);
  // The watchdog bounds this request: a timeout per request would cost
  // every dispatch a trip through CAF's clock thread.
  self->request(pool.handle, caf::infinite, dispatch_atom_v, std::move(spec),
                progress)
    .then(
      [=](workstream_result& r) {
        on_attempt_end(self, run_id, idx, token, pool_idx, std::move(r));
      },
      [=](caf::error& err) {
        workstream_result r;
        r.status = err == caf::sec::request_timeout ? ws_state::timed_out
                                                    : ws_state::failed;
        r.summary = self->system().render(err);
        r.output = r.summary;
        on_attempt_end(self, run_id, idx, token, pool_idx, std::move(r));
      });
}

void pump(self_ptr self, run_state& run) {
  auto& st = self->state;
  if (run.cancelling)
    return;
  while (run.in_flight < run.max_parallel && !run.ready.empty()) {
    auto idx = run.ready.front();
    auto& w = run.ws[idx];
    if (w.state != ws_state::ready) {
      run.ready.pop_front();
      continue;
    }
    bool any_fits = false;
    auto pool = pick_pool(st, *w.def, any_fits);
    if (pool == npos) {
      if (any_fits)
        return; // every fitting pool is busy: wait for a slot
      // No node offers what this workstream needs: park it until one joins.
      run.ready.pop_front();
      run.parked.push_back(idx);
      if (!w.waiting_reported) {
        w.waiting_reported = true;
        auto why = "waiting: no node offers persona \"" + w.def->persona
                   + "\" with executor \"" + w.def->executor.kind + "\"";
        log()->warn("workstream {} is {}", w.def->id, why);
        emit(self, run, "waiting", w.def->id, "ready", 0, {}, why);
      }
      continue;
    }
    run.ready.pop_front();
    dispatch(self, run, idx, pool);
  }
}

void block(self_ptr self, run_state& run, size_t idx, const std::string& why) {
  auto& w = run.ws[idx];
  if (is_terminal(w.state))
    return;
  workstream_result r;
  r.id = w.def->id;
  r.title = w.def->title;
  r.persona = w.def->persona;
  r.status = ws_state::blocked;
  r.summary = why;
  mark_terminal(self, run, idx, std::move(r));
}

// Blocks everything downstream of `idx`.
void block_downstream(self_ptr self, run_state& run, size_t idx) {
  auto why = "blocked: " + run.ws[idx].def->id + " "
             + to_string(run.ws[idx].state);
  std::vector<size_t> todo = run.ws[idx].dependents;
  std::vector<bool> seen(run.ws.size(), false);
  while (!todo.empty()) {
    auto j = todo.back();
    todo.pop_back();
    if (seen[j])
      continue;
    seen[j] = true;
    if (!is_terminal(run.ws[j].state))
      block(self, run, j, why);
    for (auto k : run.ws[j].dependents)
      todo.push_back(k);
  }
}

void start_cancel(self_ptr self, run_state& run, const std::string& why) {
  if (run.cancelling)
    return;
  run.cancelling = true;
  auto& st = self->state;
  // Gate checks in progress stop too (their verdicts come back cancelled).
  if (run.gates_busy > 0)
    self->send(st.gates, cancel_atom_v, run.id);
  for (size_t i = 0; i < run.ws.size(); ++i) {
    auto& w = run.ws[i];
    switch (w.state) {
      case ws_state::pending:
      case ws_state::ready: {
        workstream_result r;
        r.id = w.def->id;
        r.title = w.def->title;
        r.persona = w.def->persona;
        r.attempts = w.attempts;
        r.status = ws_state::cancelled;
        r.summary = why;
        mark_terminal(self, run, i, std::move(r));
        break;
      }
      case ws_state::dispatched:
      case ws_state::running:
        if (w.pool != npos)
          self->send(st.pools[w.pool].handle, cancel_atom_v, run.id,
                     w.def->id);
        break;
      default:
        break;
    }
  }
}

void mark_terminal(self_ptr self, run_state& run, size_t idx,
                   workstream_result r) {
  auto& w = run.ws[idx];
  if (is_terminal(w.state))
    return;
  w.state = r.status;
  w.result = std::move(r);
  run.terminal += 1;
  emit(self, run, "workstream", w.def->id, to_string(w.state), w.attempts,
       w.result.node, w.result.summary);
  auto state = w.state;
  auto fixes_gate = w.fixes_gate;
  auto gates_after = w.gates_after;
  if (fixes_gate != npos) {
    // A remediation ended, however it went: check the gate again.
    if (!run.cancelling)
      evaluate_gate(self, run, fixes_gate);
    return;
  }
  if (state == ws_state::succeeded) {
    for (auto j : run.ws[idx].dependents) {
      run.ws[j].remaining_deps -= 1;
      make_ready(self, run, j);
    }
  } else if (state == ws_state::failed || state == ws_state::timed_out) {
    switch (run.p.settings.on_failure) {
      case failure_policy::block_dependents:
        block_downstream(self, run, idx);
        break;
      case failure_policy::continue_run:
        for (auto j : run.ws[idx].dependents) {
          run.ws[j].remaining_deps -= 1;
          make_ready(self, run, j);
        }
        break;
      case failure_policy::fail_fast:
        start_cancel(self, run, "cancelled: " + run.ws[idx].def->id + " "
                                  + to_string(state) + " (fail_fast)");
        break;
    }
  }
  for (auto gi : gates_after) {
    auto& g = run.gates[gi];
    g.remaining_after -= 1;
    if (g.remaining_after == 0 && !run.cancelling)
      evaluate_gate(self, run, gi);
  }
}

void on_gate_verdict(self_ptr self, run_state& run, size_t gi,
                     gate_result verdict) {
  auto& g = run.gates[gi];
  auto attempts = g.result.attempts;
  g.result = std::move(verdict);
  g.result.id = g.def.id;
  g.result.attempts = attempts;
  if (run.cancelling) {
    // A verdict reached before the cancel stands; anything else is moot.
    if (g.result.status != gate_state::passed)
      g.result.status = gate_state::cancelled;
    g.state = g.result.status;
    return;
  }
  if (g.result.status == gate_state::passed) {
    g.state = gate_state::passed;
    emit(self, run, "gate", g.def.id, "passed", attempts);
    for (auto j : g.guarded) {
      run.ws[j].remaining_gates -= 1;
      make_ready(self, run, j);
    }
    return;
  }
  // A failed completion check is beyond any fixer: the work it guards did
  // not happen. Everything else may be remediated.
  bool incomplete = false;
  std::string failed;
  for (auto& c : g.result.checks) {
    if (c.passed)
      continue;
    incomplete = incomplete || c.name == "completion";
    failed += (failed.empty() ? "" : ", ") + c.name;
  }
  if (!incomplete && g.fixes < g.def.remediate.max_attempts) {
    g.fixes += 1;
    g.state = gate_state::remediating;
    g.result.status = gate_state::remediating;
    workstream def;
    def.id = g.def.id + ".fix" + std::to_string(g.fixes);
    def.title = "Remediate gate " + g.def.id + " (" + failed + ")";
    def.persona = g.def.remediate.persona;
    def.agent = agent_kind::general;
    def.model = model_tier::balanced;
    def.prompt = g.def.remediate.prompt.empty()
                   ? "Make gate " + g.def.id + " pass; failed: " + failed
                   : g.def.remediate.prompt;
    def.executor = g.def.remediate.executor;
    if (def.executor.kind.empty())
      def.executor.kind = "noop";
    run.fixers.push_back(std::move(def));
    ws_run fix;
    fix.def = &run.fixers.back();
    fix.fixes_gate = gi;
    auto idx = run.ws.size();
    run.index.emplace(fix.def->id, idx);
    run.ws.push_back(std::move(fix));
    emit(self, run, "gate", g.def.id, "remediating", attempts, {}, failed);
    make_ready(self, run, idx);
    return;
  }
  g.state = gate_state::failed;
  g.result.status = gate_state::failed;
  emit(self, run, "gate", g.def.id, "failed", attempts, {}, failed);
  for (auto j : g.guarded)
    block(self, run, j, "blocked: gate " + g.def.id + " failed (" + failed
                          + ")");
}

void evaluate_gate(self_ptr self, run_state& run, size_t gi) {
  auto& g = run.gates[gi];
  g.state = gate_state::evaluating;
  g.result.attempts += 1;
  run.gates_busy += 1;
  emit(self, run, "gate", g.def.id, "evaluating", g.result.attempts);
  std::vector<workstream_result> results;
  for (auto& id : g.def.after)
    if (auto i = run.index.find(id); i != run.index.end())
      results.push_back(run.ws[i->second].result);
  double budget = 0;
  for (auto& c : g.def.checks)
    budget += c.timeout_s > 0 ? c.timeout_s : default_check_timeout_s;
  auto run_id = run.id;
  auto workdir = run.opts.workdir;
  self->request(self->state.gates, to_ms(budget) + gate_grace,
                evaluate_atom_v, run_id, g.def, std::move(results), workdir)
    .then(
      [=](gate_result& verdict) {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        i->second.gates_busy -= 1;
        on_gate_verdict(self, i->second, gi, std::move(verdict));
        pump_all(self);
        maybe_finish(self, run_id);
      },
      [=](caf::error& err) {
        auto i = self->state.runs.find(run_id);
        if (i == self->state.runs.end())
          return;
        i->second.gates_busy -= 1;
        gate_result verdict;
        verdict.status = gate_state::failed;
        verdict.checks.push_back(
          {"evaluation", false, self->system().render(err)});
        on_gate_verdict(self, i->second, gi, std::move(verdict));
        pump_all(self);
        maybe_finish(self, run_id);
      });
}

// A node went away: what it was running goes back to ready and runs
// elsewhere, and the lost attempt is not charged to the retry budget.
void node_lost(self_ptr self, size_t pool_idx, const std::string& why) {
  auto& st = self->state;
  auto& pool = st.pools[pool_idx];
  pool.state = "lost";
  pool.busy = 0;
  log()->warn("node {} lost ({}): its work goes elsewhere", pool.info.name,
              why);
  for (auto& [id, run] : st.runs) {
    emit(self, run, "node", pool.info.name, "lost", 0, pool.info.name, why);
    for (size_t idx = 0; idx < run.ws.size(); ++idx) {
      auto& w = run.ws[idx];
      if (w.pool != pool_idx
          || (w.state != ws_state::dispatched
              && w.state != ws_state::running))
        continue;
      w.dispatches += 1; // whatever the lost node still sends is stale
      w.attempts -= 1;
      w.pool = npos;
      run.in_flight -= 1;
      if (run.cancelling) {
        workstream_result r;
        r.id = w.def->id;
        r.title = w.def->title;
        r.persona = w.def->persona;
        r.attempts = w.attempts;
        r.status = ws_state::cancelled;
        r.summary = "cancelled (node " + pool.info.name + " lost)";
        mark_terminal(self, run, idx, std::move(r));
        continue;
      }
      w.state = ws_state::ready;
      run.ready.push_back(idx);
      emit(self, run, "workstream", w.def->id, "ready", w.attempts,
           pool.info.name, "requeued: node " + pool.info.name + " lost");
    }
  }
  pump_all(self);
  std::vector<std::string> ids;
  for (auto& [id, run] : st.runs)
    ids.push_back(id);
  for (auto& id : ids)
    maybe_finish(self, id);
}

run_status final_status(const run_state& run) {
  if (run.user_cancelled)
    return run_status::cancelled;
  bool blocked = false;
  for (auto& w : run.ws) {
    if (w.fixes_gate != npos)
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

// Answers a pending shutdown once every run has reported.
void report_delivered(self_ptr self) {
  auto& st = self->state;
  st.reports_pending -= 1;
  if (st.shutting_down && st.runs.empty() && st.reports_pending == 0) {
    for (auto& rp : st.shutdown_waiters)
      rp.deliver(true);
    st.shutdown_waiters.clear();
  }
}

void maybe_finish(self_ptr self, const std::string& run_id) {
  auto& st = self->state;
  auto i = st.runs.find(run_id);
  if (i == st.runs.end())
    return;
  auto& run = i->second;
  if (run.finishing || run.terminal < run.ws.size() || run.in_flight > 0
      || run.gates_busy > 0) {
    flush(self, run);
    return;
  }
  run.finishing = true;
  run_report report;
  report.run_id = run.id;
  report.plan = run.p.name;
  report.goal = run.p.goal;
  report.status = final_status(run);
  report.wall_s = run.now_s();
  report.workstreams.reserve(run.ws.size());
  for (auto& w : run.ws)
    report.workstreams.push_back(std::move(w.result));
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
  emit(self, run, "run", run.id, to_string(report.status));
  flush(self, run);
  log()->info("run {} finished: {}", run.id, to_string(report.status));
  auto observer = run.observer;
  auto p = std::move(run.p);
  st.runs.erase(i);
  st.reports_pending += 1;
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
        if (observer)
          self->send(observer, std::move(full));
        report_delivered(self);
      },
      [=](caf::error& err) mutable {
        auto why = self->system().render(err);
        log()->error("synthesis of run {} failed: {}", outline.run_id, why);
        outline.markdown = "# " + outline.plan + ": "
                           + to_string(outline.status)
                           + "\n\nThe report could not be synthesized: " + why
                           + "\n";
        if (observer)
          self->send(observer, std::move(outline));
        report_delivered(self);
      });
}

// Builds a run's bookkeeping from a validated plan.
void prepare(run_state& run) {
  auto n = run.p.workstreams.size();
  run.ws.resize(n);
  run.index.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    run.ws[i].def = &run.p.workstreams[i];
    run.index.emplace(run.ws[i].def->id, i);
  }
  for (size_t i = 0; i < n; ++i) {
    for (auto& dep : run.ws[i].def->depends_on) {
      auto d = run.index.find(dep);
      if (d == run.index.end())
        continue;
      run.ws[i].remaining_deps += 1;
      run.ws[d->second].dependents.push_back(i);
    }
  }
  run.gates.resize(run.p.gates.size());
  for (size_t gi = 0; gi < run.p.gates.size(); ++gi) {
    auto& g = run.gates[gi];
    g.def = run.p.gates[gi];
    g.result.id = g.def.id;
    std::unordered_set<size_t> after;
    for (auto& id : g.def.after)
      if (auto a = run.index.find(id); a != run.index.end())
        after.insert(a->second);
    g.remaining_after = after.size();
    for (auto a : after)
      run.ws[a].gates_after.push_back(gi);
    // Everything downstream of the gate's workstreams waits for it.
    std::vector<bool> seen(n, false);
    std::vector<size_t> todo(after.begin(), after.end());
    while (!todo.empty()) {
      auto j = todo.back();
      todo.pop_back();
      for (auto k : run.ws[j].dependents) {
        if (seen[k])
          continue;
        seen[k] = true;
        todo.push_back(k);
        if (after.count(k) == 0) {
          g.guarded.push_back(k);
          run.ws[k].remaining_gates += 1;
        }
      }
    }
  }
}

orchestrator_impl::behavior_type
orchestrator(self_ptr self, orchestrator_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.gates = spawn_gate(self->system(), self->state.cfg.executors);
  self->state.synthesizer = spawn_synthesizer(self->system());
  self->link_to(self->state.gates);
  self->link_to(self->state.synthesizer);
  self->set_down_handler([=](const caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t pi = 0; pi < st.pools.size(); ++pi) {
      auto& p = st.pools[pi];
      if (p.handle.address() != dm.source || !p.active())
        continue;
      node_lost(self, pi, self->system().render(dm.reason));
    }
  });
  return {
    [=](run_atom, plan& p, run_options& opts,
        observer_actor& observer) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.shutting_down)
        return caf::make_error(errc::shutting_down, st.cfg.name);
      if (!st.cfg.token.empty() && opts.token != st.cfg.token)
        return caf::make_error(errc::bad_token,
                               "the coordinator does not accept this token");
      diagnostics diags;
      validation_options vopts;
      vopts.executor_kinds.insert("noop");
      for (auto& pool : st.pools)
        for (auto& kind : pool.info.executors)
          vopts.executor_kinds.insert(kind);
      validate_plan(p, vopts, diags);
      if (!diags.ok()) {
        std::string text;
        for (auto& d : diags.items())
          if (!d.warning)
            text += (text.empty() ? "" : "; ") + to_string(d);
        return caf::make_error(errc::invalid_plan, text);
      }
      auto id = opts.run_id.empty() ? make_run_id() : opts.run_id;
      if (st.runs.count(id) > 0)
        return caf::make_error(errc::invalid_plan,
                               "a run with id " + id + " is active");
      auto& run = st.runs[id];
      run.id = id;
      run.p = std::move(p);
      run.opts = std::move(opts);
      run.observer = std::move(observer);
      run.start = clock_type::now();
      run.max_parallel = run.opts.max_parallel > 0
                           ? run.opts.max_parallel
                           : run.p.settings.max_parallel_agents;
      run.max_parallel = std::max(run.max_parallel, 1);
      prepare(run);
      log()->info("run {} started: plan {}, {} workstreams", id, run.p.name,
                  run.ws.size());
      emit(self, run, "run", id, "started", 0, {},
           std::to_string(run.ws.size()) + " workstreams, "
             + std::to_string(run.gates.size()) + " gates");
      for (size_t i = 0; i < run.ws.size(); ++i)
        make_ready(self, run, i);
      pump(self, run);
      maybe_finish(self, id);
      return id;
    },
    [=](cancel_atom, const std::string& run_id) {
      auto i = self->state.runs.find(run_id);
      if (i == self->state.runs.end())
        return;
      auto& run = i->second;
      if (run.cancelling && run.user_cancelled)
        return;
      log()->info("run {} cancelled", run_id);
      run.user_cancelled = true;
      emit(self, run, "run", run_id, "cancelling");
      start_cancel(self, run, "cancelled");
      maybe_finish(self, run_id);
    },
    [=](join_atom, join_request& req,
        pool_actor& pool) -> caf::result<std::string> {
      auto& st = self->state;
      auto& info = req.info;
      if (st.shutting_down)
        return caf::make_error(errc::shutting_down, st.cfg.name);
      if (!st.cfg.token.empty() && req.token != st.cfg.token) {
        log()->warn("refused node {}: wrong token", info.name);
        return caf::make_error(errc::bad_token,
                               "node " + info.name
                                 + " presented a token the coordinator does "
                                   "not accept");
      }
      if (info.protocol_version != protocol_version) {
        log()->warn("refused node {}: protocol version {}, expected {}",
                    info.name, info.protocol_version, protocol_version);
        return caf::make_error(errc::version_mismatch,
                               "node " + info.name + " speaks protocol "
                                 + std::to_string(info.protocol_version)
                                 + ", the coordinator "
                                 + std::to_string(protocol_version));
      }
      for (auto& p : st.pools) {
        // The same pool asking again (its first answer came too late for
        // it) is already in: say so again.
        if (p.active() && p.handle == pool)
          return st.cfg.name;
        if (p.active() && p.info.name == info.name)
          return caf::make_error(errc::name_taken,
                                 "a node named " + info.name
                                   + " is already joined");
      }
      if (!pool)
        return caf::make_error(errc::unknown_persona, "no pool");
      self->monitor(pool);
      log()->info("node {} joined with {} slots", info.name, info.slots);
      pool_entry entry;
      entry.handle = std::move(pool);
      entry.info = std::move(info);
      st.pools.push_back(std::move(entry));
      for (auto& [id, run] : st.runs) {
        emit(self, run, "node", st.pools.back().info.name, "joined", 0,
             st.pools.back().info.name,
             std::to_string(st.pools.back().info.slots) + " slots");
        for (auto idx : run.parked)
          if (run.ws[idx].state == ws_state::ready)
            run.ready.push_back(idx);
        run.parked.clear();
        for (auto& w : run.ws)
          w.waiting_reported = false;
      }
      pump_all(self);
      return st.cfg.name;
    },
    [=](nodes_atom,
        const std::string& token) -> caf::result<std::vector<node_status>> {
      auto& st = self->state;
      if (!st.cfg.token.empty() && token != st.cfg.token)
        return caf::make_error(errc::bad_token,
                               "the coordinator does not accept this token");
      std::vector<node_status> out;
      for (auto& p : self->state.pools)
        out.push_back({p.info, p.busy, p.state, p.completed});
      return out;
    },
    [=](drain_atom, const pool_actor& pool) -> bool {
      for (auto& p : self->state.pools)
        if (p.handle == pool && p.state == "joined") {
          p.state = "draining";
          log()->info("node {} is draining", p.info.name);
          for (auto& [id, run] : self->state.runs)
            emit(self, run, "node", p.info.name, "draining", 0, p.info.name);
        }
      pump_all(self);
      return true;
    },
    [=](leave_atom, const pool_actor& pool) -> bool {
      for (auto& p : self->state.pools)
        if (p.handle == pool && p.active()) {
          p.state = "left";
          self->demonitor(p.handle.address());
          log()->info("node {} left", p.info.name);
          for (auto& [id, run] : self->state.runs)
            emit(self, run, "node", p.info.name, "left", 0, p.info.name);
        }
      pump_all(self);
      return true;
    },
    [=](shutdown_atom) -> caf::result<bool> {
      auto& st = self->state;
      st.shutting_down = true;
      log()->info("shutting down: cancelling {} runs", st.runs.size());
      for (auto& p : st.pools)
        if (p.active())
          self->send(p.handle, shutdown_atom_v);
      std::vector<std::string> ids;
      for (auto& [id, run] : st.runs) {
        ids.push_back(id);
        run.user_cancelled = true;
        emit(self, run, "run", id, "cancelling", 0, {},
             "the coordinator is shutting down");
        start_cancel(self, run, "cancelled: the coordinator is shutting down");
      }
      for (auto& id : ids)
        maybe_finish(self, id);
      if (st.runs.empty() && st.reports_pending == 0)
        return true;
      auto rp = self->make_response_promise<bool>();
      st.shutdown_waiters.push_back(rp);
      return rp;
    },
    [=](watchdog_atom) { watchdog(self); },
    [=](started_atom, const std::string& run_id, const std::string& ws_id,
        int32_t attempt, const std::string& node) {
      auto i = self->state.runs.find(run_id);
      if (i == self->state.runs.end())
        return;
      auto& run = i->second;
      auto w = run.index.find(ws_id);
      if (w == run.index.end())
        return;
      auto& ws = run.ws[w->second];
      if (ws.state != ws_state::dispatched || ws.attempts != attempt)
        return;
      ws.state = ws_state::running;
      emit(self, run, "workstream", ws_id, "running", attempt, node);
      flush(self, run);
    },
  };
}

} // namespace

orchestrator_actor spawn_orchestrator(caf::actor_system& sys,
                                      orchestrator_config cfg) {
  if (!cfg.executors)
    cfg.executors = executor_registry::with_builtins();
  return caf::actor_cast<orchestrator_actor>(
    sys.spawn(orchestrator, std::move(cfg)));
}

} // namespace troupe
