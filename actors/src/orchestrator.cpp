#include "troupe/actors/orchestrator.hpp"

#include <algorithm>
#include <cmath>
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

// The run and workstream a notice from an attempt (its start, its
// progress) is about, when the attempt is still the current one, in state
// `expected`, and the notice carries its dispatch's key; else nulls (a
// notice with a wrong key is refused, logged as `what`).
static std::pair<run_state*, ws_run*>
notice_of(self_ptr self, const std::string& run_id, const std::string& ws_id,
          int32_t attempt, uint64_t key, ws_state expected, const char* what) {
  auto i = self->state.runs.find(run_id);
  if (i == self->state.runs.end())
    return {};
  auto& run = i->second;
  auto w = run.index.find(ws_id);
  if (w == run.index.end())
    return {};
  auto& ws = run.ws[w->second];
  if (ws.state != expected || ws.attempts != attempt)
    return {};
  if (key != ws.key) {
    refused(self, std::string{what} + " without its dispatch's key");
    return {};
  }
  return {&run, &ws};
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
    auto drop = [&](std::vector<observer_actor>& obs) {
      obs.erase(std::remove_if(obs.begin(), obs.end(),
                               [&](const observer_actor& o) {
                                 return o.address() == dm.source;
                               }),
                obs.end());
    };
    for (auto& [id, run] : st.runs)
      drop(run.observers);
    for (auto& [id, ended] : st.reporting)
      drop(ended.observers);
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
      // Planning usage a submitter claims: a few models, no negative or
      // endless numbers (they count against the budget).
      if (opts.planning_usage.size() > 64)
        diags.error("planning_usage",
                    "too many models: "
                      + std::to_string(opts.planning_usage.size()));
      for (auto& u : opts.planning_usage)
        if (!std::isfinite(u.cost_usd) || u.cost_usd < 0 || u.input_tokens < 0
            || u.output_tokens < 0 || u.cache_read_tokens < 0
            || u.cache_write_tokens < 0) {
          diags.error("planning_usage", "negative or not finite");
          break;
        }
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
      if (auto why = settle_repository(opts, id, st.cfg.name); !why.empty())
        return caf::make_error(errc::invalid_plan, why);
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
      start_integrator(self, run);
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
      return subscribe(self, run_id, std::move(observer));
    },
    [=](unsubscribe_atom, const std::string& run_id, const std::string& token,
        const observer_actor& observer) -> bool {
      if (check_token(self, token, "an unsubscription"))
        return false;
      return unsubscribe(self, run_id, observer);
    },
    [=](status_atom, const std::string& token)
      -> caf::result<std::vector<run_snapshot>> {
      if (auto err = check_token(self, token, "a status query"))
        return err;
      return list_runs(self);
    },
    [=](status_atom, const std::string& run_id,
        const std::string& token) -> caf::result<run_snapshot> {
      if (auto err = check_token(self, token, "a status query"))
        return err;
      return status_of(self, run_id);
    },
    [=](abort_atom, const std::string& run_id,
        const std::string& token) -> caf::result<std::string> {
      if (auto err = check_token(self, token, "an abort"))
        return err;
      return abort_run(self, run_id);
    },
    [=](report_atom, const std::string& run_id,
        const std::string& token) -> caf::result<run_report> {
      if (auto err = check_token(self, token, "a report query"))
        return err;
      return report_of(self, run_id);
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
      return join_node(self, req, std::move(pool));
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
      auto [run, ws] = notice_of(self, run_id, ws_id, attempt, key,
                                 ws_state::dispatched, "a start notice");
      if (run == nullptr)
        return;
      ws->state = ws_state::running;
      guarded(self, run_id, [&] {
        emit(self, *run, event_kind::ws_running, ws_id, "running", attempt,
             valid_utf8(node));
        flush(self, *run);
      });
    },
    [=](progress_atom, const std::string& run_id, const std::string& ws_id,
        int32_t attempt, uint64_t key, const std::string& how_far) {
      auto [run, ws] = notice_of(self, run_id, ws_id, attempt, key,
                                 ws_state::running, "a progress notice");
      if (run == nullptr)
        return;
      guarded(self, run_id, [&] {
        auto node = ws->pool != npos ? self->state.pools[ws->pool].info.name
                                     : std::string{};
        emit(self, *run, event_kind::ws_progress, ws_id, "running", attempt,
             node, utf8_head(valid_utf8(how_far), 500));
        flush(self, *run);
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
