// The stand-in LLM server's sessions and listener.

#include "mock_llm/server.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "mock_llm/replies.hpp"

namespace troupe::mock {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

constexpr std::uint64_t max_body_bytes = 32ull * 1024 * 1024;
constexpr std::uint32_t max_header_bytes = 1024 * 1024;
// Clients keep connections open between requests; a test is shorter.
constexpr auto idle_timeout = std::chrono::seconds(600);
constexpr auto io_timeout = std::chrono::seconds(60);
constexpr auto linger_timeout = std::chrono::seconds(5);
constexpr auto accept_backoff = std::chrono::milliseconds(100);

route route_of(http::verb method, std::string_view path) {
  if (method != http::verb::post)
    return route::other;
  if (path == "/v1/messages")
    return route::messages;
  if (path == "/v1/chat/completions")
    return route::chat;
  if (path == "/v1/messages/count_tokens")
    return route::count_tokens;
  return route::other;
}

/// Whether `ec` says the peer sent something that is not HTTP we take.
bool is_http_error(beast::error_code ec) {
  return ec.category()
         == http::make_error_code(http::error::bad_target).category();
}

void set_status(http::response_header<>& h, unsigned status) {
  h.result(status);
  if (status == 529)
    h.reason("Overloaded");
  else if (http::obsolete_reason(h.result()) == "<unknown-status>")
    h.reason("Mock Status");
}

/// One connection: reads requests, answers each as the script says.
/// `Stream` is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  template <class... Args>
  session(server& srv, tcp::socket&& socket, Args&... args)
      : srv_(srv),
        stream_(std::move(socket), args...),
        timer_(stream_.get_executor()) {
    // nop
  }

  void run() {
    // Everything after this runs on the connection's strand.
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&session::on_run, this->shared_from_this()));
  }

private:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  void on_run() {
    if constexpr (tls) {
      lowest().expires_after(io_timeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&session::on_handshake,
                                    this->shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec)
      return;
    do_read();
  }

  void do_read() {
    // A fresh parser per request: the body limit counts per parser.
    parser_.emplace();
    parser_->body_limit(max_body_bytes);
    parser_->header_limit(max_header_bytes);
    lowest().expires_after(idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&session::on_read_header,
                                  this->shared_from_this()));
  }

  void on_read_header(beast::error_code ec, std::size_t) {
    // This means they closed the connection
    if (ec == http::error::end_of_stream)
      return do_close();
    if (ec == http::error::body_limit)
      return reply_too_large();
    if (is_http_error(ec))
      return reply_bad_request(ec);
    if (ec)
      return; // a timeout or a reset: the client is gone
    const auto& req = parser_->get();
    if (!parser_->is_done()
        && beast::iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      lowest().expires_after(io_timeout);
      return http::async_write(
          stream_, *continue_,
          beast::bind_front_handler(&session::on_continue,
                                    this->shared_from_this()));
    }
    do_read_body();
  }

  void on_continue(beast::error_code ec, std::size_t) {
    if (ec)
      return;
    do_read_body();
  }

  void do_read_body() {
    if (parser_->is_done())
      return handle_request();
    lowest().expires_after(io_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read_body,
                                               this->shared_from_this()));
  }

  void on_read_body(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit)
      return reply_too_large();
    if (is_http_error(ec) && ec != http::error::partial_message)
      return reply_bad_request(ec);
    if (ec)
      return;
    handle_request();
  }

  void handle_request() {
    const auto& req = parser_->get();
    request_info rq;
    rq.method = std::string(req.method_string());
    rq.target = std::string(req.target());
    auto path = std::string_view(rq.target).substr(0, rq.target.find('?'));
    // What throws here (memory, a library call on odd input) becomes a 500.
    try {
      if (req.method() == http::verb::get && path == "/health") {
        plan_ = json_plan(200, {{"ok", true}});
        return start_reply();
      }
      rq.path = route_of(req.method(), path);
      body_ = parse_body(req.body());
      auto [n, rule_index] = srv_.record(req, &body_, rq.path);
      rq.n = n;
      rq.body_bytes = req.body().size();
      rq.body = &body_;
      plan_ = make_reply(rq, srv_.reply_of(rule_index));
    } catch (const std::exception& e) {
      plan_ = json_plan(
          500, anthropic_error("api_error",
                               std::string("mock server: ") + e.what()));
    }
    if (plan_.delay.count() > 0) {
      timer_.expires_after(plan_.delay);
      return timer_.async_wait(beast::bind_front_handler(
          &session::on_delay, this->shared_from_this()));
    }
    start_reply();
  }

  void on_delay(beast::error_code ec) {
    if (ec)
      return;
    start_reply();
  }

  void reply_too_large() {
    try {
      srv_.record(parser_->get(), nullptr, route::other);
    } catch (const std::exception&) {
      // the 413 matters more than the log line
    }
    plan_ = json_plan(413, anthropic_error("request_too_large",
                                           "request body exceeds 32 MiB"));
    keep_alive_ = false;
    send_plan();
  }

  // Not HTTP, or not HTTP we take: say so, unlogged, and close.
  void reply_bad_request(beast::error_code ec) {
    bool too_long = ec == http::error::header_limit;
    plan_ = json_plan(too_long ? 431 : 400,
                      anthropic_error("invalid_request_error",
                                      "bad HTTP request: " + ec.message()));
    keep_alive_ = false;
    parser_.emplace(); // the reply's version: 1.1
    send_plan();
  }

  void start_reply() {
    keep_alive_ = parser_->get().keep_alive();
    if (plan_.streamed)
      start_stream();
    else
      send_plan();
  }

  template <class Body>
  void fill_header(http::response<Body>& res) {
    res.version(parser_->get().version());
    set_status(res.base(), plan_.status);
    res.set(http::field::server, program);
    for (const auto& [name, value] : plan_.headers)
      res.set(name, value);
    res.keep_alive(keep_alive_);
  }

  void send_plan() {
    res_.emplace();
    fill_header(*res_);
    res_->body() = std::move(plan_.body);
    res_->prepare_payload();
    if (parser_->get().method() == http::verb::head) {
      // The length a GET would get, and no body.
      auto length = res_->body().size();
      res_->body().clear();
      res_->content_length(length);
    }
    lowest().expires_after(io_timeout);
    http::async_write(stream_, *res_,
                      beast::bind_front_handler(&session::on_write,
                                                this->shared_from_this(),
                                                res_->need_eof()));
  }

  void on_write(bool close, beast::error_code ec, std::size_t) {
    if (ec)
      return;
    if (close)
      return do_close();
    res_.reset();
    do_read();
  }

  // Streams: the header, then each event as one chunk, then the last chunk.

  void start_stream() {
    serializer_.reset(); // it refers to stream_res_
    stream_res_.emplace();
    // HTTP/1.0 knows no chunks: the end of the connection ends the stream.
    chunked_ = parser_->get().version() >= 11;
    if (!chunked_)
      keep_alive_ = false;
    fill_header(*stream_res_);
    stream_res_->chunked(chunked_);
    serializer_.emplace(*stream_res_);
    next_event_ = 0;
    lowest().expires_after(io_timeout);
    http::async_write_header(
        stream_, *serializer_,
        beast::bind_front_handler(&session::on_write_event,
                                  this->shared_from_this()));
  }

  void do_next_event() {
    if (plan_.cut_after_events && next_event_ >= *plan_.cut_after_events)
      return do_cut();
    if (next_event_ == plan_.events.size()) {
      if (!chunked_)
        return do_close();
      chunk_ = "0\r\n\r\n";
      lowest().expires_after(io_timeout);
      return net::async_write(
          stream_, net::buffer(chunk_),
          beast::bind_front_handler(&session::on_write,
                                    this->shared_from_this(), !keep_alive_));
    }
    if (next_event_ > 0 && plan_.event_delay.count() > 0) {
      timer_.expires_after(plan_.event_delay);
      return timer_.async_wait(beast::bind_front_handler(
          &session::on_event_delay, this->shared_from_this()));
    }
    do_write_event();
  }

  void on_event_delay(beast::error_code ec) {
    if (ec)
      return;
    do_write_event();
  }

  void do_write_event() {
    const auto& event = plan_.events[next_event_];
    if (chunked_) {
      std::ostringstream size;
      size << std::hex << event.size();
      chunk_ = size.str() + "\r\n" + event + "\r\n";
    } else {
      chunk_ = event;
    }
    ++next_event_;
    lowest().expires_after(io_timeout);
    net::async_write(stream_, net::buffer(chunk_),
                     beast::bind_front_handler(&session::on_write_event,
                                               this->shared_from_this()));
  }

  void on_write_event(beast::error_code ec, std::size_t) {
    if (ec)
      return;
    do_next_event();
  }

  // A stream cut short: no last chunk, no TLS close_notify.
  void do_cut() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  void do_close() {
    lowest().expires_after(linger_timeout);
    if constexpr (tls) {
      stream_.async_shutdown(beast::bind_front_handler(
          &session::on_shutdown, this->shared_from_this()));
    } else {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      do_drain();
    }
  }

  void on_shutdown(beast::error_code) {
    // nop: the connection ends with this session
  }

  // Reads what the client still sends until it closes (or linger_timeout):
  // closing with unread data would reset the connection, and the client
  // could lose our last reply (a 413 arrives while it still uploads).
  void do_drain() {
    lowest().async_read_some(net::buffer(drain_),
                             beast::bind_front_handler(
                                 &session::on_drain, this->shared_from_this()));
  }

  void on_drain(beast::error_code ec, std::size_t) {
    if (ec)
      return;
    do_drain();
  }

  server& srv_;
  Stream stream_;
  beast::flat_buffer buffer_; // (Must persist between reads)
  net::steady_timer timer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  ojson body_;
  reply_plan plan_;
  bool keep_alive_ = true;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::empty_body>> stream_res_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  bool chunked_ = true;
  std::size_t next_event_ = 0;
  std::string chunk_;
  std::array<char, 16384> drain_;
};

/// Accepts connections, each on its own strand.
class listener : public std::enable_shared_from_this<listener> {
public:
  listener(net::io_context& ioc, tcp::acceptor&& acceptor, server& srv,
           ssl::context* tls)
      : ioc_(ioc),
        acceptor_(std::move(acceptor)),
        srv_(srv),
        tls_(tls),
        timer_(ioc) {
    // nop
  }

  void run() {
    do_accept();
  }

private:
  void do_accept() {
    acceptor_.async_accept(
        net::make_strand(ioc_),
        beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec) {
      // Out of descriptors, most likely: try again a little later.
      std::cerr << program << ": accept: " << ec.message() << "\n";
      timer_.expires_after(accept_backoff);
      return timer_.async_wait(
          beast::bind_front_handler(&listener::on_backoff, shared_from_this()));
    }
    // Small SSE events go out at once.
    socket.set_option(tcp::no_delay(true), ec);
    if (tls_ != nullptr)
      std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
          srv_, std::move(socket), *tls_)
          ->run();
    else
      std::make_shared<session<beast::tcp_stream>>(srv_, std::move(socket))
          ->run();
    do_accept();
  }

  void on_backoff(beast::error_code ec) {
    if (ec)
      return;
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  server& srv_;
  ssl::context* tls_;
  net::steady_timer timer_;
};

} // namespace

void serve(net::io_context& ioc, tcp::acceptor&& acceptor, server& srv,
           ssl::context* tls) {
  std::make_shared<listener>(ioc, std::move(acceptor), srv, tls)->run();
}

} // namespace troupe::mock
