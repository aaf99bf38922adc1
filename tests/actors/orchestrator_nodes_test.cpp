// The orchestrator and its nodes: answers from nodes declared lost, nodes
// that rejoin, nodes that never answer, and work that only some nodes can
// take.

#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include <caf/all.hpp>

#include "support/custom_agent.hpp"
#include "support/reaper.hpp"
#include "support/run_fixture.hpp"
#include "support/temp_dir.hpp"
#include "troupe/protocol/errors.hpp"

using namespace troupe;
using troupe::test::command_ws;
using troupe::test::make_plan;
using troupe::test::sleep_ws;

namespace {

using answer_atom = caf::atom_constant<caf::atom("answer")>;
constexpr answer_atom answer_atom_v{};

// Holds the first dispatch it gets and answers it only when told to: the
// work of a node that is declared lost while its answer is still on the way.
caf::behavior late_answerer(caf::event_based_actor* self) {
  auto pending = std::make_shared<caf::response_promise>();
  return {
    [=](dispatch_atom, const workstream_spec&, const progress_actor&) {
      *pending = self->make_response_promise();
      return caf::delegated<workstream_result>{};
    },
    [=](answer_atom, const workstream_result& r) { pending->deliver(r); },
  };
}

// A pool that hands everything to `holder` and answers with what it says.
pool_actor::behavior_type forwarding_pool(pool_actor::pointer self,
                                          caf::actor holder) {
  return {
    [=](dispatch_atom, workstream_spec& spec, progress_actor& progress)
      -> caf::result<workstream_result> {
      auto rp = self->make_response_promise<workstream_result>();
      auto key = spec.key;
      self->request(holder, caf::infinite, dispatch_atom_v, std::move(spec),
                    std::move(progress))
        .then([=](workstream_result& r) mutable {
          r.key = key;
          rp.deliver(std::move(r));
        });
      return rp;
    },
    [](cancel_atom, const std::string&, const std::string&) {},
    [](caf::get_atom) { return node_info{}; },
    [](drain_atom) { return true; },
    [](shutdown_atom) {},
  };
}

// Lends `pool` (offering `info`) to `orch`; the test fails if refused.
void join(caf::scoped_actor& self, const orchestrator_actor& orch,
          const node_info& info, const pool_actor& pool) {
  self
    ->request(orch, std::chrono::seconds(10), join_atom_v,
              join_request{{}, info}, pool)
    .receive([](const std::string&) {},
             [&](caf::error& err) {
               FAIL(self->home_system().render(err));
             });
}

// Spawns a pool named `name` with one slot and lends it to `orch`.
pool_actor join_healthy(caf::scoped_actor& self,
                        const orchestrator_actor& orch,
                        std::shared_ptr<const executor_registry> executors,
                        const std::string& name = "healthy") {
  pool_config pcfg;
  pcfg.info.name = name;
  pcfg.info.slots = 1;
  pcfg.executors = std::move(executors);
  auto pool = spawn_agent_pool(self->home_system(), pcfg);
  join(self, orch, pcfg.info, pool);
  return pool;
}

} // namespace

TEST_CASE("a result from a node declared lost is not accepted", "[actors]") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto executors = executor_registry::with_builtins();
  auto orch = spawn_orchestrator(sys, {});
  auto holder = sys.spawn(late_answerer);
  auto doomed = sys.spawn(forwarding_pool, holder);
  caf::scoped_actor self{sys};
  node_info doomed_info;
  doomed_info.name = "doomed";
  doomed_info.slots = 1;
  join(self, orch, doomed_info, doomed);
  plan p;
  p.name = "late";
  p.workstreams = {sleep_ws("only", 0.05)};
  std::string id;
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, p, run_options{},
              caf::actor_cast<observer_actor>(self))
    .receive([&](std::string& run_id) { id = run_id; },
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::run_record rec;
  auto until = [&](event_kind kind) {
    test::collect_until(self, rec, [&] { return test::count(rec, kind) > 0; });
  };
  until(event_kind::ws_dispatched);
  // The node goes away with the workstream on it...
  caf::anon_send_exit(doomed, caf::exit_reason::kill);
  until(event_kind::node_lost);
  // ...and its answer arrives afterwards: a failure that must not count.
  workstream_result late;
  late.id = "only";
  late.status = ws_state::failed;
  late.summary = "late answer from a lost node";
  caf::anon_send(holder, answer_atom_v, late);
  // A healthy node joins and runs the workstream again.
  auto healthy = join_healthy(self, orch, executors);
  test::collect_to_end(self, rec, std::chrono::seconds(30));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  REQUIRE(rec.ws("only") != nullptr);
  CHECK(rec.ws("only")->node == "healthy");
  CHECK(rec.ws("only")->attempts == 1);
  CHECK(rec.ws("only")->summary != "late answer from a lost node");
  int ended = 0;
  for (auto& ev : rec.events)
    ended += ev.subject == "only"
                 && (ev.state == "succeeded" || ev.state == "failed")
               ? 1
               : 0;
  CHECK(ended == 1);
  stop_orchestrator(sys, orch);
  for (auto a : {caf::actor_cast<caf::actor>(healthy), holder})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

namespace {

// Holds every dispatch it gets and answers the i-th one (counting from 0)
// when told to, or as soon as it comes should the answer come first.
caf::behavior holding_answerer(caf::event_based_actor* self) {
  struct held {
    std::vector<caf::response_promise> dispatches;
    std::map<size_t, workstream_result> answers;
  };
  auto st = std::make_shared<held>();
  return {
    [=](dispatch_atom, const workstream_spec&, const progress_actor&) {
      st->dispatches.push_back(self->make_response_promise());
      auto i = st->answers.find(st->dispatches.size() - 1);
      if (i != st->answers.end())
        st->dispatches.back().deliver(i->second);
      return caf::delegated<workstream_result>{};
    },
    [=](answer_atom, int32_t i, const workstream_result& r) {
      auto at = static_cast<size_t>(i);
      if (at < st->dispatches.size())
        st->dispatches[at].deliver(r);
      else
        st->answers.emplace(at, r);
    },
  };
}

} // namespace

TEST_CASE("a node that rejoins with the key of the membership it lost has "
          "its work rerun, and what it answers from before is ignored",
          "[actors]") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto orch = spawn_orchestrator(sys, {});
  auto holder = sys.spawn(holding_answerer);
  auto pool = sys.spawn(forwarding_pool, holder);
  caf::scoped_actor self{sys};
  // However the test ends, stop what it started: the actor system waits for
  // every actor before it goes.
  struct stop_all {
    std::function<void()> f;
    ~stop_all() {
      f();
    }
  } stop{[&] {
    stop_orchestrator(sys, orch);
    for (auto a : {caf::actor_cast<caf::actor>(pool), holder})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }};
  node_info info;
  info.name = "w1";
  info.slots = 1;
  auto join_as = [&](const std::string& key, const std::string& previous) {
    self
      ->request(orch, std::chrono::seconds(10), join_atom_v,
                join_request{{}, info, key, previous}, pool)
      .receive([](const std::string&) {},
               [&](caf::error& err) { FAIL(sys.render(err)); });
  };
  join_as("k0", "");
  plan p;
  p.name = "rejoin";
  p.workstreams = {sleep_ws("only", 0.05)};
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, p, run_options{},
              caf::actor_cast<observer_actor>(self))
    .receive([](const std::string&) {},
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::run_record rec;
  auto dispatched = [&](int times) {
    REQUIRE(test::collect_until(self, rec, [&] {
      return test::count(rec, event_kind::ws_dispatched) >= times;
    }));
  };
  dispatched(1);
  // Another key, or a wrong lost one, changes nothing: the pool is in.
  join_as("k2", "");
  join_as("k2", "guess");
  // The node lost the coordinator, stopped its work, and comes back
  // before the coordinator noticed.
  join_as("k1", "k0");
  dispatched(2);
  workstream_result stale;
  stale.id = "only";
  stale.status = ws_state::failed;
  stale.summary = "answer from the lost membership";
  caf::anon_send(holder, answer_atom_v, int32_t{0}, stale);
  workstream_result fresh;
  fresh.id = "only";
  fresh.status = ws_state::succeeded;
  fresh.summary = "rerun";
  caf::anon_send(holder, answer_atom_v, int32_t{1}, fresh);
  test::collect_to_end(self, rec, std::chrono::seconds(30));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  REQUIRE(rec.ws("only") != nullptr);
  CHECK(rec.ws("only")->summary == "rerun");
  CHECK(rec.ws("only")->attempts == 1);
  int lost = 0;
  int ended = 0;
  for (auto& ev : rec.events) {
    if (ev.kind == event_kind::node_lost) {
      ++lost;
      CHECK(ev.message == "it rejoined after losing the coordinator");
    }
    ended += ev.subject == "only"
                 && (ev.state == "succeeded" || ev.state == "failed")
               ? 1
               : 0;
  }
  CHECK(lost == 1);
  CHECK(ended == 1);
  std::vector<std::string> states;
  self->request(orch, std::chrono::seconds(10), nodes_atom_v, std::string{})
    .receive(
      [&](const std::vector<node_status>& nodes) {
        for (auto& n : nodes)
          states.push_back(n.info.name + " " + n.state);
      },
      [&](caf::error& err) { FAIL(sys.render(err)); });
  CHECK(states == std::vector<std::string>{"w1 lost", "w1 joined"});
}

TEST_CASE("a node that never answers times the attempt out, keeps its slot, "
          "and is declared lost",
          "[actors]") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  orchestrator_config ocfg;
  ocfg.dispatch_grace = std::chrono::milliseconds(100);
  auto orch = spawn_orchestrator(sys, ocfg);
  // Holds every dispatch and never answers.
  auto silent = sys.spawn([](pool_actor::pointer) -> pool_actor::behavior_type {
    return {
      [](dispatch_atom, const workstream_spec&, const progress_actor&)
        -> caf::result<workstream_result> {
        return caf::delegated<workstream_result>{};
      },
      [](cancel_atom, const std::string&, const std::string&) {},
      [](caf::get_atom) { return node_info{}; },
      [](drain_atom) { return true; },
      [](shutdown_atom) {},
    };
  });
  node_info info;
  info.name = "silent";
  info.slots = 1;
  caf::scoped_actor self{sys};
  join(self, orch, info, silent);
  plan p;
  p.name = "silence";
  auto w = sleep_ws("mute", 0.01);
  w.timeout_s = 0.2;
  w.retries = 1;
  p.workstreams = {w};
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, p, run_options{},
              caf::actor_cast<observer_actor>(self))
    .receive([](const std::string&) {},
             [&](caf::error& err) { FAIL(sys.render(err)); });
  // The attempt times out, but the silent node may still be running it:
  // its only slot stays taken, so the retry waits, until the node lets the
  // cancelled dispatch pass unanswered too and is declared lost.
  std::vector<event> seen;
  bool lost = false;
  self->receive_while([&] { return !lost; })(
    [&](std::vector<event>& batch) {
      for (auto& ev : batch) {
        lost = lost || ev.kind == event_kind::node_lost;
        seen.push_back(ev);
      }
    },
    caf::after(std::chrono::seconds(30)) >> [&] { lost = true; });
  auto at = [&](const std::string& subject, const std::string& state) {
    for (size_t i = 0; i < seen.size(); ++i)
      if (seen[i].subject == subject && seen[i].state == state)
        return static_cast<long>(i);
    return -1L;
  };
  REQUIRE(at("silent", "lost") >= 0);
  REQUIRE(at("mute", "retrying") >= 0);
  CHECK(at("mute", "retrying") < at("silent", "lost"));
  CHECK(seen[at("mute", "retrying")].message.find(
          "no answer from node silent")
        != std::string::npos);
  int dispatched = 0;
  for (auto& ev : seen)
    dispatched += ev.subject == "mute" && ev.state == "dispatched" ? 1 : 0;
  CHECK(dispatched == 1);
  // A healthy node takes the retry.
  auto healthy = join_healthy(self, orch, executor_registry::with_builtins());
  test::run_record rec;
  test::collect_to_end(self, rec, std::chrono::seconds(30));
  auto& report = rec.report;
  REQUIRE(report.workstreams.size() == 1);
  CHECK(report.status == run_status::succeeded);
  CHECK(report.workstreams[0].node == "healthy");
  CHECK(report.workstreams[0].attempts == 2);
  stop_orchestrator(sys, orch);
  for (auto a : {caf::actor_cast<caf::actor>(silent),
                 caf::actor_cast<caf::actor>(healthy)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("work one node can take is never held up by work only a busy "
          "node can take",
          "[actors]") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto executors = executor_registry::with_builtins();
  orchestrator_config ocfg;
  auto orch = spawn_orchestrator(sys, ocfg);
  caf::scoped_actor self{sys};
  auto lend = [&](const std::string& name, int32_t slots,
                  std::vector<std::string> personas) {
    pool_config pcfg;
    pcfg.info.name = name;
    pcfg.info.slots = slots;
    pcfg.info.personas = std::move(personas);
    pcfg.executors = executors;
    auto pool = spawn_agent_pool(sys, pcfg);
    join(self, orch, pcfg.info, pool);
    return pool;
  };
  auto qa = lend("qa-node", 1, {"qa"});
  auto be = lend("backend-node", 2, {"backend"});
  // The qa work comes first in the plan and is ready first; only one of it
  // fits at a time. The first qa workstream finishes only once both backend
  // workstreams have run, so backend work held up behind it times qa1 out.
  test::temp_dir dir;
  auto marker = [&](const std::string& id) {
    return (dir.path() / id).string();
  };
  std::vector<workstream> ws;
  for (auto i : {1, 2, 3}) {
    auto id = "qa" + std::to_string(i);
    auto w = i == 1 ? command_ws(id, "until [ -e '" + marker("be1") +
                                         "' ] && [ -e '" + marker("be2") +
                                         "' ]; do sleep 0.01; done")
                    : sleep_ws(id, 0.01);
    w.persona = "qa";
    w.timeout_s = 20;
    w.retries = 0;
    ws.push_back(w);
  }
  for (auto i : {1, 2}) {
    auto id = "be" + std::to_string(i);
    auto w = command_ws(id, "touch '" + marker(id) + "'");
    ws.push_back(w);
  }
  test::run_record rec;
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, make_plan(ws, 8),
              run_options{}, caf::actor_cast<observer_actor>(self))
    .receive([](const std::string&) {},
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::collect_to_end(self, rec, std::chrono::seconds(60));
  REQUIRE(rec.finished);
  CHECK(rec.report.status == run_status::succeeded);
  CHECK(rec.ws("qa1")->status == ws_state::succeeded);
  CHECK(rec.ws("qa1")->attempts == 1);
  CHECK(rec.ws("be1")->node == "backend-node");
  CHECK(rec.ws("qa3")->node == "qa-node");
  stop_orchestrator(sys, orch);
  for (auto a : {qa, be})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("work that repeats until a check passes goes to a node that can "
          "run the check, and an agent that runs none fails the attempt",
          "[actors][until]") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto executors = executor_registry::with_builtins();
  auto orch = spawn_orchestrator(sys, {});
  caf::scoped_actor self{sys};
  // An agent of the embedding program's own: it does the work, and knows
  // nothing of checks.
  auto custom = test::spawn_custom_agent(sys);
  auto lend = [&](const std::string& name, std::vector<std::string> kinds) {
    pool_config pcfg;
    pcfg.info.name = name;
    pcfg.info.slots = 4;
    auto own = std::make_shared<executor_registry>();
    for (auto& kind : kinds)
      own->add(kind, *executors->find(kind));
    pcfg.info.executors = std::move(kinds);
    pcfg.executors = own;
    pcfg.custom_agents["reviewer"] = custom;
    auto pool = spawn_agent_pool(sys, pcfg);
    join(self, orch, pcfg.info, pool);
    return pool;
  };
  // Listed first, and so picked first where it fits: it runs no commands.
  auto sleeper = lend("sleeper", {"sleep"});
  auto full = lend("full", {"sleep", "command"});
  auto loop = sleep_ws("loop", 0.01);
  loop.until.run = "true";
  auto review = sleep_ws("review", 0.01);
  review.persona = "reviewer";
  review.until.run = "true";
  auto rec_plan = make_plan({loop, review});
  test::run_record rec;
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, rec_plan,
              run_options{}, caf::actor_cast<observer_actor>(self))
    .receive([](const std::string&) {},
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::collect_to_end(self, rec, std::chrono::seconds(60));
  REQUIRE(rec.finished);
  CHECK(rec.ws("loop")->status == ws_state::succeeded);
  CHECK(rec.ws("loop")->node == "full");
  REQUIRE(rec.ws("loop")->iterations.size() == 1);
  CHECK(rec.ws("loop")->iterations[0].passed);
  CHECK(rec.ws("review")->status == ws_state::failed);
  CHECK(rec.ws("review")->summary.find("its until check did not run on node")
        == 0);
  CHECK(rec.ws("review")->iterations.empty());
  stop_orchestrator(sys, orch);
  for (auto a :
       {caf::actor_cast<caf::actor>(sleeper), caf::actor_cast<caf::actor>(full),
        caf::actor_cast<caf::actor>(custom)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}
