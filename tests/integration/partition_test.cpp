// Network partitions: a link that goes silent (no FIN, no RST) between a
// node and its coordinator, made real with network namespaces. Needs root
// (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; skipped with a warning
// where namespaces cannot be made.
//
// The nodes talk plaintext (--insecure-plaintext) over addresses of a
// network that lives only inside this test's namespaces: nobody else can
// reach it, and what is tested, a peer that stops answering, is the same
// under TLS, which would only add certificates to make.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "support/background.hpp"
#include "support/cluster.hpp"
#include "support/netns.hpp"
#include "support/reaper.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Starts `troupe` in `host` of `lab`, logging at info level.
std::unique_ptr<background> troupe_in(const netns_lab& lab,
                                      const std::string& host,
                                      std::vector<std::string> args) {
  auto argv = lab.in(host);
  argv.insert(argv.end(), {TROUPE_BINARY, "--log-level", "info"});
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<background>(argv);
}

// A coordinator in the hub namespace, on the bridge's address.
struct hub_coordinator {
  std::unique_ptr<background> proc;
  std::string address;

  hub_coordinator(const netns_lab& lab, const std::string& slots) {
    proc = troupe_in(lab, "hub",
                     {"coordinator", "--listen",
                      netns_lab::hub_address() + ":0", "--slots", slots,
                      "--insecure-plaintext", "--no-journal"});
    auto line = proc->line();
    INFO("coordinator said: " << line << proc->err_text());
    REQUIRE(line.find("troupe coordinator listening on "
                      + netns_lab::hub_address() + ":")
            == 0);
    address = netns_lab::hub_address() + ":"
              + line.substr(line.rfind(':') + 1);
  }
};

std::unique_ptr<background> join_worker(const netns_lab& lab,
                                        const hub_coordinator& c,
                                        const std::string& name) {
  auto w = troupe_in(lab, name,
                     {"worker", "--join", c.address, "--name", name,
                      "--slots", "1", "--insecure-plaintext"});
  INFO("worker " << name << ": " << w->err_text());
  REQUIRE(w->wait_for_err("joined coordinator", 30s));
  return w;
}

#define TROUPE_NEEDS_NETNS(lab)                                               \
  if (!(lab).ready()) {                                                      \
    WARN("skipped: cannot make network namespaces here (needs root, or "     \
         "CAP_NET_ADMIN and CAP_SYS_ADMIN, and iproute2): "                  \
         << (lab).why());                                                    \
    return;                                                                  \
  }

// The first copy of `long` tells the test its pid and runs until told to
// finish; it ignores SIGTERM, so stopping it takes the SIGKILL that comes
// 2 s later. A second copy (the rerun) says whether the first still lives.
constexpr auto first_copy_plan = R"(name: partition
workstreams:
  - id: long
    agent: explore
    executor:
      kind: command
      run: |
        if mkdir first 2>/dev/null; then
          trap '' TERM
          echo $$ > first/pid; echo $$ > started
          while [ ! -e release ]; do sleep 0.1; done
          echo first copy finished
        elif grep -qs '^State:[[:space:]]*[^Z[:space:]]' /proc/$(cat first/pid)/status; then
          echo rerun beside the first copy
        else
          echo rerun alone
        fi
  - {id: after, agent: explore, depends_on: [long], executor: {kind: command, run: "echo after"}}
)";

// A coordinator in the hub, and a run of `first_copy_plan` submitted from
// the hub whose `long` runs on w1; w2 has joined since, idle.
struct worker_run {
  temp_dir dir;
  netns_lab lab;
  std::unique_ptr<hub_coordinator> c;
  std::unique_ptr<background> w1;
  std::unique_ptr<background> w2;
  std::unique_ptr<background> sub;
  pid_t first = -1;
  std::string report = dir.str() + "/report.json";
  std::string events = dir.str() + "/events.jsonl";

  // False when namespaces cannot be made here.
  bool start() {
    if (!lab.ready())
      return false;
    become_subreaper();
    REQUIRE_FALSE(lab.add_host("w1").empty());
    REQUIRE_FALSE(lab.add_host("w2").empty());
    c = std::make_unique<hub_coordinator>(lab, "0");
    w1 = join_worker(lab, *c, "w1");
    REQUIRE(::mkfifo((dir.str() + "/started").c_str(), 0600) == 0);
    auto file = dir.write("plan.yaml", first_copy_plan);
    // Not quiet: the submitter's stderr says what it saw, should this fail.
    sub = troupe_in(lab, "hub",
                    {"submit", file, "--coordinator", c->address,
                     "--insecure-plaintext", "--report", report, "--events",
                     events, "--workdir", dir.str()});
    first = read_pid_from_fifo(dir.str() + "/started", 30s);
    REQUIRE(first > 0); // `long` runs on w1, the only worker
    w2 = join_worker(lab, *c, "w2");
    return true;
  }

  // The run ended well, each workstream accepted once, `long` rerun alone
  // after w1 was lost (for `why`), and w1 is listed lost, then joined.
  void check_outcome(const std::string& why) {
    CHECK(sub->wait(60s) == 0);
    INFO("submitter: " << sub->err_text());
    auto j = read_json(report);
    CHECK(j.at("status") == "succeeded");
    REQUIRE(j.at("workstreams").size() == 2);
    auto& ws = j.at("workstreams").at(0);
    CHECK(ws.at("id") == "long");
    CHECK(ws.at("status") == "succeeded");
    CHECK(ws.at("summary") == "rerun alone");
    CHECK(ws.at("attempts") == 1); // the lost attempt is not charged
    CHECK(j.at("workstreams").at(1).at("status") == "succeeded");
    auto evs = read_events(events);
    auto once = succeeded_events(evs);
    CHECK(once.size() == 2);
    for (auto& [id, n] : once)
      CHECK(n == 1);
    int lost = 0;
    bool requeued = false;
    for (auto& e : evs) {
      if (e.at("kind") == "node_lost") {
        ++lost;
        CHECK(e.at("message") == why);
      }
      requeued = requeued
                 || (e.at("subject") == "long"
                     && e.at("message") == "requeued: node w1 lost");
    }
    CHECK(lost == 1);
    CHECK(requeued);
    auto nodes = lab.troupe_in("hub", {"nodes", "--coordinator", c->address,
                                       "--insecure-plaintext", "--json"});
    INFO(nodes.err);
    REQUIRE(nodes.exit_code == 0);
    std::vector<std::string> w1_states;
    for (auto& n : json::parse(nodes.out))
      if (n.at("name") == "w1")
        w1_states.push_back(n.at("state"));
    CHECK(w1_states == std::vector<std::string>{"lost", "joined"});
  }
};

} // namespace

TEST_CASE("a worker cut off without a word loses its work to another, once, "
          "and rejoins when the link heals",
          "[integration][cluster][netns]") {
  worker_run r;
  TROUPE_NEEDS_NETNS(r.lab);
  REQUIRE(r.start());
  REQUIRE(r.lab.cut("w1"));
  auto cut = clock_type::now();
  auto lost = r.c->proc->wait_for_err("node w1 lost", 40s);
  auto lost_after = seconds_since(cut);
  // The worker noticed first and has stopped its command, so the rerun the
  // coordinator starts now never runs beside it.
  auto first_ran_on = process_running(r.first);
  INFO("coordinator: " << r.c->proc->err_text());
  REQUIRE(lost);
  CHECK_FALSE(first_ran_on);
  auto noticed = r.w1->wait_for_err("lost the coordinator", 30s);
  INFO("w1: " << r.w1->err_text());
  CHECK(noticed);
  CHECK(process_gone(r.first, 10s));

  REQUIRE(r.lab.heal("w1"));
  auto healed = clock_type::now();
  // Were the first copy still running, it would end now and report late.
  r.dir.write("release", "");
  CHECK(r.w1->wait_for_err("joined coordinator", 40s));
  auto rejoin_after = seconds_since(healed);
  INFO("silent for " << lost_after << " s before the coordinator declared w1 "
                     "lost; w1 rejoined " << rejoin_after
                     << " s after the link healed");
  CHECK(lost_after < 30);
  r.check_outcome("exit_reason(remote_link_unreachable)");
}

TEST_CASE("a worker back before the coordinator noticed it was cut off "
          "rejoins, and its work runs again, once",
          "[integration][cluster][netns]") {
  worker_run r;
  TROUPE_NEEDS_NETNS(r.lab);
  REQUIRE(r.start());
  REQUIRE(r.lab.cut("w1"));
  auto cut = clock_type::now();
  auto noticed = r.w1->wait_for_err("lost the coordinator", 30s);
  auto noticed_after = seconds_since(cut);
  // w1 comes back with a new address, so nothing of its old connection
  // reaches the coordinator, which would otherwise learn of the loss by a
  // FIN or RST, or whichever comes first.
  REQUIRE_FALSE(r.lab.renumber("w1").empty());
  REQUIRE(r.lab.heal("w1"));
  INFO("w1: " << r.w1->err_text());
  REQUIRE(noticed);
  // Over a new connection, which CAF takes for another route to the same
  // node, so the old one is never reported down. w1's rejoin under a new
  // key ends its old membership instead, once its command has stopped.
  auto lost = r.c->proc->wait_for_err("node w1 lost (it rejoined after "
                                      "losing the coordinator)",
                                      30s);
  auto lost_after = seconds_since(cut);
  auto first_ran_on = process_running(r.first);
  INFO("coordinator: " << r.c->proc->err_text());
  INFO("w1 noticed the cut after " << noticed_after
                                   << " s; the coordinator declared it lost "
                                   << lost_after << " s after the cut");
  REQUIRE(lost);
  CHECK_FALSE(first_ran_on);
  CHECK(lost_after < 20); // before it would have noticed by itself
  r.dir.write("release", "");
  r.check_outcome("it rejoined after losing the coordinator");
}

TEST_CASE("a submitter cut off from its coordinator writes its partial report "
          "and exits 1 in bounded time",
          "[integration][cluster][netns]") {
  become_subreaper();
  temp_dir dir;
  netns_lab lab;
  TROUPE_NEEDS_NETNS(lab);
  REQUIRE_FALSE(lab.add_host("s").empty());
  hub_coordinator c{lab, "1"};
  REQUIRE(::mkfifo((dir.str() + "/started").c_str(), 0600) == 0);
  auto file = dir.write("plan.yaml", R"(name: partition
workstreams:
  - {id: quick, agent: explore, executor: {kind: command, run: "echo quick done"}}
  - {id: long, agent: explore, depends_on: [quick], executor: {kind: command, run: "echo $$ > started; exec sleep 600"}}
)");
  auto report = dir.str() + "/report.json";
  auto events = dir.str() + "/events.jsonl";
  auto sub = troupe_in(lab, "s",
                       {"submit", file, "--coordinator", c.address,
                        "--insecure-plaintext", "--report", report,
                        "--events", events, "--workdir", dir.str()});
  auto pid = read_pid_from_fifo(dir.str() + "/started", 30s);
  REQUIRE(pid > 0);

  REQUIRE(lab.cut("s"));
  auto cut = clock_type::now();
  auto rc = sub->wait(60s);
  auto ended_after = seconds_since(cut);
  auto err = sub->err_text();
  INFO(err);
  INFO("the submitter ended " << ended_after << " s after the cut");
  CHECK(rc == 1);
  CHECK(ended_after < 30);
  CHECK(err.find("lost the coordinator before the run ended")
        != std::string::npos);
  auto j = read_json(report);
  CHECK(j.at("partial") == true);
  CHECK(j.at("status") == "failed");
  auto& ws = j.at("workstreams");
  REQUIRE(ws.size() == 2);
  CHECK(ws.at(0).at("status") == "succeeded");
  CHECK(ws.at(1).at("status") == "running");
  CHECK(read_events(events).back().at("subject") == "long");

  // The coordinator goes on with the run; stopping it ends the command.
  REQUIRE(lab.heal("s"));
  c.proc->signal(SIGTERM);
  CHECK(c.proc->wait(30s) == 0);
  CHECK(process_gone(pid));
}
