#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "support/background.hpp"
#include "support/certs.hpp"
#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/reaper.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

TEST_CASE("three workers run a 200-workstream plan, each workstream once",
          "[integration][cluster]") {
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1");
  auto w2 = start_worker(c, "w2");
  auto w3 = start_worker(c, "w3");
  std::string plan = "name: big\nsettings: {max_parallel_agents: 6, "
                     "max_phase_width: 200}\nworkstreams:\n";
  std::string fan;
  for (int i = 0; i < 150; ++i) {
    plan += "  - {id: f" + std::to_string(i)
            + ", agent: explore, executor: {kind: command, run: \"true\"}}\n";
    fan += (i ? ", f" : "f") + std::to_string(i);
  }
  for (int i = 0; i < 49; ++i)
    plan += "  - {id: c" + std::to_string(i) + ", agent: explore"
            + (i ? ", depends_on: [c" + std::to_string(i - 1) + "]" : "")
            + ", executor: {kind: sleep, seconds: 0.005}}\n";
  plan += "  - {id: gather, agent: explore, depends_on: [" + fan
          + ", c48], executor: {kind: command, run: \"echo gathered\"}}\n";
  plan += "gates:\n  - {id: fanned, after: [" + fan
          + "], checks: [completion, {run: \"true\"}]}\n";
  auto file = dir.write("plan.yaml", plan);
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  auto r = run_troupe({"submit", file, "--coordinator", c.address(),
                       "--report", report, "--events", events, "-q",
                       "--workdir", dir.str()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(report);
  CHECK(j.at("status") == "succeeded");
  REQUIRE(j.at("workstreams").size() == 200);
  std::map<std::string, int> per_node;
  for (auto& w : j.at("workstreams")) {
    CHECK(w.at("status") == "succeeded");
    CHECK(w.at("attempts") == 1);
    ++per_node[w.at("node").get<std::string>()];
  }
  CHECK(per_node.size() == 3);
  CHECK(per_node["w1"] > 0);
  CHECK(per_node["w2"] > 0);
  CHECK(per_node["w3"] > 0);
  CHECK(j.at("gates").at(0).at("status") == "passed");
  // The gate's command ran on a worker, like work: the coordinator lends no
  // slots.
  auto check = j.at("gates").at(0).at("checks").at(1);
  CHECK(check.at("name") == "run: true");
  CHECK(check.at("detail").get<std::string>().find("(on node w")
        != std::string::npos);
  auto once = succeeded_events(read_events(events));
  CHECK(once.size() == 201); // the workstreams and the gate's check
  CHECK(once.count("fanned.check1") == 1);
  for (auto& [id, n] : once)
    CHECK(n == 1);
  auto nodes = run_troupe({"nodes", "--coordinator", c.address(), "--json"});
  REQUIRE(nodes.exit_code == 0);
  auto listed = json::parse(nodes.out);
  CHECK(listed.size() == 3);
  int64_t completed = 0;
  for (auto& n : listed) {
    CHECK(n.at("state") == "joined");
    completed += n.at("completed").get<int64_t>();
  }
  CHECK(completed == 201);
}

TEST_CASE("work on a killed worker reruns elsewhere, once",
          "[integration][cluster]") {
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1", 2);
  REQUIRE(::mkfifo((dir.str() + "/running").c_str(), 0600) == 0);
  // The first workstream to start announces it on the fifo; the rest only
  // take a while, so w1 is busy when it dies.
  std::string plan = "name: survive\nsettings: {max_parallel_agents: 4}\n"
                     "workstreams:\n";
  for (int i = 0; i < 8; ++i)
    plan += "  - {id: s" + std::to_string(i)
            + ", agent: explore, executor: {kind: command, run: \"if mkdir "
              "announced 2>/dev/null; then echo go > running; fi; sleep "
              "1\"}}\n";
  auto file = dir.write("plan.yaml", plan);
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  submission sub{{"submit", file, "--coordinator", c.address(), "--report",
                  report, "--events", events, "-q", "--workdir", dir.str()},
                 dir.str()};
  std::ifstream{dir.str() + "/running"}.get(); // w1 runs work now
  auto w2 = start_worker(c, "w2", 2);          // joins mid-run
  w1->signal(SIGKILL);
  CHECK(w1->wait() == 128 + SIGKILL);
  auto r = sub.get();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(report);
  CHECK(j.at("status") == "succeeded");
  REQUIRE(j.at("workstreams").size() == 8);
  int on_w2 = 0;
  for (auto& w : j.at("workstreams")) {
    CHECK(w.at("status") == "succeeded");
    CHECK(w.at("attempts") == 1); // the lost attempt is not charged
    on_w2 += w.at("node") == "w2" ? 1 : 0;
  }
  CHECK(on_w2 >= 2); // at least what w1 was running when it died
  auto evs = read_events(events);
  auto once = succeeded_events(evs);
  CHECK(once.size() == 8);
  for (auto& [id, n] : once)
    CHECK(n == 1);
  bool lost = false;
  bool requeued = false;
  for (auto& e : evs) {
    lost = lost || (e.at("kind") == "node_lost");
    requeued = requeued
               || e.at("message").get<std::string>().find("requeued")
                    != std::string::npos;
  }
  CHECK(lost);
  CHECK(requeued);
}

TEST_CASE("a wrong token is refused on both sides", "[integration][cluster]") {
  test::temp_dir dir;
  auto good = dir.write("good.token", "s3cret\n");
  auto bad = dir.write("bad.token", "guess\n");
  coordinator c{{"--token-file", good}};
  auto w = start_worker(c, "intruder", 1, {"--token-file", bad}, false);
  CHECK(w->wait() == 2);
  CHECK(w->err_text().find("token") != std::string::npos);
  CHECK(c.proc->wait_for_err(
    "refused node intruder joining with a wrong token"));
  auto ok = start_worker(c, "member", 1, {"--token-file", good});
  auto nosy = run_troupe({"nodes", "--coordinator", c.address()});
  CHECK(nosy.exit_code == 1);
  CHECK(nosy.err.find("token") != std::string::npos);
  auto nodes = run_troupe({"nodes", "--coordinator", c.address(), "--json",
                           "--token-file", good});
  REQUIRE(nodes.exit_code == 0);
  auto listed = json::parse(nodes.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed.at(0).at("name") == "member");
  // A submission without the token is refused too.
  auto file = dir.write("plan.yaml", "name: x\nworkstreams:\n  - {id: a, "
                                     "agent: explore}\n");
  auto r = run_troupe({"submit", file, "--coordinator", c.address()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("token") != std::string::npos);
}

TEST_CASE("a worker speaking another protocol version is refused",
          "[integration][cluster]") {
  coordinator c;
  auto w = start_worker(c, "old", 1, {"--protocol-version", "99"}, false);
  CHECK(w->wait() == 2);
  CHECK(w->err_text().find("protocol 99") != std::string::npos);
  CHECK(c.proc->wait_for_err("refused node old: protocol version 99"));
}

TEST_CASE("a draining worker finishes its work, takes no more, and leaves",
          "[integration][cluster]") {
  test::become_subreaper();
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1", 1);
  REQUIRE(::mkfifo((dir.str() + "/running").c_str(), 0600) == 0);
  auto file = dir.write("plan.yaml", R"(name: drain
settings: {max_parallel_agents: 2}
workstreams:
  - {id: first, agent: explore, executor: {kind: command, run: "echo go > running; sleep 0.5; echo finished"}}
  - {id: second, agent: explore, depends_on: [first], executor: {kind: command, run: "echo second"}}
)");
  auto report = dir.str() + "/report.json";
  submission sub{{"submit", file, "--coordinator", c.address(), "--report",
                  report, "-q", "--workdir", dir.str()},
                 dir.str()};
  std::ifstream{dir.str() + "/running"}.get(); // `first` runs on w1
  w1->signal(SIGTERM);
  CHECK(w1->wait() == 0);
  CHECK(w1->err_text().find("drained and left") != std::string::npos);
  // `second` waits for a node; one joins and takes it.
  auto w2 = start_worker(c, "w2", 1);
  auto r = sub.get();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(report);
  auto& ws = j.at("workstreams");
  CHECK(ws.at(0).at("node") == "w1");
  CHECK(ws.at(0).at("summary") == "finished");
  CHECK(ws.at(1).at("node") == "w2");
  auto nodes = run_troupe({"nodes", "--coordinator", c.address(), "--json"});
  auto listed = json::parse(nodes.out);
  REQUIRE(listed.size() == 2);
  CHECK(listed.at(0).at("state") == "left");
  CHECK(listed.at(1).at("state") == "joined");
}

TEST_CASE("workers rejoin a restarted coordinator by themselves",
          "[integration][cluster]") {
  uint16_t port = 0;
  std::unique_ptr<background> w;
  {
    coordinator first{{"--slots", "0"}};
    port = first.port;
    w = start_worker(first, "w1", 1);
    first.proc->signal(SIGTERM);
    CHECK(first.proc->wait() == 0);
  }
  CHECK(w->wait_for_err("lost the coordinator"));
  coordinator second{{"--slots", "0"}, "127.0.0.1:" + std::to_string(port)};
  CHECK(w->wait_for_err("joined coordinator"));
  auto nodes = run_troupe({"nodes", "--coordinator", second.address(),
                           "--json"});
  REQUIRE(nodes.exit_code == 0);
  auto listed = json::parse(nodes.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed.at(0).at("name") == "w1");
}

TEST_CASE("stopping the coordinator cancels runs and kills their commands",
          "[integration][cluster]") {
  test::become_subreaper();
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w = start_worker(c, "w1", 1);
  REQUIRE(::mkfifo((dir.str() + "/pid").c_str(), 0600) == 0);
  auto file = dir.write("plan.yaml", R"(name: long
workstreams:
  - {id: long, agent: explore, executor: {kind: command, run: "echo $$ > pid; exec sleep 600"}}
)");
  auto report = dir.str() + "/report.json";
  submission sub{{"submit", file, "--coordinator", c.address(), "--report",
                  report, "-q", "--workdir", dir.str()},
                 dir.str()};
  auto pid = test::read_pid(dir.str() + "/pid");
  REQUIRE(pid > 0);
  c.proc->signal(SIGTERM);
  auto r = sub.get();
  CHECK(r.exit_code == 1);
  auto j = read_json(report);
  CHECK(j.at("status") == "cancelled");
  CHECK(j.at("workstreams").at(0).at("status") == "cancelled");
  CHECK(c.proc->wait() == 0);
  CHECK(test::process_gone(pid));
  CHECK(w->wait_for_err("lost the coordinator"));
}

TEST_CASE("a TLS cluster runs plans and refuses nodes without a valid "
          "certificate",
          "[integration][cluster]") {
  test::temp_dir dir;
  // A CA, certificates it signs, and a second CA nobody trusts.
  REQUIRE(test::make_certs(
    dir, {"ca", "rogue-ca"},
    {{"coord", "ca"}, {"w1", "ca"}, {"client", "ca"}, {"rogue", "rogue-ca"}}));
  auto tls = [&](const std::string& who) {
    return std::vector<std::string>{"--tls-cert", dir.str() + "/" + who + ".pem",
                                    "--tls-key", dir.str() + "/" + who + ".key",
                                    "--tls-ca", dir.str() + "/ca.pem"};
  };
  auto c_args = tls("coord");
  c_args.insert(c_args.begin(), {"--slots", "0"});
  coordinator c{c_args};
  auto w1 = start_worker(c, "w1", 1, tls("w1"));
  auto plain = start_worker(c, "plain", 1, {}, false);
  CHECK(plain->wait_for_err("cannot reach coordinator"));
  auto rogue_args = tls("rogue");
  rogue_args.back() = dir.str() + "/rogue-ca.pem";
  auto rogue = start_worker(c, "rogue", 1, rogue_args, false);
  CHECK(rogue->wait_for_err("cannot reach coordinator"));
  auto file = dir.write("plan.yaml", "name: tls\nworkstreams:\n  - {id: a, "
                                     "agent: explore, executor: {kind: "
                                     "command, run: \"echo over tls\"}}\n");
  auto submit = std::vector<std::string>{"submit", file, "--coordinator",
                                         c.address(), "--report",
                                         dir.str() + "/report.json", "-q"};
  for (auto& a : tls("client"))
    submit.push_back(a);
  auto r = run_troupe(submit, dir.str());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = read_json(dir.str() + "/report.json");
  CHECK(j.at("workstreams").at(0).at("node") == "w1");
  CHECK(j.at("workstreams").at(0).at("summary") == "over tls");
  auto nodes_args = std::vector<std::string>{"nodes", "--coordinator",
                                             c.address(), "--json"};
  for (auto& a : tls("client"))
    nodes_args.push_back(a);
  auto nodes = run_troupe(nodes_args);
  REQUIRE(nodes.exit_code == 0);
  auto listed = json::parse(nodes.out);
  INFO(nodes.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed.at(0).at("name") == "w1");
  // Without a certificate, the client cannot even ask.
  auto bare = run_troupe({"nodes", "--coordinator", c.address()});
  CHECK(bare.exit_code != 0);
}

TEST_CASE("a submitter whose coordinator dies says so and exits 1",
          "[integration][cluster]") {
  test::become_subreaper();
  test::temp_dir dir;
  coordinator c{{"--slots", "1"}};
  REQUIRE(::mkfifo((dir.str() + "/pid").c_str(), 0600) == 0);
  auto file = dir.write("plan.yaml", R"(name: orphan
workstreams:
  - {id: long, agent: explore, executor: {kind: command, run: "echo $$ > pid; exec sleep 600"}}
)");
  submission sub{{"submit", file, "--coordinator", c.address(), "-q",
                  "--workdir", dir.str()},
                 dir.str()};
  auto pid = test::read_pid(dir.str() + "/pid");
  REQUIRE(pid > 0);
  c.proc->signal(SIGKILL);
  CHECK(c.proc->wait() == 128 + SIGKILL);
  auto r = sub.get();
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("lost the coordinator") != std::string::npos);
  // The coordinator could not clean up after itself: the test does.
  ::kill(pid, SIGKILL);
  CHECK(test::process_gone(pid));
}

TEST_CASE("a submitter whose coordinator dies writes the partial report it "
          "has",
          "[integration][cluster]") {
  test::temp_dir dir;
  coordinator c{{"--slots", "0"}};
  auto w = start_worker(c, "w1", 2);
  auto file = dir.write("plan.yaml", R"(name: orphan
goal: outlive the coordinator
workstreams:
  - {id: quick, agent: explore, executor: {kind: command, run: "echo quick done"}}
  - {id: long, agent: explore, depends_on: [quick], executor: {kind: sleep, seconds: 600}}
  - {id: after, agent: explore, depends_on: [long], executor: {kind: command, run: "echo never"}}
)");
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  // Not quiet: each event is a line on stderr, so the test sees `long` run.
  background sub{{TROUPE_BINARY, "submit", file, "--coordinator",
                  c.address(), "--report", report, "--events", events,
                  "--workdir", dir.str()}};
  REQUIRE(sub.wait_for_err("workstream long running"));
  c.proc->signal(SIGKILL);
  CHECK(c.proc->wait() == 128 + SIGKILL);
  CHECK(sub.wait() == 1);
  auto err = sub.err_text();
  INFO(err);
  CHECK(err.find("lost the coordinator before the run ended")
        != std::string::npos);
  // The Markdown says what it is before anything else.
  CHECK(sub.line().find("**Partial report: the coordinator was lost before "
                        "the run ended")
        == 0);
  auto j = read_json(report);
  CHECK(j.at("partial") == true);
  CHECK(j.at("status") == "failed");
  CHECK(j.at("plan") == "orphan");
  CHECK(j.at("run_id").get<std::string>().rfind("run-", 0) == 0);
  CHECK(j.at("markdown").get<std::string>().find("**Partial report") == 0);
  auto& ws = j.at("workstreams");
  REQUIRE(ws.size() == 3);
  CHECK(ws.at(0).at("id") == "quick");
  CHECK(ws.at(0).at("status") == "succeeded");
  CHECK(ws.at(0).at("summary") == "quick done");
  CHECK(ws.at(0).at("node") == "w1");
  CHECK(ws.at(1).at("id") == "long");
  CHECK(ws.at(1).at("status") == "running");
  CHECK(ws.at(1).at("attempts") == 1);
  CHECK(ws.at(1).at("node") == "w1");
  CHECK(ws.at(2).at("id") == "after");
  CHECK(ws.at(2).at("status") == "pending");
  // The event log is in place with what was seen, and nothing else is left.
  auto evs = read_events(events);
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.back().at("subject") == "long");
  CHECK(evs.back().at("state") == "running");
  CHECK_FALSE(std::ifstream{events + ".partial"}.good());
}
