#include "troupe/actors/gate.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe {

namespace {

constexpr size_t detail_limit = 4000;

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + utf8_tail(s, n);
}

check_result check_completion(const std::vector<workstream_result>& results) {
  check_result c{"completion", true, {}};
  std::string missing;
  for (auto& r : results) {
    if (r.status == ws_state::succeeded)
      continue;
    c.passed = false;
    if (!missing.empty())
      missing += ", ";
    missing += r.id + " " + to_string(r.status);
  }
  c.detail = c.passed ? std::to_string(results.size()) + " succeeded"
                      : missing;
  return c;
}

check_result check_conflicts(const std::vector<workstream_result>& results) {
  check_result c{"conflicts", true, {}};
  std::map<std::string, std::set<std::string>> writers;
  for (auto& r : results)
    for (auto& f : r.files_changed)
      writers[f].insert(r.id);
  for (auto& [file, ids] : writers) {
    if (ids.size() < 2)
      continue;
    c.passed = false;
    if (!c.detail.empty())
      c.detail += "; ";
    c.detail += file + " changed by";
    for (auto& id : ids)
      c.detail += " " + id;
  }
  if (c.passed)
    c.detail = std::to_string(writers.size()) + " files, no overlap";
  return c;
}

struct evaluation {
  std::string run_id;
  gate g;
  std::vector<workstream_result> results;
  std::string workdir;
  gate_result verdict;
  size_t next = 0;
  caf::typed_response_promise<gate_result> rp;
  /// The check running now, if it is a command.
  executor_actor current;
  bool cancelled = false;
};

struct gate_actor_state {
  static inline const char* name = "troupe.gate";
  std::shared_ptr<const executor_registry> executors;
  /// Rounds in progress, to cancel them with their run.
  std::vector<std::shared_ptr<evaluation>> active;
  /// Numbers the command checks, so their scratch space is their own.
  int32_t checks_run = 0;
};

void run_checks(gate_actor::stateful_pointer<gate_actor_state> self,
                std::shared_ptr<evaluation> ev) {
  while (ev->next < ev->g.checks.size() && !ev->cancelled) {
    auto& check = ev->g.checks[ev->next++];
    if (check.kind == "completion") {
      ev->verdict.checks.push_back(check_completion(ev->results));
      continue;
    }
    if (check.kind == "conflicts") {
      ev->verdict.checks.push_back(check_conflicts(ev->results));
      continue;
    }
    auto name = "run: " + check.run;
    auto* factory = self->state.executors
                      ? self->state.executors->find("command")
                      : nullptr;
    if (factory == nullptr) {
      ev->verdict.checks.push_back(
        {name, false, "this node has no command executor"});
      continue;
    }
    workstream_spec spec;
    spec.run_id = ev->run_id;
    spec.dispatch = ++self->state.checks_run;
    spec.ws.id = ev->g.id + ".check" + std::to_string(ev->next);
    spec.ws.title = name;
    spec.ws.executor.kind = "command";
    spec.ws.executor.run = check.run;
    spec.ws.executor.cwd = check.cwd;
    spec.timeout_s = check.timeout_s > 0 ? check.timeout_s
                                         : default_check_timeout_s;
    spec.workdir = ev->workdir;
    auto exec = (*factory)(self->system());
    ev->current = exec;
    auto limit = std::chrono::milliseconds(
                   static_cast<int64_t>(spec.timeout_s * 1000))
                 + std::chrono::seconds(30);
    self->request(exec, limit, run_atom_v, spec)
      .then(
        [=](const workstream_result& r) {
          std::string detail;
          if (r.status == ws_state::succeeded)
            detail = "exit 0";
          else if (r.status == ws_state::timed_out)
            detail = "timed out after " + std::to_string(spec.timeout_s)
                     + " s";
          else
            detail = "exit " + std::to_string(r.exit_code);
          if (!r.output.empty())
            detail += "\n" + tail(r.output, detail_limit);
          ev->verdict.checks.push_back(
            {name, r.status == ws_state::succeeded, detail});
          run_checks(self, ev);
        },
        [=](const caf::error& err) {
          ev->verdict.checks.push_back(
            {name, false, self->system().render(err)});
          run_checks(self, ev);
        });
    return;
  }
  ev->current = nullptr;
  ev->verdict.status = gate_state::passed;
  for (auto& c : ev->verdict.checks)
    if (!c.passed)
      ev->verdict.status = gate_state::failed;
  if (ev->cancelled) {
    ev->verdict.status = gate_state::cancelled;
    ev->verdict.checks.push_back({"cancelled", false, "the run was cancelled"});
  }
  ev->rp.deliver(ev->verdict);
  auto& active = self->state.active;
  active.erase(std::remove(active.begin(), active.end(), ev), active.end());
}

gate_actor::behavior_type gate_impl(gate_actor::stateful_pointer<gate_actor_state> self,
                                    std::shared_ptr<const executor_registry> ex) {
  self->state.executors = std::move(ex);
  return {
    [=](evaluate_atom, std::string& run_id, gate& g,
        std::vector<workstream_result>& results,
        std::string& workdir) -> caf::result<gate_result> {
      auto ev = std::make_shared<evaluation>();
      ev->run_id = std::move(run_id);
      ev->verdict.id = g.id;
      ev->g = std::move(g);
      ev->results = std::move(results);
      ev->workdir = std::move(workdir);
      ev->rp = self->make_response_promise<gate_result>();
      auto rp = ev->rp;
      self->state.active.push_back(ev);
      run_checks(self, ev);
      return rp;
    },
    [=](cancel_atom, const std::string& run_id) {
      for (auto& ev : self->state.active) {
        if (ev->run_id != run_id || ev->cancelled)
          continue;
        ev->cancelled = true;
        // The running check answers once killed, which ends the round.
        if (ev->current)
          self->send(ev->current, cancel_atom_v);
      }
    },
  };
}

} // namespace

gate_actor spawn_gate(caf::actor_system& sys,
                      std::shared_ptr<const executor_registry> executors) {
  return sys.spawn(gate_impl, std::move(executors));
}

} // namespace troupe
