#include "sink.hpp"

#include <chrono>
#include <iostream>

#include <caf/all.hpp>

#include "troupe/actors/agents.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe::bench {

observer_actor::behavior_type sink(observer_actor::pointer self,
                                   caf::actor inbox) {
  return {
    [](const run_snapshot&) {
      // nop
    },
    [](const std::vector<event>&) {
      // nop
    },
    [=](const run_report& r) {
      caf::anon_send(inbox, r.status == run_status::succeeded);
      self->quit();
    },
  };
}

timed_run run_plan(caf::actor_system& sys, const plan& p, int32_t slots,
                   orchestrator_config ocfg) {
  auto executors = executor_registry::with_builtins();
  auto orch = spawn_orchestrator(sys, std::move(ocfg));
  pool_config pcfg;
  pcfg.info.name = "bench";
  pcfg.info.slots = slots;
  pcfg.executors = executors;
  for (auto& k : executors->kinds())
    pcfg.info.executors.push_back(k);
  auto pool = spawn_agent_pool(sys, pcfg);
  caf::scoped_actor self{sys};
  self
    ->request(orch, std::chrono::seconds(10), join_atom_v,
              join_request{{}, pcfg.info}, pool)
    .receive([](const std::string&) {}, [](caf::error&) {});
  auto observer = sys.spawn(sink, caf::actor{self});
  timed_run r;
  auto start = std::chrono::steady_clock::now();
  self
    ->request(orch, std::chrono::minutes(5), run_atom_v, p, run_options{},
              observer)
    .receive([](const std::string&) {},
             [&](caf::error& err) {
               std::cerr << "run refused: " << sys.render(err) << "\n";
             });
  self->receive([&](bool succeeded) { r.succeeded = succeeded; },
                caf::after(std::chrono::minutes(5)) >> [] {});
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                           - start)
               .count();
  if (!r.succeeded)
    std::cerr << p.name << ": run did not succeed\n";
  stop_orchestrator(sys, orch);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  // Gone before the next measurement starts: its journal is closed and
  // takes no more time of its own.
  self->wait_for(orch);
  return r;
}

} // namespace troupe::bench
