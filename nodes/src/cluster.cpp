#include "cluster.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <nlohmann/json.hpp>

#include "signals.hpp"
#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/actors/worker.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/log.hpp"

namespace troupe::cli {

namespace {

// Every node sends a heartbeat this often, and drops a connection that has
// been silent for its timeout, checked at each heartbeat: a link that dies
// without a word is noticed between timeout - 2 s and timeout + 2 s after.
constexpr auto heartbeat_interval = std::chrono::seconds(2);
// A worker gives its coordinator up after this long, and stops its commands
// (SIGKILL 2 s after SIGTERM at worst): all gone 14 s after the link died.
constexpr auto connection_timeout = std::chrono::seconds(10);
// The coordinator waits longer before it declares a silent node lost and
// reruns its work elsewhere (from 18 s on), so that a rerun never starts
// beside a command the cut-off worker still runs.
constexpr auto coordinator_connection_timeout = std::chrono::seconds(20);

bool readable(const std::string& file, const std::string& flag) {
  std::ifstream in{file};
  if (!in) {
    std::cerr << flag << ": cannot read " << file << ": "
              << std::strerror(errno) << '\n';
    return false;
  }
  return true;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

} // namespace

bool parse_address(const std::string& text, const std::string& flag,
                   std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    std::cerr << flag << ": expected HOST:PORT, got \"" << text << "\"\n";
    return false;
  }
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto digits = text.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  auto value = std::strtol(digits.c_str(), &end, 10);
  if (*end != '\0' || errno != 0 || value < 0 || value > 65535) {
    std::cerr << flag << ": \"" << digits
              << "\" is not a port (0 to 65535)\n";
    return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

bool read_token(const std::string& file, std::string& token) {
  std::ifstream in{file};
  if (!in) {
    std::cerr << "--token-file: cannot read " << file << ": "
              << std::strerror(errno) << '\n';
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  token = buf.str();
  auto first = token.find_first_not_of(" \t\r\n");
  auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? ""
                                     : token.substr(first, last - first + 1);
  if (token.empty()) {
    std::cerr << "--token-file: " << file << " is empty\n";
    return false;
  }
  return true;
}

bool read_endpoint(const std::string& address, const std::string& flag,
                   const std::string& token_file, endpoint& out) {
  if (!parse_address(address, flag, out.host, out.port))
    return false;
  return token_file.empty() || read_token(token_file, out.token);
}

bool is_loopback(const std::string& host) {
  if (host == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool transport_allowed(const std::string& host, const std::string& flag,
                       const tls_flags& tls) {
  if (tls.enabled() || is_loopback(host))
    return true;
  if (!tls.insecure_plaintext) {
    std::cerr << flag << ": " << host
              << " is not a loopback address, and CAF's network protocol "
                 "authenticates nobody: give every node --tls-cert, "
                 "--tls-key and --tls-ca (see the README's \"Run a "
                 "cluster\"), or --insecure-plaintext on a network you trust "
                 "entirely\n";
    return false;
  }
  log()->warn("{} {} without TLS (--insecure-plaintext): anyone who reaches "
              "it can read the cluster token off the wire, impersonate nodes "
              "and submitters, fake the loss of a node, and make the "
              "coordinator allocate up to 4 GiB per connection before any "
              "check",
              flag == "--listen" ? "listening on" : "talking to", host);
  return true;
}

bool configure_network(caf::actor_system_config& cfg, const tls_flags& tls,
                       network_role role) {
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.heartbeat-interval", caf::timespan{heartbeat_interval});
  cfg.set("middleman.connection-timeout",
          caf::timespan{role == network_role::coordinator
                          ? coordinator_connection_timeout
                          : connection_timeout});
  if (!tls.enabled())
    return true;
  if (tls.cert.empty() || tls.key.empty() || tls.ca.empty()) {
    std::cerr << "--tls-cert, --tls-key and --tls-ca go together: give all "
                 "three or none\n";
    return false;
  }
  if (!readable(tls.cert, "--tls-cert") || !readable(tls.key, "--tls-key")
      || !readable(tls.ca, "--tls-ca"))
    return false;
  cfg.openssl_certificate = tls.cert;
  cfg.openssl_key = tls.key;
  cfg.openssl_cafile = tls.ca;
  cfg.load<caf::openssl::manager>();
  return true;
}

void drop_spawn_server(caf::actor_system& sys) {
  sys.registry().erase(caf::atom("SpawnServ"));
}

caf::io::middleman_actor middleman_of(caf::actor_system& sys,
                                      const tls_flags& tls) {
  return tls.enabled() ? sys.openssl_manager().actor_handle()
                       : sys.middleman().actor_handle();
}

bool connect_coordinator(caf::actor_system& sys, const std::string& host,
                         uint16_t port, const tls_flags& tls,
                         orchestrator_actor& result) {
  auto hdl = tls.enabled()
               ? caf::openssl::remote_actor<orchestrator_actor>(sys, host,
                                                                port)
               : sys.middleman().remote_actor<orchestrator_actor>(host, port);
  if (!hdl) {
    std::cerr << "troupe: cannot reach the coordinator at " << host << ":"
              << port << ": " << sys.render(hdl.error()) << '\n';
    return false;
  }
  result = std::move(*hdl);
  return true;
}

int coordinator_command(const coordinator_flags& flags) {
  endpoint at;
  if (!read_endpoint(flags.listen, "--listen", flags.token_file, at))
    return exit_bad_input;
  auto& [host, port, token] = at;
  if (flags.slots < 0) {
    std::cerr << "--slots: must not be negative\n";
    return exit_bad_input;
  }
  if (!transport_allowed(host, "--listen", flags.tls))
    return exit_bad_input;
  orchestrator_config ocfg;
  if (!open_journal(flags.journal, journal::access::exclusive, ocfg.journal))
    return exit_bad_input;
  ocfg.resume_unfinished = true;
  caf::actor_system_config cfg;
  add_message_types(cfg);
  if (!configure_network(cfg, flags.tls, network_role::coordinator))
    return exit_bad_input;
  signal_watch::block_signals();
  caf::actor_system sys{cfg};
  drop_spawn_server(sys);
  auto executors = executors_for(configuration());
  ocfg.token = token;
  ocfg.owner_key = make_secret();
  ocfg.name = flags.name;
  auto orch = spawn_orchestrator(sys, ocfg);
  caf::scoped_actor self{sys};
  pool_actor pool;
  if (flags.slots > 0) {
    pool_config pcfg;
    pcfg.info.name = flags.name;
    pcfg.info.slots = flags.slots;
    for (auto& k : executors->kinds())
      pcfg.info.executors.push_back(k);
    pcfg.executors = executors;
    pool = spawn_agent_pool(sys, pcfg);
    self
      ->request(orch, std::chrono::seconds(10), join_atom_v,
                join_request{token, pcfg.info, {}, {}}, pool)
      .receive([](const std::string&) {}, [](const caf::error&) {});
  }
  auto bound = flags.tls.enabled()
                 ? caf::openssl::publish(orch, port, host.c_str(), true)
                 : sys.middleman().publish(orch, port, host.c_str(), true);
  if (!bound) {
    std::cerr << "--listen: cannot listen on " << flags.listen << ": "
              << sys.render(bound.error()) << '\n';
    stop_orchestrator(sys, orch);
    if (pool)
      caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    return exit_bad_input;
  }
  if (token.empty() && !is_loopback(host))
    log()->warn("listening on {} without --token-file: any node with a "
                "certificate of the cluster's CA can join",
                host);
  std::cout << "troupe coordinator listening on " << host << ":" << *bound
            << (flags.tls.enabled() ? " (TLS)" : "") << std::endl;
  std::promise<int> stop;
  auto stopped = stop.get_future();
  {
    signal_watch watch{[&](int sig) { stop.set_value(sig); }};
    auto sig = stopped.get();
    std::cerr << "troupe: coordinator stopping ("
              << signal_watch::name(sig)
              << "): cancelling runs\n";
    self->request(orch, std::chrono::seconds(60), shutdown_atom_v,
                  ocfg.owner_key)
      .receive([](bool) {},
               [&](const caf::error& err) {
                 std::cerr << "troupe: runs did not end in time: "
                           << sys.render(err) << '\n';
               });
  }
  stop_orchestrator(sys, orch);
  if (pool)
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  return exit_ok;
}

int worker_command(const worker_flags& flags) {
  endpoint at;
  if (!read_endpoint(flags.join, "--join", flags.token_file, at))
    return exit_bad_input;
  auto& [host, port, token] = at;
  if (port == 0) {
    std::cerr << "--join: port 0 names no coordinator\n";
    return exit_bad_input;
  }
  if (flags.slots < 1) {
    std::cerr << "--slots: a worker needs at least 1 slot\n";
    return exit_bad_input;
  }
  if (!transport_allowed(host, "--join", flags.tls))
    return exit_bad_input;
  auto executors = executors_for(configuration());
  auto available = executors->kinds();
  std::vector<std::string> offered;
  if (flags.executors.empty()) {
    offered.assign(available.begin(), available.end());
  } else {
    for (auto& k : flags.executors) {
      if (auto u = executors->unavailable().find(k);
          u != executors->unavailable().end()) {
        std::cerr << "--executors: \"" << k << "\" cannot run here: "
                  << u->second << '\n';
        return exit_bad_input;
      }
      if (available.count(k) == 0) {
        std::string names;
        for (auto& a : available)
          names += (names.empty() ? "" : ", ") + a;
        std::cerr << "--executors: \"" << k
                  << "\" is not available in this build (available: "
                  << names << ")\n";
        return exit_bad_input;
      }
      offered.push_back(k);
    }
  }
  auto name = flags.name;
  if (name.empty()) {
    char buf[256] = {0};
    gethostname(buf, sizeof(buf) - 1);
    name = std::string{buf} + "-" + std::to_string(getpid());
  }
  caf::actor_system_config cfg;
  add_message_types(cfg);
  if (!configure_network(cfg, flags.tls, network_role::client))
    return exit_bad_input;
  signal_watch::block_signals();
  caf::actor_system sys{cfg};
  drop_spawn_server(sys);
  pool_config pcfg;
  pcfg.info.name = name;
  pcfg.info.slots = flags.slots;
  pcfg.info.personas = flags.personas;
  pcfg.info.executors = offered;
  pcfg.info.models = flags.models;
  if (flags.protocol_version != 0)
    pcfg.info.protocol_version = flags.protocol_version;
  pcfg.executors = executors;
  pcfg.workdir = flags.workdir;
  pcfg.workspace_root
    = std::filesystem::absolute(flags.workspaces.empty() ? ".troupe/workspaces"
                                                         : flags.workspaces)
        .lexically_normal()
        .string();
  auto pool = spawn_agent_pool(sys, pcfg);
  std::promise<std::pair<int, std::string>> done;
  auto finished = done.get_future();
  worker_config wcfg;
  wcfg.host = host;
  wcfg.port = port;
  wcfg.join = join_request{token, pcfg.info, {}, {}};
  wcfg.middleman = middleman_of(sys, flags.tls);
  wcfg.on_exit = [&done](int code, std::string why) {
    done.set_value({code, std::move(why)});
  };
  std::cerr << "troupe worker " << name << " (" << flags.slots
            << (flags.slots == 1 ? " slot" : " slots") << ") joining "
            << host << ":" << port << std::endl;
  auto node = spawn_worker_node(sys, wcfg, pool);
  std::pair<int, std::string> outcome;
  {
    signal_watch watch{[&](int) {
      std::cerr << "troupe: worker draining: finishing what runs\n";
      caf::anon_send(node, drain_atom_v);
    }};
    outcome = finished.get();
  }
  std::cerr << "troupe worker " << name << ": " << outcome.second << '\n';
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  return outcome.first;
}

int nodes_command(const nodes_flags& flags) {
  endpoint at;
  if (!read_endpoint(flags.coordinator, "--coordinator", flags.token_file, at))
    return exit_bad_input;
  auto& [host, port, token] = at;
  if (!transport_allowed(host, "--coordinator", flags.tls))
    return exit_bad_input;
  caf::actor_system_config cfg;
  add_message_types(cfg);
  if (!configure_network(cfg, flags.tls, network_role::client))
    return exit_bad_input;
  caf::actor_system sys{cfg};
  drop_spawn_server(sys);
  orchestrator_actor orch;
  if (!connect_coordinator(sys, host, port, flags.tls, orch))
    return exit_run_failed;
  caf::scoped_actor self{sys};
  int rc = exit_ok;
  self->request(orch, std::chrono::seconds(10), nodes_atom_v, at.token)
    .receive(
      [&](const std::vector<node_status>& nodes) {
        if (flags.json) {
          std::cout << json_text(nodes, 2) << '\n';
          return;
        }
        std::cout << std::left << std::setw(20) << "NAME" << std::setw(7)
                  << "SLOTS" << std::setw(6) << "BUSY" << std::setw(10)
                  << "STATE" << std::setw(10) << "DONE" << std::setw(20)
                  << "PERSONAS"
                  << "EXECUTORS\n";
        for (auto& n : nodes)
          std::cout << std::left << std::setw(20) << n.info.name
                    << std::setw(7) << n.info.slots << std::setw(6) << n.busy
                    << std::setw(10) << n.state << std::setw(10)
                    << n.completed << std::setw(20)
                    << (n.info.personas.empty() ? "any"
                                                : join(n.info.personas))
                    << join(n.info.executors) << '\n';
      },
      [&](const caf::error& err) {
        std::cerr << "troupe: " << sys.render(err) << '\n';
        rc = exit_run_failed;
      });
  return rc;
}

} // namespace troupe::cli
