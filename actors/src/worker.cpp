#include "troupe/actors/worker.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe {

namespace {

using retry_atom = caf::atom_constant<caf::atom("retry")>;
constexpr retry_atom retry_atom_v{};

// How long one connection or join attempt may take.
constexpr auto attempt_timeout = std::chrono::seconds(10);
// How long draining may wait for the coordinator to acknowledge.
constexpr auto ack_timeout = std::chrono::seconds(30);
// How long draining may wait for the pool's running work to end: longer
// than any sane workstream timeout.
constexpr auto drain_limit = std::chrono::seconds(24 * 3600);
// How long a worker that lost its coordinator waits for its pool to stop
// what it ran before joining again (a command gets SIGKILL 2 s after
// SIGTERM; agents of an embedder's own may take longer).
constexpr auto stop_limit = std::chrono::seconds(30);

struct worker_state {
  static inline const char* name = "troupe.worker";
  worker_config cfg;
  pool_actor pool;
  orchestrator_actor coordinator;
  std::chrono::milliseconds backoff{0};
  /// Failed attempts since the last success; the first of a streak is a
  /// warning, the rest are info.
  int failures = 0;
  bool draining = false;
  bool done = false;
};

using worker_ptr = caf::stateful_actor<worker_state>*;

caf::behavior connecting(worker_ptr self);
caf::behavior joined(worker_ptr self);
caf::behavior stopping(worker_ptr self);

void finish(worker_ptr self, int code, std::string why) {
  auto& st = self->state;
  if (st.done)
    return;
  st.done = true;
  if (st.cfg.on_exit)
    st.cfg.on_exit(code, std::move(why));
  self->quit();
}

// Logs a failed attempt without flooding the log while it keeps failing.
void attempt_failed(worker_ptr self, const std::string& what) {
  auto& st = self->state;
  if (st.failures++ == 0)
    log()->warn("{}; retrying with backoff", what);
  else
    log()->info("{}; retrying", what);
}

void retry_later(worker_ptr self) {
  auto& st = self->state;
  st.backoff = st.backoff.count() == 0
                 ? st.cfg.first_retry
                 : std::min(st.backoff * 2, st.cfg.max_retry);
  self->delayed_send(self, st.backoff, retry_atom_v);
}

void try_join(worker_ptr self) {
  auto& st = self->state;
  st.coordinator = nullptr;
  auto where = st.cfg.host + ":" + std::to_string(st.cfg.port);
  self
    ->request(st.cfg.middleman, attempt_timeout, caf::connect_atom_v,
              st.cfg.host, st.cfg.port)
    .then(
      [=](const caf::node_id&, caf::strong_actor_ptr serv,
          const std::set<std::string>& ifs) {
        auto& st = self->state;
        if (!serv) {
          attempt_failed(self, "nothing published at " + where);
          retry_later(self);
          return;
        }
        if (ifs != self->system().message_types<orchestrator_actor>()) {
          finish(self, 2,
                 "the coordinator at " + where
                   + " speaks another protocol (its interface differs)");
          return;
        }
        auto coordinator = caf::actor_cast<orchestrator_actor>(serv);
        self
          ->request(coordinator, attempt_timeout, join_atom_v, st.cfg.join,
                    st.pool)
          .then(
            [=](const std::string& name) {
              auto& st = self->state;
              st.coordinator = coordinator;
              st.backoff = std::chrono::milliseconds{0};
              st.failures = 0;
              self->monitor(coordinator);
              log()->info("joined coordinator {} at {} as {}", name, where,
                          st.cfg.join.info.name);
              self->become(joined(self));
            },
            [=](const caf::error& err) {
              auto why = self->system().render(err);
              if (err == errc::bad_token || err == errc::version_mismatch) {
                finish(self, 2, "the coordinator refused to join: " + why);
                return;
              }
              attempt_failed(self, "joining " + where + " failed: " + why);
              retry_later(self);
            });
      },
      [=](const caf::error& err) {
        auto why = self->system().render(err);
        if (err == caf::sec::disconnect_during_handshake)
          why += " (do both sides use the same TLS settings and CA?)";
        attempt_failed(self, "cannot reach coordinator at " + where + ": "
                               + why);
        retry_later(self);
      });
}

void leave(worker_ptr self) {
  auto& st = self->state;
  auto coordinator = st.coordinator;
  // Wait until nothing runs here, then say goodbye: the answer to `leave`
  // arrives after every result this node sent, so none is lost in flight.
  self->request(st.pool, drain_limit, drain_atom_v)
    .then(
      [=](bool) {
        if (!coordinator) {
          finish(self, 0, "drained");
          return;
        }
        self->request(coordinator, ack_timeout, leave_atom_v, self->state.pool,
                      self->state.cfg.join.key)
          .then([=](bool) { finish(self, 0, "drained and left"); },
                [=](const caf::error& err) {
                  finish(self, 0, "drained; the coordinator did not "
                                  "acknowledge leaving: "
                                    + self->system().render(err));
                });
      },
      [=](const caf::error& err) {
        finish(self, 1, "draining failed: " + self->system().render(err));
      });
}

caf::behavior connecting(worker_ptr self) {
  try_join(self);
  return {
    [=](retry_atom) { try_join(self); },
    [=](drain_atom) {
      self->state.draining = true;
      finish(self, 0, "stopped before joining");
    },
  };
}

caf::behavior joined(worker_ptr self) {
  return {
    [=](drain_atom) {
      auto& st = self->state;
      if (st.draining)
        return;
      st.draining = true;
      log()->info("draining: finishing what runs, taking nothing new");
      self->request(st.coordinator, ack_timeout, drain_atom_v, st.pool,
                    st.cfg.join.key)
        .then([=](bool) { leave(self); },
              [=](const caf::error&) {
                // The coordinator is gone or slow: finish locally anyway.
                self->state.coordinator = nullptr;
                leave(self);
              });
    },
    [=](retry_atom) {
      // nop: a retry scheduled before the join succeeded
    },
  };
}

// The coordinator is lost and gives what this node runs to others: stop
// it, and join again only once it has ended, so that a rerun elsewhere
// never starts beside it.
caf::behavior stopping(worker_ptr self) {
  auto& st = self->state;
  self->send(st.pool, shutdown_atom_v);
  self->request(st.pool, stop_limit, drain_atom_v)
    .then(
      [=](bool) {
        if (!self->state.draining)
          self->become(connecting(self));
      },
      [=](const caf::error& err) {
        if (self->state.draining)
          return;
        log()->warn("what this node ran did not stop in time ({}); joining "
                    "again anyway",
                    self->system().render(err));
        self->become(connecting(self));
      });
  return {
    [=](drain_atom) {
      self->state.draining = true;
      leave(self); // nobody to leave: finishes once the pool is idle
    },
    [=](retry_atom) {
      // nop: a retry scheduled before the join succeeded
    },
  };
}

caf::behavior worker_node(worker_ptr self, worker_config cfg,
                          pool_actor pool) {
  self->state.cfg = std::move(cfg);
  // Only this node may drain its pool or take it away.
  if (self->state.cfg.join.key.empty())
    self->state.cfg.join.key = make_secret();
  self->state.pool = std::move(pool);
  self->set_down_handler([=](const caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.coordinator || dm.source != st.coordinator.address())
      return;
    st.coordinator = nullptr;
    if (st.draining) {
      // Nobody to leave; finish what runs.
      return;
    }
    log()->warn("lost the coordinator ({}); stopping what runs here, then "
                "rejoining",
                self->system().render(dm.reason));
    // Join again under a new key, presenting the lost one: a coordinator
    // that has not noticed the loss yet (the link came back first) then
    // ends the old membership and reruns its work.
    st.cfg.join.previous_key = std::move(st.cfg.join.key);
    st.cfg.join.key = make_secret();
    self->become(stopping(self));
  });
  return connecting(self);
}

} // namespace

caf::actor spawn_worker_node(caf::actor_system& sys, worker_config cfg,
                             pool_actor pool) {
  return sys.spawn(worker_node, std::move(cfg), std::move(pool));
}

} // namespace troupe
