// Troupe inside your own CAF application.
//
// The program has its own actor_system and its own actors: a `reviewer`
// agent written here in C++ and a `tally` actor that the reviewer reports
// to. It registers Troupe's message types, spawns Troupe's orchestrator and
// an agent pool that hands every `reviewer` workstream to the custom agent,
// runs a plan built in code, and prints the report.

#include <iostream>
#include <map>

#include "caf/all.hpp"

#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/runtime/executors.hpp"

using namespace troupe;

using count_atom = caf::atom_constant<caf::atom("count")>;
constexpr count_atom count_atom_v{};

// One of the application's own actors: counts what the reviewer reviewed.
caf::behavior tally(caf::stateful_actor<std::map<std::string, int>>* self) {
  return {
    [=](count_atom, const std::string& what) { ++self->state[what]; },
    [=](caf::get_atom) { return static_cast<int32_t>(self->state.size()); },
  };
}

// A custom agent for the `reviewer` persona: it answers every workstream
// itself, reading the results its dependencies handed over.
agent_actor::behavior_type reviewer(agent_actor::pointer self,
                                    caf::actor counter) {
  return {
    [=](dispatch_atom, const workstream_spec& spec,
        const progress_actor& progress) -> workstream_result {
      if (progress)
        self->send(progress, started_atom_v, spec.run_id, spec.ws.id,
                   spec.attempt, std::string{"embedded"}, spec.key);
      caf::anon_send(counter, count_atom_v, spec.ws.id);
      workstream_result r;
      r.id = spec.ws.id;
      r.status = ws_state::succeeded;
      r.attempts = spec.attempt;
      r.exit_code = 0;
      r.node = "embedded";
      r.summary = "reviewed by C++ agent: " + spec.ws.prompt;
      r.outputs["verdict"] = "approve";
      return r;
    },
    [=](cancel_atom, const std::string&, const std::string&) {
      // nop: a review is instant
    },
  };
}

// Receives events and the final report, then hands the report to main.
observer_actor::behavior_type printer(observer_actor::pointer self,
                                      caf::actor main_inbox) {
  return {
    [](const run_snapshot&) {
      // Only observers that subscribe to a run in progress get one.
    },
    [=](const std::vector<event>& batch) {
      for (auto& ev : batch)
        if (ev.kind == event_kind::ws_ended
            && ev.result.status == ws_state::succeeded)
          caf::aout(self) << "  done: " << ev.subject << "\n";
    },
    [=](const run_report& r) {
      caf::anon_send(main_inbox, r);
      self->quit();
    },
  };
}

plan make_plan() {
  plan p;
  p.name = "embedded-review";
  p.goal = "Write a greeting, then have the C++ reviewer approve it";
  p.settings.max_parallel_agents = 2;
  workstream write;
  write.id = "write";
  write.title = "Write the greeting";
  write.persona = "backend";
  write.agent = agent_kind::explore;
  write.executor.kind = "command";
  write.executor.run = "echo hello from a shell workstream";
  workstream review;
  review.id = "review";
  review.title = "Review the greeting";
  review.persona = "reviewer";
  review.agent = agent_kind::explore;
  review.prompt = "check the greeting";
  review.depends_on = {"write"};
  p.workstreams = {write, review};
  return p;
}

int main() {
  caf::actor_system_config cfg;
  troupe::add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto counter = sys.spawn(tally);
  auto executors = executor_registry::with_builtins();
  auto orch = spawn_orchestrator(sys, {});
  pool_config pcfg;
  pcfg.info.name = "embedded";
  pcfg.info.slots = 2;
  pcfg.executors = executors;
  pcfg.custom_agents["reviewer"] = sys.spawn(reviewer, counter);
  auto pool = spawn_agent_pool(sys, pcfg);
  caf::scoped_actor self{sys};
  auto observer = sys.spawn(printer, caf::actor{self});
  int rc = 1;
  self->request(orch, std::chrono::seconds(10), join_atom_v,
                join_request{{}, pcfg.info}, pool)
    .receive([](const std::string&) {},
             [&](caf::error& err) { std::cerr << sys.render(err) << "\n"; });
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, make_plan(),
              run_options{}, observer)
    .receive([&](const std::string& id) { std::cout << "run " << id << "\n"; },
             [&](caf::error& err) { std::cerr << sys.render(err) << "\n"; });
  self->receive(
    [&](const run_report& r) {
      std::cout << r.markdown;
      rc = r.status == run_status::succeeded ? 0 : 1;
    },
    caf::after(std::chrono::seconds(60)) >>
      [&] { std::cerr << "no report within 60 s\n"; });
  self->request(counter, std::chrono::seconds(5), caf::get_atom_v)
    .receive(
      [&](int32_t n) { std::cout << "reviewer reviewed " << n << " item(s)\n"; },
      [&](caf::error&) {});
  // The orchestrator obeys exit messages only from local actors.
  stop_orchestrator(sys, orch);
  for (auto& a : {caf::actor_cast<caf::actor>(pool), counter,
                  caf::actor_cast<caf::actor>(pcfg.custom_agents["reviewer"])})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return rc;
}
