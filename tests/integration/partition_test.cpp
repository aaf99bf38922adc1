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
                      "--insecure-plaintext"});
    auto line = proc->line();
    INFO("coordinator said: " << line << proc->err_text());
    REQUIRE(line.find("troupe coordinator listening on "
                      + netns_lab::hub_address() + ":")
            == 0);
    address = netns_lab::hub_address() + ":"
              + line.substr(line.rfind(':') + 1);
  }
};

#define TROUPE_NEEDS_NETNS(lab)                                               \
  if (!(lab).ready()) {                                                      \
    WARN("skipped: cannot make network namespaces here (needs root, or "     \
         "CAP_NET_ADMIN and CAP_SYS_ADMIN, and iproute2): "                  \
         << (lab).why());                                                    \
    return;                                                                  \
  }

} // namespace

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
