#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {

/// An `http://` or `https://` URL taken apart.
struct url_parts {
  bool tls = false;
  std::string host;
  std::string port;
  /// Starts with '/'.
  std::string target;
};

/// Parses `url`; false (with `why` set) for anything but http(s)://HOST[:PORT]
/// followed by an optional path. IPv6 hosts go in brackets.
bool parse_url(const std::string& url, url_parts& out, std::string& why);

/// One HTTP exchange.
struct http_request {
  std::string url;
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// For connecting (resolving, TCP and TLS handshakes included).
  std::chrono::milliseconds connect_timeout{10'000};
  /// The longest silence allowed while sending or receiving.
  std::chrono::milliseconds read_timeout{120'000};
  /// For the whole exchange; zero means no limit beyond the others.
  std::chrono::milliseconds total_timeout{0};
  /// Bytes of response body taken at most; a longer body fails the
  /// exchange.
  size_t body_limit = 32 << 20;
  /// A PEM file of certificates to trust for https, beside the system's.
  std::string ca_file;
};

/// How an exchange ended.
struct http_response {
  /// The status code, or 0 when no response arrived.
  int status = 0;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  /// The body, unless it went to a streaming callback (see `http_client`).
  std::string body;
  /// Set when the exchange failed: no connection, a cut or overlong body,
  /// a timeout, a cancel. A response may have arrived (`status`) before.
  std::string error;
  bool timed_out = false;
  bool cancelled = false;
  std::chrono::steady_clock::duration wall{};
};

/// An asynchronous HTTP/1.1 client (Boost.Beast) with a thread of its own:
/// nobody waits on the network. Callbacks run on that thread.
class http_client {
public:
  /// Receives pieces of a streamed response's body as they arrive.
  using data_fn = std::function<void(std::string_view)>;
  using done_fn = std::function<void(http_response)>;

  http_client();
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// The client the built-in executors share.
  static http_client& shared();

  /// Starts `req`; `done` runs once, when it has ended. With `on_data`, a
  /// 2xx stream of server-sent events (`text/event-stream`) goes to it
  /// piece by piece as it arrives instead of to `http_response::body`;
  /// other bodies are collected whole. Returns an id for `cancel`.
  uint64_t start(http_request req, data_fn on_data, done_fn done);

  /// Ends an exchange early; its `done` still runs, `cancelled` set.
  void cancel(uint64_t id);

  /// Exchanges in progress.
  size_t running() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
