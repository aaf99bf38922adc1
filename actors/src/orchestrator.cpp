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

#include "orchestrator_state.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/protocol/valid_text.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe {

namespace orch {

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
      // Plans come from other nodes too: carry their text as UTF-8.
      make_valid_utf8_fields(p);
      make_valid_utf8_fields(opts);
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
      guarded(self, id, [&] {
        prepare(run);
        log()->info("run {} started: plan {}, {} workstreams", id,
                    run.p.name, run.ws.size());
        emit(self, run, "run", id, "started", 0, {},
             std::to_string(run.ws.size()) + " workstreams, "
               + std::to_string(run.gates.size()) + " gates");
        for (size_t i = 0; i < run.ws.size(); ++i)
          make_ready(self, run, i);
        pump(self, run);
        maybe_finish(self, id);
      });
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
      guarded(self, run_id, [&] {
        emit(self, run, "run", run_id, "cancelling");
        start_cancel(self, run, "cancelled");
        maybe_finish(self, run_id);
      });
    },
    [=](join_atom, join_request& req,
        pool_actor& pool) -> caf::result<std::string> {
      auto& st = self->state;
      make_valid_utf8_fields(req);
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
      guarded(self, run_id, [&] {
        emit(self, run, "workstream", ws_id, "running", attempt,
             valid_utf8(node));
        flush(self, run);
      });
    },
  };
}

} // namespace orch

orchestrator_actor spawn_orchestrator(caf::actor_system& sys,
                                      orchestrator_config cfg) {
  if (!cfg.executors)
    cfg.executors = executor_registry::with_builtins();
  return caf::actor_cast<orchestrator_actor>(
    sys.spawn(orch::orchestrator, std::move(cfg)));
}

} // namespace troupe
