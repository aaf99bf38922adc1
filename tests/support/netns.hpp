#pragma once

#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/cli.hpp"

namespace troupe::test {

/// A private network for one test: a hub namespace whose bridge has
/// 10.213.0.1/24, and hosts, each a namespace of its own linked to the
/// bridge by a veth pair (10.213.0.2, .3, ...). Nothing is made in the
/// namespace the test runs in, and every name carries this process's id, so
/// tests running at once never collide. The destructor deletes every
/// namespace it made, and with them their veths and the bridge, however the
/// test ends (a test killed outright leaves `troupe-PID-*` behind).
///
/// `cut` makes a host's link drop every packet both ways without a word (no
/// FIN, no RST, no ICMP): a bfifo queue of 0 bytes on each end, which does
/// what `netem loss 100%` would without the netem module many kernels lack
/// (but a connect() from either end fails at once instead of waiting for
/// SYN retries). `heal` removes them.
class netns_lab {
public:
  netns_lab() {
    auto ip = run_shell("command -v ip && command -v tc");
    if (ip.exit_code != 0) {
      why_ = "no `ip` or `tc` (iproute2) on the PATH";
      return;
    }
    ip_ = ip.out.substr(0, ip.out.find('\n'));
    prefix_ = "troupe-" + std::to_string(::getpid()) + "-";
    if (!add_namespace("hub")
        || !sh("ip -n " + ns("hub") + " link add br0 type bridge"
               " && ip -n " + ns("hub") + " addr add 10.213.0.1/24 dev br0"
               " && ip -n " + ns("hub") + " link set br0 up"))
      return;
    // A link cut needs a bfifo queue: see that it can be made.
    if (!sh("ip netns exec " + ns("hub")
            + " tc qdisc add dev br0 root bfifo limit 0 && ip netns exec "
            + ns("hub") + " tc qdisc del dev br0 root"))
      why_ = "cannot cut links (tc qdisc bfifo): " + why_;
  }

  ~netns_lab() {
    for (auto i = made_.rbegin(); i != made_.rend(); ++i)
      run_shell("ip netns delete " + *i);
  }

  netns_lab(const netns_lab&) = delete;
  netns_lab& operator=(const netns_lab&) = delete;

  /// True when the lab is up; otherwise `why` says what failed.
  bool ready() const {
    return why_.empty();
  }

  const std::string& why() const {
    return why_;
  }

  /// Adds host `name` (a few letters: it names interfaces) linked to the
  /// bridge; returns its address, empty on failure (see `why`).
  std::string add_host(const std::string& name) {
    if (!ready())
      return {};
    auto addr = "10.213.0." + std::to_string(next_host_++);
    auto port = "v-" + name;
    if (!add_namespace(name)
        || !sh("ip -n " + ns("hub") + " link add " + port
               + " type veth peer name eth0 netns " + ns(name)
               + " && ip -n " + ns("hub") + " link set " + port
               + " master br0 up && ip -n " + ns(name) + " addr add " + addr
               + "/24 dev eth0 && ip -n " + ns(name) + " link set eth0 up"))
      return {};
    hosts_[name] = addr;
    return addr;
  }

  /// The hub's address on the bridge.
  static std::string hub_address() {
    return "10.213.0.1";
  }

  /// The argv prefix that runs a program in `host` ("hub" included).
  std::vector<std::string> in(const std::string& host) const {
    return {ip_, "netns", "exec", ns(host)};
  }

  /// Runs `troupe` with `args` in `host`, waiting for it to end.
  cli_result troupe_in(const std::string& host,
                       const std::vector<std::string>& args) const {
    std::string line = "exec ip netns exec " + ns(host) + " "
                       + sh_quote(TROUPE_BINARY);
    for (auto& a : args)
      line += " " + sh_quote(a);
    return run_shell(line, {}, std::chrono::seconds(60));
  }

  /// Drops every packet between `host` and the hub, both ways, silently.
  bool cut(const std::string& host) {
    return sh("ip netns exec " + ns("hub") + " tc qdisc add dev v-" + host
              + " root bfifo limit 0 && ip netns exec " + ns(host)
              + " tc qdisc add dev eth0 root bfifo limit 0");
  }

  /// Lets packets between `host` and the hub through again.
  bool heal(const std::string& host) {
    return sh("ip netns exec " + ns("hub") + " tc qdisc del dev v-" + host
              + " root && ip netns exec " + ns(host)
              + " tc qdisc del dev eth0 root");
  }

  /// Gives `host` another address, as a host back from an outage with a
  /// new lease has: what its old connections send goes nowhere, and what
  /// is sent to them is dropped without a word, while new connections
  /// work. Returns the new address, empty on failure.
  std::string renumber(const std::string& host) {
    auto i = hosts_.find(host);
    if (i == hosts_.end())
      return {};
    auto addr = "10.213.0." + std::to_string(next_host_++);
    if (!sh("ip -n " + ns(host) + " addr del " + i->second
            + "/24 dev eth0 && ip -n " + ns(host) + " addr add " + addr
            + "/24 dev eth0"))
      return {};
    i->second = addr;
    return addr;
  }

private:
  std::string ns(const std::string& host) const {
    return prefix_ + host;
  }

  bool add_namespace(const std::string& host) {
    if (!sh("ip netns add " + ns(host)))
      return false;
    made_.push_back(ns(host));
    return sh("ip -n " + ns(host) + " link set lo up");
  }

  // Runs `command`; on failure keeps what it said in `why_`.
  bool sh(const std::string& command) {
    auto r = run_shell(command + " 2>&1", {}, std::chrono::seconds(30));
    if (r.exit_code == 0)
      return true;
    why_ = "`" + command + "` failed: " + r.out;
    while (!why_.empty() && why_.back() == '\n')
      why_.pop_back();
    return false;
  }

  std::string ip_;
  std::string prefix_;
  std::string why_;
  std::vector<std::string> made_;
  std::map<std::string, std::string> hosts_;
  int next_host_ = 2;
};

} // namespace troupe::test
