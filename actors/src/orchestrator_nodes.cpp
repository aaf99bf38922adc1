// Nodes: joining, losing one, and the watchdog for nodes that stop
// answering.

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

#include "orchestrator_state.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/protocol/valid_text.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::orch {

caf::result<std::string> join_node(self_ptr self, join_request& req,
                                   pool_actor pool) {
  auto& st = self->state;
  make_valid_utf8_fields(req);
  auto& info = req.info;
  if (st.shutting_down)
    return caf::make_error(errc::shutting_down, st.cfg.name);
  if (!st.cfg.token.empty() && req.token != st.cfg.token) {
    refused(self, "node " + info.name + " joining with a wrong token");
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
  for (size_t pi = 0; pi < st.pools.size(); ++pi) {
    auto& p = st.pools[pi];
    if (!p.active())
      continue;
    if (p.handle == pool) {
      // The node lost this coordinator and is back before the loss
      // was noticed here (CAF takes its new connection for another
      // route to it and may never report the old one down). It has
      // stopped what it ran: that membership ends as lost, and its
      // work runs again.
      if (!req.previous_key.empty() && req.previous_key == p.key) {
        node_lost(self, pi, "it rejoined after losing the coordinator");
        continue;
      }
      // The same pool asking again (its first answer came too late
      // for it) is already in: say so again.
      return st.cfg.name;
    }
    if (p.info.name == info.name)
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
  entry.key = std::move(req.key);
  st.pools.push_back(std::move(entry));
  for (auto& [id, run] : st.runs)
    emit(self, run, event_kind::node_joined, st.pools.back().info.name,
         "joined", 0,
         st.pools.back().info.name,
         std::to_string(st.pools.back().info.slots) + " slots");
  nodes_changed(self);
  return st.cfg.name;
}

// A node went away: what it was running goes back to ready and runs
// elsewhere, and the lost attempt is not charged to the retry budget.
void node_lost(self_ptr self, size_t pool_idx, const std::string& why) {
  auto& st = self->state;
  auto& pool = st.pools[pool_idx];
  pool.state = "lost";
  pool.busy = 0;
  pool.overdue.clear();
  log()->warn("node {} lost ({}): its work goes elsewhere", pool.info.name,
              why);
  for (auto& [id, run] : st.runs) {
    emit(self, run, event_kind::node_lost, pool.info.name, "lost", 0,
         pool.info.name, why);
    for (size_t idx = 0; idx < run.ws.size(); ++idx) {
      auto& w = run.ws[idx];
      if (w.pool != pool_idx
          || (w.state != ws_state::dispatched
              && w.state != ws_state::running))
        continue;
      w.dispatches += 1; // whatever the lost node still sends is stale
      if (requeue(self, run, idx,
                  "cancelled (node " + pool.info.name + " lost)"))
        emit(self, run, event_kind::ws_requeued, w.def->id, "ready",
             w.attempts, pool.info.name,
             "requeued: node " + pool.info.name + " lost");
    }
  }
  pump_all(self);
  std::vector<std::string> ids;
  for (auto& [id, run] : st.runs)
    ids.push_back(id);
  for (auto& id : ids)
    maybe_finish(self, id);
}

void arm_watchdog(self_ptr self) {
  auto& st = self->state;
  if (st.watchdog_armed)
    return;
  st.watchdog_armed = true;
  self->delayed_send(self, watchdog_interval, watchdog_atom_v,
                     st.watchdog_key);
}

// Gives up on dispatches whose node never answered in time: the attempt
// times out (retried if its budget allows), the node is told to cancel it,
// and whatever it still sends is stale. The node's slot stays taken until
// it answers (or is lost): it may still be running the work.
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
      st.pools[pool_idx].overdue.emplace(w.key, now + st.cfg.dispatch_grace);
      w.dispatches += 1; // its answer, should it come, is stale now
      workstream_result r;
      r.status = ws_state::timed_out;
      r.summary = "no answer from node " + node + " within the timeout";
      r.output = r.summary;
      guarded(self, id, [&] {
        accept_attempt(self, run, idx, pool_idx, std::move(r));
      });
      if (st.runs.find(id) == st.runs.end())
        break;
    }
  }
  // A node that answers not even a cancelled dispatch in time is gone in
  // all but name: declare it lost, which frees its slots.
  for (size_t pi = 0; pi < st.pools.size(); ++pi) {
    auto& p = st.pools[pi];
    if (!p.active() || p.overdue.empty())
      continue;
    busy = true;
    for (auto& [key, by] : p.overdue)
      if (by <= now) {
        node_lost(self, pi, "it did not answer a timed-out dispatch");
        break;
      }
  }
  if (busy)
    arm_watchdog(self);
}

} // namespace troupe::orch
