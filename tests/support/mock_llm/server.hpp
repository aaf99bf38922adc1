#pragma once

// The stand-in LLM server's connections: the shared rules and request log,
// and the sessions that answer requests as the script says.

#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http.hpp>

#include "mock_llm/script.hpp"

namespace troupe::mock {

/// The rules, their uses and the request log, shared by all sessions.
class server {
public:
  server(std::vector<rule> rules, std::ofstream log)
      : rules_(std::move(rules)), log_(std::move(log)) {
    // nop
  }

  /// Numbers a request, picks its rule (-1: the automatic reply) and logs
  /// it. `body` is null when the body was not read (too large).
  std::pair<std::uint64_t, int>
  record(const boost::beast::http::request<boost::beast::http::string_body>& req, const ojson* body,
         route path) {
    ojson headers = ojson::object();
    for (const auto& field : req) {
      std::string name{field.name_string()};
      std::transform(name.begin(), name.end(), name.begin(), [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      });
      std::string value{field.value()};
      auto it = headers.find(name);
      if (it == headers.end())
        headers[name] = value;
      else
        *it = it->get<std::string>() + ", " + value;
    }
    std::lock_guard<std::mutex> guard{mutex_};
    auto n = next_n_++;
    int used = -1;
    if (path == route::messages || path == route::chat)
      used = pick(req.body(), path);
    if (log_.is_open()) {
      ojson line = {{"n", n},
                    {"method", std::string(req.method_string())},
                    {"target", std::string(req.target())},
                    {"headers", std::move(headers)}};
      if (body == nullptr)
        line["body"] = nullptr;
      else if (body->is_discarded())
        line["body"] = req.body();
      else
        line["body"] = *body;
      line["reply"] = used;
      log_ << dump(line) << '\n';
      log_.flush();
    }
    return {n, used};
  }

  const reply_spec& reply_of(int rule_index) const {
    return rule_index < 0 ? automatic_
                          : rules_[static_cast<std::size_t>(rule_index)].reply;
  }

private:
  // Called with mutex_ held.
  int pick(const std::string& body, route path) {
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      auto& r = rules_[i];
      if (r.uses_left == 0 || (r.path && *r.path != path))
        continue;
      if (r.match && body.find(*r.match) == std::string::npos)
        continue;
      if (r.unless && body.find(*r.unless) != std::string::npos)
        continue;
      if (r.uses_left > 0)
        --r.uses_left;
      return static_cast<int>(i);
    }
    return -1;
  }

  std::vector<rule> rules_;
  const reply_spec automatic_{};
  std::ofstream log_;
  std::mutex mutex_;
  std::uint64_t next_n_ = 1;
};

/// Accepts connections on `acceptor` until `ioc` stops, each on a strand
/// of its own, answering as `srv` says; over TLS when `tls` is set.
void serve(boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor&& acceptor,
           server& srv, boost::asio::ssl::context* tls);

} // namespace troupe::mock
