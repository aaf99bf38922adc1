#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "troupe/actors/agents.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/message_types.hpp"
#include "support/custom_agent.hpp"
#include "troupe/runtime/executors.hpp"

using namespace troupe;

namespace {

/// CAF's deterministic scheduler: nothing runs until `sched.run()`.
struct actor_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys_ptr;
  caf::scheduler::test_coordinator* sched = nullptr;

  actor_fixture() {
    add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys_ptr = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(
      sys_ptr->scheduler());
  }

  caf::actor_system& sys() {
    return *sys_ptr;
  }
};

workstream_spec spec_with_persona(std::string persona) {
  workstream_spec spec;
  spec.run_id = "r1";
  spec.ws.id = "w1";
  spec.ws.persona = std::move(persona);
  spec.ws.executor.kind = "noop";
  spec.attempt = 1;
  return spec;
}

pool_config pool_for(std::vector<std::string> personas) {
  pool_config cfg;
  cfg.info.name = "n1";
  cfg.info.slots = 2;
  cfg.info.personas = std::move(personas);
  cfg.executors = executor_registry::with_builtins();
  return cfg;
}

} // namespace

TEST_CASE_METHOD(actor_fixture, "a pool refuses a persona it does not offer",
                 "[actors]") {
  auto pool = spawn_agent_pool(sys(), pool_for({"qa"}));
  caf::scoped_actor self{sys()};
  self->send(pool, dispatch_atom_v, spec_with_persona("backend"),
             progress_actor{});
  sched->run();
  self->receive([](const workstream_result&) { FAIL("expected an error"); },
                [&](const caf::error& err) {
                  CHECK(err == errc::unknown_persona);
                  CHECK(sys().render(err).find("backend")
                        != std::string::npos);
                });
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  sched->run();
}

TEST_CASE_METHOD(actor_fixture, "a pool runs a persona it offers on its node",
                 "[actors]") {
  auto pool = spawn_agent_pool(sys(), pool_for({"qa"}));
  caf::scoped_actor self{sys()};
  self->send(pool, dispatch_atom_v, spec_with_persona("qa"), progress_actor{});
  sched->run();
  self->receive(
    [](const workstream_result& r) {
      CHECK(r.status == ws_state::succeeded);
      CHECK(r.node == "n1");
      CHECK(r.id == "w1");
    },
    [&](const caf::error& err) { FAIL(sys().render(err)); });
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  sched->run();
}

TEST_CASE_METHOD(actor_fixture, "an agent refuses an executor it does not have",
                 "[actors]") {
  auto pool = spawn_agent_pool(sys(), pool_for({}));
  caf::scoped_actor self{sys()};
  auto spec = spec_with_persona("backend");
  spec.ws.executor.kind = "teleport";
  self->send(pool, dispatch_atom_v, spec, progress_actor{});
  sched->run();
  self->receive([](const workstream_result&) { FAIL("expected an error"); },
                [&](const caf::error& err) {
                  CHECK(err == errc::unknown_executor);
                });
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  sched->run();
}

TEST_CASE_METHOD(actor_fixture, "a custom agent takes its persona's work",
                 "[actors]") {
  auto custom = test::spawn_custom_agent(sys());
  auto cfg = pool_for({});
  cfg.custom_agents["reviewer"] = custom;
  auto pool = spawn_agent_pool(sys(), cfg);
  caf::scoped_actor self{sys()};
  self->send(pool, dispatch_atom_v, spec_with_persona("reviewer"),
             progress_actor{});
  sched->run();
  self->receive(
    [](const workstream_result& r) { CHECK(r.summary == "custom: reviewer"); },
    [&](const caf::error& err) { FAIL(sys().render(err)); });
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(custom, caf::exit_reason::user_shutdown);
  sched->run();
}

TEST_CASE("a gate's checks report incomplete work, conflicting files and "
          "how a command ended",
          "[actors]") {
  workstream_result a;
  a.id = "a";
  a.status = ws_state::succeeded;
  a.files_changed = {"x.cpp"};
  workstream_result b;
  b.id = "b";
  b.status = ws_state::failed;
  b.files_changed = {"x.cpp", "y.cpp"};
  auto completion = check_completion({a, b});
  CHECK_FALSE(completion.passed);
  CHECK(completion.detail == "b failed");
  auto conflicts = check_conflicts({a, b});
  CHECK_FALSE(conflicts.passed);
  CHECK(conflicts.detail == "x.cpp changed by a b");
  CHECK(check_completion({a}).passed);
  CHECK(check_conflicts({a}).detail == "1 files, no overlap");
  gate_check cmd{"command", "make test", "", 0};
  workstream_result ran;
  ran.status = ws_state::failed;
  ran.exit_code = 2;
  ran.node = "w1";
  ran.output = std::string(5000, 'x') + "\nlast words";
  auto verdict = check_command(cmd, ran);
  CHECK(verdict.name == "run: make test");
  CHECK_FALSE(verdict.passed);
  CHECK(verdict.detail.rfind("exit 2 (on node w1)\n...", 0) == 0);
  CHECK(verdict.detail.size() < 4100);
  CHECK(verdict.detail.find("last words") != std::string::npos);
  ran.status = ws_state::succeeded;
  ran.exit_code = 0;
  ran.output.clear();
  CHECK(check_command(cmd, ran).passed);
  CHECK(check_command(cmd, ran).detail == "exit 0 (on node w1)");
}

TEST_CASE_METHOD(actor_fixture, "the planner assesses a plan by phases",
                 "[actors]") {
  auto planner = spawn_planner(sys());
  plan p;
  p.name = "diamond";
  for (auto [id, deps] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
         {"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"b", "c"}}}) {
    workstream w;
    w.id = id;
    w.persona = "backend";
    w.depends_on = deps;
    w.estimate_s = 10;
    p.workstreams.push_back(w);
  }
  caf::scoped_actor self{sys()};
  self->send(planner, assess_atom_v, p);
  sched->run();
  self->receive(
    [](const plan_assessment& a) {
      REQUIRE(a.phases.size() == 3);
      CHECK(a.phases[1] == std::vector<std::string>{"b", "c"});
      CHECK(a.critical_path_s == Approx(30));
      CHECK(a.sequential_s == Approx(40));
    },
    [&](const caf::error& err) { FAIL(sys().render(err)); });
  caf::anon_send_exit(planner, caf::exit_reason::user_shutdown);
  sched->run();
}
