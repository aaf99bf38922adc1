// The orchestrator makes every kind of event a run can have, in one
// stream that the journal holds exactly as observers saw it.

#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/run_fixture.hpp"
#include "support/temp_dir.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/journal.hpp"

using namespace troupe;

namespace {

// A pool of `slots` slots serving `personas`, joined with key `key`.
pool_actor join_pool(caf::scoped_actor& self, const orchestrator_actor& orch,
                     const std::string& name,
                     std::vector<std::string> personas,
                     const std::string& key) {
  pool_config pcfg;
  pcfg.info.name = name;
  pcfg.info.slots = 4;
  pcfg.info.personas = std::move(personas);
  pcfg.executors = executor_registry::with_builtins();
  for (auto& k : pcfg.executors->kinds())
    pcfg.info.executors.push_back(k);
  auto pool = spawn_agent_pool(self->home_system(), pcfg);
  self
    ->request(orch, std::chrono::seconds(10), join_atom_v,
              join_request{{}, pcfg.info, key, {}}, pool)
    .receive([](const std::string&) {},
             [&](caf::error& err) { FAIL(self->home_system().render(err)); });
  return pool;
}

} // namespace

TEST_CASE("a run makes every kind of event, and the journal holds them as "
          "observers saw them",
          "[actors]") {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  orchestrator_config ocfg;
  auto journal_path = dir.str() + "/troupe.db";
  ocfg.journal = journal::open(journal_path);
  auto orch = spawn_orchestrator(sys, ocfg);
  caf::scoped_actor self{sys};
  auto backend = join_pool(self, orch, "backend", {"backend"}, "k1");
  // flaky fails once; lonely waits for a node serving qa; gate g1 fails
  // until its fixer ran, gate g2 fails for good and blocks what it guards.
  auto flaky = test::command_ws("flaky",
                                "test \"$TROUPE_ATTEMPT\" -gt 1");
  flaky.retries = 1;
  auto lonely = test::command_ws("lonely", "true");
  lonely.persona = "qa";
  auto after = test::command_ws("after", "true", {"lonely"});
  plan p;
  p.name = "every-event";
  p.workstreams = {flaky, lonely, after};
  gate g1;
  g1.id = "g1";
  g1.after = {"flaky"};
  g1.checks = {{"command", "test -e " + dir.str() + "/fixed"}};
  g1.remediate.max_attempts = 1;
  g1.remediate.persona = "backend";
  g1.remediate.executor.kind = "command";
  g1.remediate.executor.run = "touch " + dir.str() + "/fixed";
  gate g2;
  g2.id = "g2";
  g2.after = {"lonely"};
  g2.checks = {{"command", "false"}};
  p.gates = {g1, g2};
  run_options opts;
  opts.workdir = dir.str();
  std::string id;
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, p, opts,
              caf::actor_cast<observer_actor>(self))
    .receive([&](std::string& x) { id = x; },
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::run_record first;
  auto kinds = [](const test::run_record& rec) {
    std::string out;
    for (auto& ev : rec.events)
      out += to_string(ev.kind) + " " + ev.subject + "; ";
    return out;
  };
  INFO(kinds(first));
  REQUIRE(test::collect_until(self, first, [&] {
    return test::count(first, event_kind::ws_waiting) > 0
           && test::count(first, event_kind::gate_passed) > 0;
  }));
  auto qa = join_pool(self, orch, "qa", {"qa"}, "k2");
  REQUIRE(test::collect_until(self, first, [&] {
    return test::count(first, event_kind::gate_failed) > 0;
  }));
  test::collect_to_end(self, first);
  REQUIRE(first.finished);
  REQUIRE(first.report.run_id == id);
  CHECK(first.report.status == run_status::blocked);

  // A second run loses the only node that serves its persona mid-run, and
  // is cancelled.
  auto ops = join_pool(self, orch, "ops", {"ops"}, "k3");
  auto slow = test::sleep_ws("slow", 30);
  slow.persona = "ops";
  plan p2;
  p2.name = "lost-and-cancelled";
  p2.workstreams = {slow};
  opts.cancel_key = "cancel-key";
  std::string id2;
  self
    ->request(orch, std::chrono::seconds(10), run_atom_v, p2, opts,
              caf::actor_cast<observer_actor>(self))
    .receive([&](std::string& x) { id2 = x; },
             [&](caf::error& err) { FAIL(sys.render(err)); });
  test::run_record second;
  REQUIRE(test::collect_until(self, second, [&] {
    return test::count(second, event_kind::ws_running) > 0;
  }));
  // Nodes come and go while it runs: qa drains and leaves, ops is lost.
  bool ok = false;
  self->request(orch, std::chrono::seconds(10), drain_atom_v, qa,
                std::string{"k2"})
    .receive([&](bool x) { ok = x; }, [](caf::error&) {});
  CHECK(ok);
  self->request(orch, std::chrono::seconds(10), leave_atom_v, qa,
                std::string{"k2"})
    .receive([&](bool x) { ok = x; }, [](caf::error&) {});
  CHECK(ok);
  caf::anon_send_exit(ops, caf::exit_reason::kill);
  REQUIRE(test::collect_until(self, second, [&] {
    return test::count(second, event_kind::ws_requeued) > 0;
  }));
  self->send(orch, cancel_atom_v, id2, std::string{"cancel-key"});
  test::collect_to_end(self, second);
  CHECK(second.report.status == run_status::cancelled);

  std::set<event_kind> seen;
  for (auto* rec : {&first, &second})
    for (auto& ev : rec->events)
      seen.insert(ev.kind);
  // Resuming (run_resumed), failing inside (run_failing) and an agent's
  // progress (ws_progress, from the Claude Code CLI) have tests of their
  // own.
  for (uint8_t k = 0; k <= static_cast<uint8_t>(event_kind::node_lost); ++k) {
    auto kind = static_cast<event_kind>(k);
    if (kind == event_kind::run_resumed || kind == event_kind::run_failing
        || kind == event_kind::ws_progress)
      continue;
    INFO(to_string(kind));
    CHECK(seen.count(kind) == 1);
  }
  stop_orchestrator(sys, orch);
  for (auto pool : {backend, qa})
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  self->wait_for(orch);
  // Each run's events are in the journal, in order, as observers saw them.
  auto j = journal::open_read_only(journal_path);
  for (auto* rec : {&first, &second}) {
    auto journaled = j->events(rec->report.run_id);
    REQUIRE(journaled.size() == rec->events.size());
    for (size_t i = 0; i < journaled.size(); ++i) {
      CHECK(journaled[i].seq == i + 1);
      CHECK(json_text(journaled[i]) == json_text(rec->events[i]));
    }
  }
}
