#include "troupe/actors/agents.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <filesystem>
#include <memory>
#include <tuple>
#include <unordered_map>

#include <caf/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/git.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe {

namespace {

// Time an executor gets beyond its own timeout before the agent gives up on
// it: executors enforce timeouts themselves, this only catches lost ones.
constexpr auto executor_grace = std::chrono::seconds(30);

std::chrono::milliseconds request_timeout(const workstream_spec& spec) {
  auto secs = spec.timeout_s > 0 ? spec.timeout_s : 24 * 3600.0;
  return std::chrono::milliseconds(static_cast<int64_t>(secs * 1000))
         + executor_grace;
}

workstream_result noop_result(const workstream_spec& spec,
                              const std::string& node) {
  auto r = attempt_result(spec);
  r.status = ws_state::succeeded;
  r.node = node;
  r.exit_code = 0;
  r.summary = "noop";
  return r;
}

/// Bytes of a failing check's output kept in its verdict.
constexpr size_t check_detail_bytes = 8000;

/// The attempt that runs `spec`'s `until` check: its command, in its
/// directory, as the command executor runs work.
workstream_spec check_spec(const workstream_spec& spec) {
  auto c = spec;
  c.ws.executor = executor_spec{};
  c.ws.executor.kind = "command";
  c.ws.executor.run = spec.ws.until.run;
  c.ws.executor.cwd = spec.ws.until.cwd;
  c.ws.prompt.clear();
  c.context.clear();
  c.system_prompt.clear();
  c.timeout_s = until_timeout_s(spec.ws);
  return c;
}

check_result verdict(const workstream_spec& spec, const workstream_result& c) {
  check_result v;
  v.name = "until: " + spec.ws.until.run;
  v.passed = c.status == ws_state::succeeded;
  if (v.passed)
    v.detail = "exit 0";
  else if (c.status == ws_state::timed_out)
    v.detail = "timed out";
  else
    v.detail = "exit " + std::to_string(c.exit_code);
  if (!c.output.empty())
    v.detail += "\n" + utf8_tail(c.output, check_detail_bytes);
  else if (!v.passed && !c.summary.empty())
    v.detail += ": " + c.summary;
  return v;
}

struct agent_state {
  static inline const char* name = "troupe.agent";
  std::string persona;
  std::string node;
  std::shared_ptr<const executor_registry> executors;
  executor_actor exec;
  bool cancelled = false;
  /// The attempt's worktree, in a run on a git repository.
  std::unique_ptr<attempt_worktree> tree;
  std::string workspace_mode;
  /// The node's own directory for worktrees and its repository cache;
  /// empty: worktrees of the run's repository, in the run's directory.
  std::string workspaces;
};

using agent_ptr = agent_actor::stateful_pointer<agent_state>;

/// The directory of dispatch `spec` under `root`: one per dispatch, named
/// after its workstream ('/' of a sub-plan's id made '+').
std::string worktree_dir(const std::string& root, const workstream_spec& spec) {
  auto name = spec.ws.id;
  std::replace(name.begin(), name.end(), '/', '+');
  return root + "/" + name + "-" + std::to_string(spec.dispatch);
}

/// Makes the attempt's worktree (an agent with one runs on a thread of its
/// own, so it may wait for git) and runs the attempt in it; false, with
/// `r` failed saying why, when it cannot be made.
bool open_workspace(agent_ptr self, workstream_spec& spec,
                    workstream_result& r) {
  auto& ws = spec.workspace;
  // A node with a directory of its own (a worker) fetches the repository
  // into its cache there; otherwise the run's repository is at hand.
  auto& own = self->state.workspaces;
  auto root = own.empty() ? ws.root : own + "/" + spec.run_id;
  auto cache = own.empty() ? std::string{} : own + "/cache.git";
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  auto dir = worktree_dir(root, spec);
  self->state.workspace_mode = ws.mode;
  self->state.tree = std::make_unique<attempt_worktree>(
    process_runner::shared(), std::move(ws), dir, cache);
  spec.workspace = {};
  std::string why;
  if (!ec && self->state.tree->open(why)) {
    spec.workdir = dir;
    return true;
  }
  if (ec)
    why = "cannot make " + root + ": " + ec.message();
  self->state.tree.reset();
  r = attempt_result(spec);
  r.status = ws_state::failed;
  r.node = self->state.node;
  r.summary = "its workspace could not be made: " + why;
  r.output = r.summary;
  return false;
}

/// Takes the attempt's change from its worktree (when it writes), removes
/// the worktree, answers `rp` with `r` and quits.
void finish(agent_ptr self, caf::typed_response_promise<workstream_result> rp,
            workstream_result r) {
  auto& st = self->state;
  if (st.tree) {
    std::string why;
    // Read-only work's change is taken too: it must have none.
    if (st.workspace_mode != "check" && r.status == ws_state::succeeded
        && !st.tree->capture(r.diff, why)) {
      r.status = ws_state::failed;
      r.summary = "its change could not be taken: " + why;
    }
    st.tree.reset();
  }
  rp.deliver(std::move(r));
  self->quit();
}

/// Runs the `until` check of `spec` after its work `r` succeeded, then
/// answers `rp` with `r` and the check's verdict.
void run_check(agent_ptr self, const workstream_spec& spec, workstream_result r,
               const executor_factory& checker,
               caf::typed_response_promise<workstream_result> rp) {
  auto c = check_spec(spec);
  self->state.exec = checker(self->system());
  if (self->state.cancelled)
    self->send(self->state.exec, cancel_atom_v);
  auto done = [=](workstream_result outcome) mutable {
    r.check = verdict(spec, outcome);
    finish(self, rp, std::move(r));
  };
  self->request(self->state.exec, request_timeout(c), run_atom_v, c)
    .then([=](workstream_result& outcome) mutable { done(std::move(outcome)); },
          [=](caf::error& err) mutable {
            workstream_result outcome;
            outcome.status = err == caf::sec::request_timeout
                               ? ws_state::timed_out
                               : ws_state::failed;
            outcome.summary = self->system().render(err);
            if (outcome.status == ws_state::timed_out)
              self->send(self->state.exec, cancel_atom_v);
            done(std::move(outcome));
          });
}

agent_actor::behavior_type
agent(agent_actor::stateful_pointer<agent_state> self, std::string persona,
      std::string node, std::shared_ptr<const executor_registry> executors,
      std::string workspaces) {
  self->state.workspaces = std::move(workspaces);
  self->state.persona = std::move(persona);
  self->state.node = std::move(node);
  self->state.executors = std::move(executors);
  return {
    [=](dispatch_atom, workstream_spec& spec, progress_actor& progress)
      -> caf::result<workstream_result> {
      auto& st = self->state;
      if (spec.ws.executor.kind == "noop" && !spec.ws.iterates()) {
        // Nothing to drive: answer at once, without an executor actor or a
        // start notice (the answer says it ran).
        auto r = noop_result(spec, st.node);
        self->quit();
        return r;
      }
      auto factory = st.executors ? st.executors->find(spec.ws.executor.kind)
                                  : nullptr;
      auto checker = spec.ws.iterates() && st.executors
                       ? st.executors->find("command")
                       : nullptr;
      if (spec.ws.iterates() && checker == nullptr) {
        self->quit();
        return caf::make_error(errc::unknown_executor, "command", st.node);
      }
      if (factory == nullptr && spec.ws.executor.kind != "noop") {
        self->quit();
        return caf::make_error(errc::unknown_executor, spec.ws.executor.kind,
                               st.node);
      }
      if (spec.workspace.enabled()) {
        workstream_result failed;
        if (!open_workspace(self, spec, failed)) {
          self->quit();
          return failed;
        }
      }
      if (progress)
        self->send(progress, started_atom_v, spec.run_id, spec.ws.id,
                   spec.attempt, st.node, spec.key);
      spec.progress = caf::actor_cast<caf::strong_actor_ptr>(progress);
      if (factory != nullptr)
        st.exec = (*factory)(self->system());
      if (st.cancelled)
        self->send(st.exec, cancel_atom_v);
      auto rp = self->make_response_promise<workstream_result>();
      if (!st.exec) {
        // A noop that iterates: only its check runs.
        run_check(self, spec, noop_result(spec, st.node), *checker, rp);
        return rp;
      }
      auto started = std::chrono::steady_clock::now();
      auto timeout = request_timeout(spec);
      self->request(st.exec, timeout, run_atom_v, spec)
        .then(
          [=](workstream_result& r) mutable {
            r.node = self->state.node;
            r.persona = spec.ws.persona;
            if (checker != nullptr && r.status == ws_state::succeeded
                && !self->state.cancelled) {
              run_check(self, spec, std::move(r), *checker, rp);
              return;
            }
            finish(self, rp, std::move(r));
          },
          [=](caf::error& err) mutable {
            auto r = attempt_result(spec);
            r.node = self->state.node;
            r.wall_s = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - started)
                         .count();
            if (err == caf::sec::request_timeout) {
              r.status = ws_state::timed_out;
              r.summary = "executor did not answer in time";
              self->send(self->state.exec, cancel_atom_v);
            } else {
              r.status = ws_state::failed;
              r.summary = self->system().render(err);
            }
            r.output = r.summary;
            finish(self, rp, std::move(r));
          });
      return rp;
    },
    [=](cancel_atom, const std::string&, const std::string&) {
      auto& st = self->state;
      st.cancelled = true;
      if (st.exec)
        self->send(st.exec, cancel_atom_v);
    },
  };
}

struct pool_state {
  static inline const char* name = "troupe.agent_pool";
  pool_config cfg;
  /// Slots taken: dispatches accepted and not answered yet.
  int32_t in_use = 0;
  // Running agents by run id, workstream id and dispatch: a workstream may
  // briefly have two (a retry arriving before its predecessor's exit).
  using key = std::tuple<std::string, std::string, int32_t>;
  std::map<key, agent_actor> running;
  std::unordered_map<caf::actor_addr, key> by_addr;
  // Answers to `drain_atom`, due once nothing runs.
  std::vector<caf::typed_response_promise<bool>> drained;
};

using pool_ptr = pool_actor::stateful_pointer<pool_state>;

// A dispatch was answered: its slot is free, and a drain may be complete.
void slot_freed(pool_ptr self) {
  auto& st = self->state;
  st.in_use -= 1;
  if (st.in_use == 0) {
    for (auto& rp : st.drained)
      rp.deliver(true);
    st.drained.clear();
  }
}

pool_actor::behavior_type agent_pool(pool_ptr self, pool_config cfg) {
  self->state.cfg = std::move(cfg);
  self->set_down_handler([=](const caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.by_addr.find(dm.source);
    if (i == st.by_addr.end())
      return;
    st.running.erase(i->second);
    st.by_addr.erase(i);
  });
  return {
    [=](dispatch_atom, workstream_spec& spec, progress_actor& progress)
      -> caf::result<workstream_result> {
      auto& st = self->state;
      auto& personas = st.cfg.info.personas;
      auto& persona = spec.ws.persona;
      if (!st.cfg.workdir.empty())
        spec.workdir = st.cfg.workdir;
      auto custom = st.cfg.custom_agents.find(persona);
      // Work without a persona (a gate's check) is any node's.
      if (custom == st.cfg.custom_agents.end() && !personas.empty()
          && !persona.empty()
          && std::find(personas.begin(), personas.end(), persona)
               == personas.end())
        return caf::make_error(errc::unknown_persona, persona,
                               st.cfg.info.name);
      // A node never runs more than its slots, whatever asks it to.
      if (st.in_use >= st.cfg.info.slots)
        return caf::make_error(errc::no_capacity, st.cfg.info.name,
                               std::to_string(st.cfg.info.slots)
                                 + " slots taken");
      auto key = spec.key;
      // A noop has nothing to drive or cancel: the pool answers it at once.
      if (custom == st.cfg.custom_agents.end()
          && spec.ws.executor.kind == "noop" && !spec.ws.iterates()) {
        auto r = noop_result(spec, st.cfg.info.name);
        r.key = key;
        return r;
      }
      agent_actor a;
      if (custom != st.cfg.custom_agents.end()) {
        a = custom->second;
      } else {
        // An attempt in a worktree waits for git on a thread of its own.
        a = spawn_agent(self->system(), persona, st.cfg.info.name,
                        st.cfg.executors, spec.workspace.enabled(),
                        st.cfg.workspace_root);
        auto running_key
          = pool_state::key{spec.run_id, spec.ws.id, spec.dispatch};
        self->monitor(a);
        st.by_addr.emplace(a.address(), running_key);
        st.running[running_key] = a;
      }
      st.in_use += 1;
      // The pool answers itself (rather than letting the agent answer) so
      // that it knows when a slot is free, and so the answer carries the
      // dispatch's key whatever agent ran it.
      auto rp = self->make_response_promise<workstream_result>();
      // The agent's work, then its `until` check if it has one.
      auto limit = request_timeout(spec) + executor_grace
                   + std::chrono::milliseconds(
                     static_cast<int64_t>(until_timeout_s(spec.ws) * 1000));
      self->request(a, limit, dispatch_atom_v, std::move(spec),
                    std::move(progress))
        .then(
          [=](workstream_result& r) mutable {
            slot_freed(self);
            r.key = key;
            rp.deliver(std::move(r));
          },
          [=](caf::error& err) mutable {
            slot_freed(self);
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [=](cancel_atom, const std::string& run, const std::string& ws) {
      auto& st = self->state;
      for (auto& [persona, custom] : st.cfg.custom_agents)
        self->send(custom, cancel_atom_v, run, ws);
      for (auto i = st.running.lower_bound({run, ws, INT32_MIN});
           i != st.running.end() && std::get<0>(i->first) == run
           && std::get<1>(i->first) == ws;
           ++i)
        self->send(i->second, cancel_atom_v, run, ws);
    },
    [=](caf::get_atom) -> node_info {
      auto info = self->state.cfg.info;
      return info;
    },
    [=](drain_atom) -> caf::result<bool> {
      auto& st = self->state;
      if (st.in_use == 0)
        return true;
      auto rp = self->make_response_promise<bool>();
      st.drained.push_back(rp);
      return rp;
    },
    [=](shutdown_atom) {
      auto& st = self->state;
      if (!st.running.empty())
        log()->warn("coordinator shutting down: cancelling {} workstreams",
                    st.running.size());
      for (auto& [key, a] : st.running)
        self->send(a, cancel_atom_v, std::get<0>(key), std::get<1>(key));
    },
  };
}

} // namespace

agent_actor spawn_agent(caf::actor_system& sys, std::string persona,
                        std::string node,
                        std::shared_ptr<const executor_registry> executors,
                        bool own_thread, std::string workspaces) {
  if (own_thread)
    return sys.spawn<caf::detached>(agent, std::move(persona), std::move(node),
                                    std::move(executors),
                                    std::move(workspaces));
  return sys.spawn(agent, std::move(persona), std::move(node),
                   std::move(executors), std::move(workspaces));
}

pool_actor spawn_agent_pool(caf::actor_system& sys, pool_config cfg) {
  return sys.spawn(agent_pool, std::move(cfg));
}

} // namespace troupe
