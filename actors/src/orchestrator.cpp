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
#include "troupe/runtime/journal.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe {

namespace orch {

namespace {

// True if `key` is the one `pool` joined with.
bool holds_key(self_ptr self, const pool_actor& pool, const std::string& key) {
  for (auto& p : self->state.pools)
    if (p.handle == pool && p.active())
      return !key.empty() && key == p.key;
  return false;
}

// Who sent the current message, for logs: its node (a peer may spawn
// actors at will, so they do not count as different peers).
std::string describe_sender(self_ptr self) {
  auto& sender = self->current_sender();
  if (!sender)
    return "an anonymous peer";
  if (sender->node() == self->system().node())
    return "this node";
  return "node " + caf::to_string(sender->node());
}

// Peers (and what they were refused) remembered for `refused`; past this,
// refusals are no longer logged (a flood of new peers must not grow the
// orchestrator without bound).
constexpr size_t refused_peers_limit = 1024;

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

// Whether `token` is the cluster's; `what` names the request in logs.
caf::error check_token(self_ptr self, const std::string& token,
                       const char* what) {
  auto& st = self->state;
  if (!st.cfg.token.empty() && token != st.cfg.token) {
    refused(self, std::string{what} + " with a wrong token");
    return caf::make_error(errc::bad_token,
                           "the coordinator does not accept this token");
  }
  return {};
}

// Whether a run (or resume) may start: the coordinator takes runs and
// `token` is the cluster's.
caf::error admit(self_ptr self, const std::string& token, const char* what) {
  auto& st = self->state;
  if (st.shutting_down)
    return caf::make_error(errc::shutting_down, st.cfg.name);
  return check_token(self, token, what);
}


} // namespace

// What plans may use: the built-in executors and whatever a node offers.
validation_options offered_executors(self_ptr self) {
  validation_options vopts;
  vopts.executor_kinds.insert("noop");
  for (auto& pool : self->state.pools)
    for (auto& kind : pool.info.executors)
      vopts.executor_kinds.insert(kind);
  return vopts;
}

void refused(self_ptr self, const std::string& why) {
  auto& seen = self->state.refused_peers;
  auto peer = describe_sender(self);
  if (seen.size() >= refused_peers_limit
      || !seen.insert(peer + '\0' + why).second)
    return;
  log()->warn("refused {} from {}", why, peer);
}

orchestrator_impl::behavior_type
orchestrator(self_ptr self, orchestrator_config cfg) {
  self->state.cfg = std::move(cfg);
  auto seed = make_secret();
  self->state.watchdog_key = std::stoull(seed.substr(0, 16), nullptr, 16);
  self->state.keys.seed(std::stoull(seed.substr(16, 16), nullptr, 16));
  // Messages no handler takes are dropped, with one warning per peer (the
  // default prints each one).
  self->set_default_handler(
    [=](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      refused(self, "a message the coordinator does not know");
      return caf::sec::unexpected_message;
    });
  self->state.synthesizer = spawn_synthesizer(self->system());
  self->link_to(self->state.synthesizer);
  if (auto& j = self->state.cfg.journal) {
    auto key = self->state.keys();
    self->state.journal_key = key;
    // A weak handle: the writer must not keep the orchestrator alive.
    caf::actor_addr me = self->address();
    self->state.writer = std::make_unique<journal_writer>(
      j, [me, key](uint64_t ticket, std::string error) {
        if (auto hdl = caf::actor_cast<caf::actor>(me))
          caf::anon_send(hdl, journaled_atom_v, key, ticket, std::move(error));
      });
  }
  if (self->state.cfg.resume_unfinished)
    resume_unfinished(self);
  self->set_down_handler([=](const caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [id, run] : st.runs) {
      auto& obs = run.observers;
      obs.erase(std::remove_if(obs.begin(), obs.end(),
                               [&](const observer_actor& o) {
                                 return o.address() == dm.source;
                               }),
                obs.end());
    }
    for (auto& [id, run] : st.reporting) {
      auto& obs = run.observers;
      obs.erase(std::remove_if(obs.begin(), obs.end(),
                               [&](const observer_actor& o) {
                                 return o.address() == dm.source;
                               }),
                obs.end());
    }
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
      if (auto err = admit(self, opts.token, "a run"))
        return err;
      // Plans come from other nodes too: carry their text as UTF-8.
      make_valid_utf8_fields(p);
      make_valid_utf8_fields(opts);
      diagnostics diags;
      validate_plan(p, offered_executors(self), diags);
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
      auto max_parallel = std::max(opts.max_parallel > 0
                                     ? opts.max_parallel
                                     : p.settings.max_parallel_agents,
                                   1);
      auto started_at = unix_now();
      if (auto& j = st.cfg.journal) {
        // Claimed here, so that a run another process holds is refused;
        // recorded by the writer, before any of the run's events.
        try {
          j->claim_run(id);
        } catch (const journal_error& e) {
          log()->error("run {} refused: {}", id, e.what());
          return caf::make_error(errc::journal_failed, e.what());
        }
      }
      auto workdir = opts.workdir;
      auto& run = open_run(self, id, std::move(p), std::move(opts),
                           std::move(observer), max_parallel, started_at);
      if (auto& w = st.writer)
        run.last_ticket = w->begin_run(
          {id, run.p, max_parallel, std::move(workdir), started_at});
      guarded(self, id, [&] {
        log()->info("run {} started: plan {}, {} workstreams", id,
                    run.p->name, run.ws.size());
        emit(self, run, event_kind::run_started, id, "started", 0, {},
             std::to_string(run.ws.size()) + " workstreams, "
               + std::to_string(run.gates.size()) + " gates");
        for (size_t i = 0; i < run.ws.size(); ++i)
          make_ready(self, run, i);
        pump(self, run);
        maybe_finish(self, id);
      });
      return id;
    },
    [=](resume_atom, const std::string& run_id, run_options& opts,
        observer_actor& observer) -> caf::result<std::string> {
      if (auto err = admit(self, opts.token, "a resume"))
        return err;
      make_valid_utf8_fields(opts);
      std::string id;
      if (auto err = resume_run(self, run_id, std::move(opts),
                                std::move(observer), id))
        return err;
      return id;
    },
    [=](subscribe_atom, const std::string& run_id, const std::string& token,
        observer_actor& observer) -> caf::result<std::string> {
      if (auto err = check_token(self, token, "a subscription"))
        return err;
      if (!observer)
        return caf::make_error(errc::unknown_run, "no observer");
      auto run = find_run(self, run_id);
      if (!run) {
        // An ended run still takes observers for its report.
        auto ended = find_reporting(self, run_id);
        if (!ended)
          return caf::make_error(errc::unknown_run,
                                 not_running(self, run_id));
        self->send(observer, ended->last);
        self->monitor(observer);
        ended->observers.push_back(std::move(observer));
        return ended->last.run_id;
      }
      // What the run produced so far goes out first, so the snapshot is
      // the state after the last event any observer saw.
      flush(self, *run);
      self->send(observer, snapshot(self, *run));
      self->monitor(observer);
      run->observers.push_back(std::move(observer));
      return run->id;
    },
    [=](unsubscribe_atom, const std::string& run_id, const std::string& token,
        const observer_actor& observer) -> bool {
      if (check_token(self, token, "an unsubscription"))
        return false;
      auto run = find_run(self, run_id);
      if (!run)
        return false;
      auto& obs = run->observers;
      auto n = obs.size();
      obs.erase(std::remove(obs.begin(), obs.end(), observer), obs.end());
      return obs.size() < n;
    },
    [=](status_atom, const std::string& token)
      -> caf::result<std::vector<run_snapshot>> {
      if (auto err = check_token(self, token, "a status query"))
        return err;
      std::vector<run_snapshot> out;
      for (auto& [id, run] : self->state.runs)
        out.push_back(snapshot(self, run, true));
      for (auto& [id, ended] : self->state.reporting) {
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
            if (self->state.runs.count(r.id) > 0
                || self->state.reporting.count(r.id) > 0)
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
    },
    [=](status_atom, const std::string& run_id,
        const std::string& token) -> caf::result<run_snapshot> {
      if (auto err = check_token(self, token, "a status query"))
        return err;
      if (auto run = find_run(self, run_id))
        return snapshot(self, *run);
      if (auto ended = find_reporting(self, run_id))
        return ended->last;
      return caf::make_error(errc::unknown_run, not_running(self, run_id));
    },
    [=](abort_atom, const std::string& run_id,
        const std::string& token) -> caf::result<std::string> {
      if (auto err = check_token(self, token, "an abort"))
        return err;
      auto run = find_run(self, run_id);
      if (!run)
        return caf::make_error(errc::unknown_run, not_running(self, run_id));
      auto id = run->id;
      cancel_run(self, *run, "aborted");
      return id;
    },
    [=](report_atom, const std::string& run_id,
        const std::string& token) -> caf::result<run_report> {
      if (auto err = check_token(self, token, "a report query"))
        return err;
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
                                 + " is running here, and nothing is "
                                   "journaled (--no-journal)");
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
    },
    [=](cancel_atom, const std::string& run_id, const std::string& key) {
      auto i = self->state.runs.find(run_id);
      // Only whoever started a run holds its key; an unknown run and a
      // wrong key look alike to the sender.
      if (i == self->state.runs.end() || key.empty()
          || key != i->second.opts.cancel_key) {
        refused(self, "a cancel without its run's key");
        return;
      }
      cancel_run(self, i->second, "cancelled by its submitter");
    },
    [=](join_atom, join_request& req,
        pool_actor& pool) -> caf::result<std::string> {
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
    },
    [=](nodes_atom,
        const std::string& token) -> caf::result<std::vector<node_status>> {
      if (auto err = check_token(self, token, "a node listing"))
        return err;
      std::vector<node_status> out;
      for (auto& p : self->state.pools)
        out.push_back({p.info, p.busy, p.state, p.completed});
      return out;
    },
    [=](drain_atom, const pool_actor& pool, const std::string& key) -> bool {
      if (!holds_key(self, pool, key)) {
        refused(self, "a drain without the node's key");
        return false;
      }
      for (auto& p : self->state.pools)
        if (p.handle == pool && p.state == "joined") {
          p.state = "draining";
          log()->info("node {} is draining", p.info.name);
          for (auto& [id, run] : self->state.runs)
            emit(self, run, event_kind::node_draining, p.info.name, "draining", 0, p.info.name);
        }
      pump_all(self);
      return true;
    },
    [=](leave_atom, const pool_actor& pool, const std::string& key) -> bool {
      if (!holds_key(self, pool, key)) {
        refused(self, "a leave without the node's key");
        return false;
      }
      for (auto& p : self->state.pools)
        if (p.handle == pool && p.active()) {
          p.state = "left";
          self->demonitor(p.handle.address());
          log()->info("node {} left", p.info.name);
          for (auto& [id, run] : self->state.runs)
            emit(self, run, event_kind::node_left, p.info.name, "left", 0, p.info.name);
        }
      pump_all(self);
      return true;
    },
    [=](shutdown_atom, const std::string& key) -> caf::result<bool> {
      auto& st = self->state;
      if (key.empty() || key != st.cfg.owner_key) {
        refused(self, "a shutdown without the owner's key");
        return caf::make_error(errc::bad_token,
                               "shutting down needs the owner's key");
      }
      st.shutting_down = true;
      log()->info("shutting down: cancelling {} runs", st.runs.size());
      for (auto& p : st.pools)
        if (p.active())
          self->send(p.handle, shutdown_atom_v);
      std::vector<std::string> ids;
      for (auto& [id, run] : st.runs) {
        ids.push_back(id);
        run.user_cancelled = true;
        emit(self, run, event_kind::run_cancelling, id, "cancelling", 0, {},
             "the coordinator is shutting down");
        start_cancel(self, run, "cancelled: the coordinator is shutting down");
      }
      for (auto& id : ids)
        maybe_finish(self, id);
      if (st.runs.empty() && st.reporting.empty())
        return true;
      auto rp = self->make_response_promise<bool>();
      st.shutdown_waiters.push_back(rp);
      return rp;
    },
    [=](journaled_atom, uint64_t key, uint64_t ticket,
        const std::string& error) {
      if (key != self->state.journal_key) {
        refused(self, "a journal notice of somebody else's");
        return;
      }
      if (!error.empty())
        log()->error("the journal failed: {}", error);
      journaled(self, ticket, error);
    },
    [=](watchdog_atom, uint64_t key) {
      if (key != self->state.watchdog_key) {
        refused(self, "a watchdog tick of somebody else's");
        return;
      }
      watchdog(self);
    },
    [=](started_atom, const std::string& run_id, const std::string& ws_id,
        int32_t attempt, const std::string& node, uint64_t key) {
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
      if (key != ws.key) {
        refused(self, "a start notice without its dispatch's key");
        return;
      }
      ws.state = ws_state::running;
      guarded(self, run_id, [&] {
        emit(self, run, event_kind::ws_running, ws_id, "running", attempt,
             valid_utf8(node));
        flush(self, run);
      });
    },
  };
}

} // namespace orch

namespace {

// The orchestrator's behaviour in an actor that screens system messages
// before they reach it. CAF 0.17 delivers exit, down and error messages
// from any peer, and an exit message with reason `kill` ends an actor
// whatever its exit handler says; over the network a peer can claim to be
// any actor of its own node, or of ours that another node can address.
// Nobody can claim to be a local actor that no node can address: those are
// the only ones obeyed (and a monitored node's proxy telling of its own
// end).
class screened_orchestrator
  : public caf::stateful_actor<orch::orchestrator_state,
                               orch::orchestrator_impl::base> {
public:
  using super = caf::stateful_actor<orch::orchestrator_state,
                                    orch::orchestrator_impl::base>;

  screened_orchestrator(caf::actor_config& cfg, orchestrator_config ocfg)
    : super(cfg), ocfg_(std::move(ocfg)) {
    // nop
  }

  behavior_type make_behavior() override {
    return orch::orchestrator(this, std::move(ocfg_));
  }

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    auto& msg = x.content();
    bool trusted = true;
    if (msg.match_elements<caf::exit_msg>()
        || msg.match_elements<caf::error>()) {
      trusted = unaddressable_local(x.sender);
    } else if (msg.match_elements<caf::down_msg>()) {
      auto& dm = msg.get_as<caf::down_msg>(0);
      trusted = unaddressable_local(x.sender)
                || (x.sender && dm.source == x.sender->address());
    }
    if (trusted)
      return super::consume(x);
    current_element_ = &x;
    orch::refused(this, "a system message (exit, down or error)");
    current_element_ = nullptr;
    return caf::invoke_message_result::dropped;
  }

private:
  bool unaddressable_local(const caf::strong_actor_ptr& sender) {
    auto& sys = home_system();
    return sender && sender->node() == sys.node()
           && sys.registry().get(sender->id()) == nullptr;
  }

  orchestrator_config ocfg_;
};

} // namespace

orchestrator_actor spawn_orchestrator(caf::actor_system& sys,
                                      orchestrator_config cfg) {
  return sys.spawn<screened_orchestrator>(std::move(cfg));
}

void stop_orchestrator(caf::actor_system& sys,
                       const orchestrator_actor& orch) {
  caf::scoped_actor self{sys};
  self->send_exit(orch, caf::exit_reason::user_shutdown);
}

} // namespace troupe
