#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include "commands.hpp"
#include "troupe/protocol/interfaces.hpp"

namespace troupe::cli {

/// Splits `HOST:PORT`; prints what is wrong (naming `flag`) and returns
/// false for anything else.
bool parse_address(const std::string& text, const std::string& flag,
                   std::string& host, uint16_t& port);

/// Reads a token file (surrounding whitespace dropped); prints what is
/// wrong and returns false for a missing, unreadable or empty file.
bool read_token(const std::string& file, std::string& token);

/// An address and the token to present there.
struct endpoint {
  std::string host;
  uint16_t port = 0;
  std::string token;
};

/// Reads `address` (for `flag`) and the optional token file; prints what is
/// wrong and returns false.
bool read_endpoint(const std::string& address, const std::string& flag,
                   const std::string& token_file, endpoint& out);

/// True for addresses that stay on this machine: 127.0.0.0/8, ::1 and
/// `localhost`.
bool is_loopback(const std::string& host);

/// Whether `host` (named by `flag`) may be used with `tls`: TLS, loopback,
/// or plaintext the user asked for with --insecure-plaintext (warned
/// about). Prints why not and returns false otherwise.
bool transport_allowed(const std::string& host, const std::string& flag,
                       const tls_flags& tls);

/// Which end of node links a process is: the coordinator gives a silent
/// peer up later than its workers and clients give it up.
enum class network_role { coordinator, client };

/// Loads the middleman, and with certificates the TLS manager, into `cfg`,
/// with heartbeats and the connection timeout of `role`; prints what is
/// wrong and returns false for unusable certificate flags.
bool configure_network(caf::actor_system_config& cfg, const tls_flags& tls,
                       network_role role);

/// Unregisters `sys`'s spawn server, which no Troupe node uses, right after
/// `sys` starts, so that no peer finds it.
///
/// CAF 0.17 asks every node it connects to for its spawn server; a node
/// that answers hands the asker a proxy that its helper actor holds until
/// it is killed at shutdown. That helper, the proxy and the network layer
/// hold each other, and when the process ends before the helper has read
/// its kill, all of them are left allocated. Without an answer, the helper
/// holds nothing of the network's.
void drop_spawn_server(caf::actor_system& sys);

/// The middleman that connects (plain or TLS).
caf::io::middleman_actor middleman_of(caf::actor_system& sys,
                                      const tls_flags& tls);

/// Connects to the coordinator at `host:port`; prints why it cannot.
bool connect_coordinator(caf::actor_system& sys, const std::string& host,
                         uint16_t port, const tls_flags& tls,
                         orchestrator_actor& result);

} // namespace troupe::cli
