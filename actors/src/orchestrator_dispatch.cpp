// Dispatch: the ready queues, picking a node, and preparing work with its
// context (orchestrator_context.cpp builds it; orchestrator_send.cpp sends
// the work and takes its answer).

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

bool executor_offered(const pool_entry& p, const std::string& kind) {
  if (kind == "noop")
    return true;
  auto& ex = p.info.executors;
  if (ex.empty())
    return builtin_executor_kinds().count(kind) > 0;
  return std::find(ex.begin(), ex.end(), kind) != ex.end();
}

bool fits(const pool_entry& p, const workstream& w, const std::string& model) {
  if (p.state != "joined" || p.info.slots <= 0)
    return false;
  // A node that names its models serves those only.
  auto& models = p.info.models;
  if (!models.empty() && !model.empty()
      && std::find(models.begin(), models.end(), model) == models.end())
    return false;
  // Work without a persona (a gate's check) fits any node.
  auto& personas = p.info.personas;
  if (!personas.empty() && !w.persona.empty()
      && std::find(personas.begin(), personas.end(), w.persona)
           == personas.end())
    return false;
  // An `until` check is a command, run by the node that did the work.
  return executor_offered(p, w.executor.kind)
         && (!w.iterates() || executor_offered(p, "command"));
}

// The least-loaded pool that fits `w` and has a free slot; `npos` if none.
// `any_fits` tells whether some pool would fit once it had room.
size_t pick_pool(orchestrator_state& st, const workstream& w,
                 const std::string& model, bool& any_fits) {
  any_fits = false;
  size_t best = npos;
  double best_load = 2;
  for (size_t i = 0; i < st.pools.size(); ++i) {
    auto& p = st.pools[i];
    if (!fits(p, w, model))
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

} // namespace

void pump_all(self_ptr self) {
  std::vector<std::string> failed;
  for (auto& [id, run] : self->state.runs) {
    try {
      pump(self, run);
      flush(self, run);
    } catch (const std::exception& e) {
      failed.push_back(id);
      run.internal_error = failure_reason(e);
    }
  }
  for (auto& id : failed) {
    auto i = self->state.runs.find(id);
    if (i != self->state.runs.end())
      fail_run(self, id, i->second.internal_error);
  }
}

void make_ready(self_ptr self, run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  if (w.state != ws_state::pending)
    return;
  if (w.remaining_deps > 0 || w.remaining_gates > 0)
    return;
  w.state = ws_state::ready;
  emit(self, run, event_kind::ws_ready, w.def->id, "ready");
  enqueue(self, run, idx);
}

namespace {

// Tells, once per workstream, that no node can take it.
void report_waiting(self_ptr self, run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  if (w.waiting_reported || w.state != ws_state::ready)
    return;
  w.waiting_reported = true;
  auto why = w.def->persona.empty()
               ? "waiting: no node offers executor \"" + w.def->executor.kind
                   + "\""
               : "waiting: no node offers persona \"" + w.def->persona
                   + "\" with executor \"" + w.def->executor.kind + "\"";
  auto& model = run.shapes[w.shape].model;
  if (!model.empty())
    why += " and model \"" + model + "\"";
  log()->warn("workstream {} is {}", w.def->id, why);
  emit(self, run, event_kind::ws_waiting, w.def->id, "ready", 0, {}, why);
}

} // namespace

void enqueue(self_ptr self, run_state& run, size_t idx) {
  auto& w = run.ws[idx];
  if (w.shape == npos) {
    // Every workstream has a tier; agents name a model, and any other
    // work may name one for its limits and nodes.
    auto model = resolve_model(run.p->settings, *w.def);
    auto tier = to_string(w.def->model);
    auto key = w.def->persona + '\0' + w.def->executor.kind + '\0' + tier
               + '\0' + model;
    auto [i, added] = run.shape_index.emplace(key, run.shapes.size());
    if (added) {
      shape_queue q;
      q.persona = w.def->persona;
      q.executor = w.def->executor.kind;
      q.tier = std::move(tier);
      q.model = std::move(model);
      run.shapes.push_back(std::move(q));
    }
    w.shape = i->second;
  }
  auto& q = run.shapes[w.shape];
  q.ready.emplace_back(run.ready_seq++, idx);
  if (q.waiting)
    report_waiting(self, run, idx);
}

void nodes_changed(self_ptr self) {
  for (auto& [id, run] : self->state.runs) {
    for (auto& q : run.shapes)
      q.waiting = false;
    for (auto& w : run.ws)
      w.waiting_reported = false;
  }
  pump_all(self);
}

namespace {

// Calls `f(counter, limit)` for each of the plan's limits that work of
// shape `q` falls under.
template <class F>
void for_each_limit(run_state& run, const shape_queue& q, F f) {
  auto& limits = run.p->settings.limits;
  if (limits.empty())
    return;
  if (auto i = limits.persona.find(q.persona); i != limits.persona.end())
    f(run.limited["p" + q.persona], i->second);
  if (auto i = limits.model.find(q.tier); i != limits.model.end())
    f(run.limited["m" + q.tier], i->second);
  if (!q.model.empty() && q.model != q.tier)
    if (auto i = limits.model.find(q.model); i != limits.model.end())
      f(run.limited["m" + q.model], i->second);
}

// True when a limit that work of shape `q` falls under has no room.
bool limits_full(run_state& run, const shape_queue& q) {
  bool full = false;
  for_each_limit(run, q, [&](int32_t& running, int32_t limit) {
    full = full || running >= limit;
  });
  return full;
}

} // namespace

void count_limits(run_state& run, size_t idx, bool release) {
  auto shape = run.ws[idx].shape;
  if (shape == npos)
    return;
  for_each_limit(run, run.shapes[shape],
                 [&](int32_t& running, int32_t) { running += release ? -1 : 1; });
}

void dispatch(self_ptr self, run_state& run, size_t idx, size_t pool_idx) {
  auto& w = run.ws[idx];
  count_limits(run, idx, false);
  if (run.replaying) {
    // Where the work went then, its result (if any) says; nothing goes out.
    w.state = ws_state::dispatched;
    w.attempts += 1;
    w.dispatches += 1;
    w.pool = npos;
    run.in_flight += 1;
    return;
  }
  auto& st = self->state;
  auto& pool = st.pools[pool_idx];
  w.state = ws_state::dispatched;
  w.attempts += 1;
  w.dispatches += 1;
  w.pool = pool_idx;
  w.key = st.keys();
  w.dispatched_at = clock_type::now();
  pool.busy += 1;
  run.in_flight += 1;
  auto& out = run.outgoing.emplace_back();
  out.idx = idx;
  out.pool = pool_idx;
  auto& spec = out.spec;
  spec.run_id = run.id;
  spec.ws = *w.def;
  spec.attempt = w.attempts;
  spec.dispatch = w.dispatches;
  spec.timeout_s = w.def->timeout_s > 0 ? w.def->timeout_s
                                       : run.p->settings.default_timeout_s;
  spec.workdir = run.opts.workdir;
  spec.workspace = workspace_for(run, w);
  spec.key = w.key;
  spec.model = run.shapes[w.shape].model;
  if (!spec.model.empty())
    find_price(run.p->settings, spec.model, spec.price);
  if (is_agent_executor(w.def->executor.kind))
    spec.system_prompt = persona_prompt(run.p->settings, w.def->persona);
  spec.budget_usd = w.reserved_usd;
  // noop and sleep never read their context, nor do gate checks; a wide
  // gather would pay for building it.
  if (w.def->executor.kind != "noop" && w.def->executor.kind != "sleep"
      && w.checks_gate == npos)
    spec.context = make_context(run, w);
  emit(self, run, event_kind::ws_dispatched, w.def->id, "dispatched",
       w.attempts, pool.info.name);
  SPDLOG_LOGGER_DEBUG(log(), "workstream {} dispatched to node {} (attempt {})",
                      w.def->id, pool.info.name, w.attempts);
  // The watchdog's clock starts when the work goes out.
  w.deadline = clock_type::time_point::max();
}

bool requeue(self_ptr self, run_state& run, size_t idx,
             const std::string& cancel_why) {
  auto& w = run.ws[idx];
  w.attempts -= 1;
  w.pool = npos;
  run.in_flight -= 1;
  count_limits(run, idx, true);
  settle_budget(run, idx, nullptr);
  if (run.cancelling) {
    end_unrun(self, run, idx, ws_state::cancelled, cancel_why);
    return false;
  }
  w.state = ws_state::ready;
  enqueue(self, run, idx);
  return true;
}

// Dispatches what the run's limits and the nodes allow, oldest ready
// first, but never letting a workstream that no node can take now hold up
// one that some node can: each kind of node has its own queue.
static void fill(self_ptr self, run_state& run);

void pump(self_ptr self, run_state& run) {
  fill(self, run);
  send_dispatches(self, run);
}

// Picks what `pump` dispatches.
static void fill(self_ptr self, run_state& run) {
  auto& st = self->state;
  if (run.cancelling)
    return;
  if (run.replaying) {
    // Everything ready was dispatched, as far as a replay knows: the
    // journal tells which of it ended.
    for (auto& q : run.shapes)
      while (!q.ready.empty()) {
        auto idx = q.ready.front().second;
        q.ready.pop_front();
        if (run.ws[idx].state == ws_state::ready)
          dispatch(self, run, idx, npos);
      }
    return;
  }
  while (run.in_flight < run.max_parallel) {
    size_t best = npos;
    size_t best_pool = npos;
    for (size_t s = 0; s < run.shapes.size(); ++s) {
      auto& q = run.shapes[s];
      while (!q.ready.empty()
             && run.ws[q.ready.front().second].state != ws_state::ready)
        q.ready.pop_front();
      if (q.ready.empty() || q.waiting || limits_full(run, q))
        continue;
      if (best != npos
          && run.shapes[best].ready.front().first < q.ready.front().first)
        continue;
      bool any_fits = false;
      auto pool = pick_pool(st, *run.ws[q.ready.front().second].def, q.model,
                            any_fits);
      if (pool != npos) {
        best = s;
        best_pool = pool;
      } else if (!any_fits) {
        // No node offers this at all: its work waits until one joins.
        q.waiting = true;
        for (auto& [seq, idx] : q.ready)
          report_waiting(self, run, idx);
      }
    }
    if (best == npos)
      return; // everything ready waits for a slot or a node
    auto idx = run.shapes[best].ready.front().second;
    if (!reserve_budget(run, idx)) {
      stop_for_budget(self, run, idx);
      return;
    }
    run.shapes[best].ready.pop_front();
    dispatch(self, run, idx, best_pool);
  }
}

} // namespace troupe::orch
