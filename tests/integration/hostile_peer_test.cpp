// Only authenticated peers have any effect: a CAF client that can reach the
// coordinator's port but has no token tries every message of its
// interface, and some outside it, while a member's run goes on.

#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/temp_dir.hpp"
#include "troupe/actors/agents.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/message_types.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;

// Everything an intruder without the token can say, through a typed handle
// and as untyped and anonymous messages. Returns what the coordinator
// answered to the requests, for the test to check.
std::vector<std::string> attack(caf::actor_system& sys, uint16_t port,
                                const std::string& run_id) {
  std::vector<std::string> answers;
  auto orch = sys.middleman().remote_actor<orchestrator_actor>("127.0.0.1",
                                                               port);
  REQUIRE(orch);
  auto raw = caf::actor_cast<caf::actor>(*orch);
  caf::scoped_actor self{sys};
  auto note = [&](const std::string& what) {
    return [&, what](const caf::error& err) {
      answers.push_back(what + ": " + sys.render(err));
    };
  };
  auto accepted = [&](const std::string& what) {
    answers.push_back(what + ": accepted");
  };
  constexpr auto limit = std::chrono::seconds(10);
  plan p;
  p.name = "intruder";
  workstream w;
  w.id = "evil";
  w.agent = agent_kind::explore;
  w.executor.kind = "command";
  w.executor.run = "touch pwned";
  p.workstreams = {w};
  run_options opts;
  opts.token = "guess";
  opts.cancel_key = "mine";
  opts.run_id = run_id; // take over the member's run id
  auto observer = caf::actor_cast<observer_actor>(self);
  self->request(*orch, limit, run_atom_v, p, opts, observer)
    .receive([&](const std::string&) { accepted("run"); }, note("run"));
  // A pool of the intruder's own, offered without the token.
  pool_config pcfg;
  pcfg.info.name = "rogue";
  pcfg.info.slots = 8;
  auto rogue = spawn_agent_pool(sys, pcfg);
  self->request(*orch, limit, join_atom_v, join_request{"guess", pcfg.info,
                                                         "k"},
                rogue)
    .receive([&](const std::string&) { accepted("join"); }, note("join"));
  self->request(*orch, limit, nodes_atom_v, std::string{})
    .receive([&](const std::vector<node_status>&) { accepted("nodes"); },
             note("nodes"));
  self->request(*orch, limit, drain_atom_v, rogue, std::string{})
    .receive([&](bool ok) { answers.push_back(ok ? "drain: ok" : "drain: no"); },
             note("drain"));
  self->request(*orch, limit, leave_atom_v, rogue, std::string{"k"})
    .receive([&](bool ok) { answers.push_back(ok ? "leave: ok" : "leave: no"); },
             note("leave"));
  self->request(*orch, limit, shutdown_atom_v, std::string{})
    .receive([&](bool) { accepted("shutdown"); }, note("shutdown"));
  // Following, looking at, resuming and aborting runs.
  self->request(*orch, limit, subscribe_atom_v, run_id, std::string{"guess"},
                observer)
    .receive([&](const std::string&) { accepted("subscribe"); },
             note("subscribe"));
  self->request(*orch, limit, unsubscribe_atom_v, run_id,
                std::string{"guess"}, observer)
    .receive([&](bool ok) {
      answers.push_back(ok ? "unsubscribe: ok" : "unsubscribe: no");
    }, note("unsubscribe"));
  self->request(*orch, limit, status_atom_v, std::string{"guess"})
    .receive([&](const std::vector<run_snapshot>&) { accepted("status"); },
             note("status"));
  self->request(*orch, limit, status_atom_v, run_id, std::string{})
    .receive([&](const run_snapshot&) { accepted("status of run"); },
             note("status of run"));
  self->request(*orch, limit, abort_atom_v, run_id, std::string{"guess"})
    .receive([&](const std::string&) { accepted("abort"); }, note("abort"));
  self->request(*orch, limit, resume_atom_v, run_id, opts, observer)
    .receive([&](const std::string&) { accepted("resume"); }, note("resume"));
  // Fire and forget, typed and anonymous.
  for (auto key : {std::string{}, std::string{"guess"}}) {
    self->send(*orch, cancel_atom_v, run_id, key);
    caf::anon_send(*orch, cancel_atom_v, run_id, key);
  }
  self->send(*orch, started_atom_v, run_id, std::string{"one"}, int32_t{1},
             std::string{"rogue"}, uint64_t{0});
  // Outside the typed interface: the old forms of the messages, internal
  // ones, nonsense, and system messages.
  self->send(raw, cancel_atom_v, run_id);
  self->send(raw, shutdown_atom_v);
  caf::anon_send(raw, shutdown_atom_v);
  self->send(raw, drain_atom_v, rogue);
  for (uint64_t k = 0; k < 100; ++k)
    self->send(raw, watchdog_atom::value, k);
  self->send(raw, std::string{"hello"}, 42);
  self->send(raw, caf::make_error(caf::sec::runtime_error));
  self->send(raw, caf::down_msg{rogue.address(), caf::exit_reason::kill});
  self->send(raw, caf::exit_msg{raw.address(), caf::exit_reason::kill});
  self->send_exit(raw, caf::exit_reason::user_shutdown);
  self->send_exit(raw, caf::exit_reason::kill);
  caf::anon_send_exit(raw, caf::exit_reason::kill);
  // Everything above was sent before this answer comes back.
  self->request(*orch, limit, nodes_atom_v, std::string{"guess"})
    .receive([&](const std::vector<node_status>&) { accepted("nodes again"); },
             note("nodes again"));
  caf::anon_send_exit(rogue, caf::exit_reason::user_shutdown);
  return answers;
}

} // namespace

TEST_CASE("a peer without the token changes nothing, whatever it sends",
          "[integration][cluster]") {
  temp_dir dir;
  auto token = dir.write("token", "s3cret\n");
  coordinator c{{"--slots", "0", "--token-file", token}};
  auto w = start_worker(c, "member", 2, {"--token-file", token});
  // Two steps, so the run is still going when the intruder strikes.
  auto plan = dir.write("plan.yaml", R"(name: member
workstreams:
  - {id: one, agent: explore, executor: {kind: sleep, seconds: 1}}
  - {id: two, agent: explore, depends_on: [one], executor: {kind: sleep, seconds: 1}}
)");
  background member{{TROUPE_BINARY, "submit", plan, "--coordinator",
                     c.address(), "--token-file", token, "--report",
                     dir.str() + "/report.json"}};
  std::string started;
  while (started.empty()) {
    auto l = member.line(true);
    REQUIRE_FALSE(l.empty());
    if (l.find("run ") != std::string::npos
        && l.find(" started") != std::string::npos)
      started = l;
  }
  auto from = started.find("run-");
  REQUIRE(from != std::string::npos);
  auto run_id = started.substr(from, started.find(' ', from) - from);
  // The run id is 64 random bits after the time.
  CHECK(run_id.size() == std::string{"run-20261125-084643-"}.size() + 16);
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto answers = attack(sys, c.port, run_id);
  for (auto& a : answers) {
    INFO(a);
    CHECK(a.find("accepted") == std::string::npos);
    CHECK(a.find(": ok") == std::string::npos);
  }
  CHECK(answers.size() == 13);
  // The member's run ends as if nothing happened.
  CHECK(member.wait() == 0);
  auto report = read_json(dir.str() + "/report.json");
  CHECK(report.at("status") == "succeeded");
  CHECK(report.at("run_id") == run_id);
  for (auto& ws : report.at("workstreams"))
    CHECK(ws.at("node") == "member");
  // The coordinator still serves its members, with the same node.
  auto nodes = run_troupe({"nodes", "--coordinator", c.address(), "--json",
                           "--token-file", token});
  REQUIRE(nodes.exit_code == 0);
  auto listed = json::parse(nodes.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed.at(0).at("name") == "member");
  CHECK(listed.at(0).at("state") == "joined");
  auto again = run_troupe({"submit", plan, "--coordinator", c.address(),
                           "--token-file", token},
                          dir.str());
  CHECK(again.exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "pwned"));
  // Each refusal was logged, once per peer.
  c.proc->signal(SIGTERM);
  auto ended = c.proc->wait();
  auto log = c.proc->err_text();
  INFO(log);
  // A sanitizer's report at exit is in the log.
  CHECK(ended == 0);
  CHECK(log.find("refused a run with a wrong token") != std::string::npos);
  CHECK(log.find("refused a system message") != std::string::npos);
  CHECK(log.find("refused a shutdown without the owner's key")
        != std::string::npos);
  for (auto what : {"a subscription", "an unsubscription", "a status query",
                    "an abort", "a resume"})
    CHECK(log.find(std::string{"refused "} + what + " with a wrong token")
          != std::string::npos);
  size_t n = 0;
  for (auto at = log.find("refused a cancel without"); at != std::string::npos;
       at = log.find("refused a cancel without", at + 1))
    ++n;
  CHECK(n <= 2); // the intruder's node, and anonymous
}

TEST_CASE("a coordinator refuses to listen off loopback without TLS",
          "[integration][cluster]") {
  auto r = run_troupe({"coordinator", "--listen", "0.0.0.0:0"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("not a loopback address") != std::string::npos);
  CHECK(r.err.find("--insecure-plaintext") != std::string::npos);
  auto w = run_troupe({"worker", "--join", "192.0.2.1:7400"});
  CHECK(w.exit_code == 2);
  CHECK(w.err.find("--tls-cert") != std::string::npos);
  auto s = run_troupe({"nodes", "--coordinator", "192.0.2.1:7400"});
  CHECK(s.exit_code == 2);
}
