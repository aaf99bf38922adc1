#include "troupe/runtime/http_client.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace troupe {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

bool parse_url(const std::string& url, url_parts& out, std::string& why) {
  out = url_parts{};
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    why = "not an http:// or https:// URL: \"" + url + "\"";
    return false;
  }
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) {
    why = "credentials in a URL are not supported: \"" + url + "\"";
    return false;
  }
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) {
      why = "unclosed '[' in \"" + url + "\"";
      return false;
    }
    out.host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        why = "junk after ']' in \"" + url + "\"";
        return false;
      }
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos)
      port = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    why = "no host in \"" + url + "\"";
    return false;
  }
  if (port.empty()) {
    port = out.tls ? "443" : "80";
  } else if (port.size() > 5
             || !std::all_of(port.begin(), port.end(),
                             [](char c) { return c >= '0' && c <= '9'; })
             || std::stoi(port) == 0 || std::stoi(port) > 65535) {
    why = "bad port \"" + port + "\" in \"" + url + "\"";
    return false;
  }
  out.port = port;
  return true;
}

namespace {

using clock_type = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string seconds_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

/// What the client's registry keeps of a session.
class session_base {
public:
  virtual ~session_base() = default;
  virtual void cancel() = 0;
};

} // namespace

struct http_client::impl {
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> guard{
    ioc.get_executor()};
  std::mutex mtx;
  std::unordered_map<uint64_t, std::weak_ptr<session_base>> sessions;
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  std::atomic<uint64_t> next_id{1};
  std::thread worker;

  impl() {
    // OpenSSL first: it frees its state at exit, the thread's included only
    // if the thread ended before. Exit handlers run last registered first,
    // so OpenSSL's must be registered before this client's, which joins the
    // thread.
    OPENSSL_init_ssl(0, nullptr);
    worker = std::thread([this] { ioc.run(); });
  }

  ~impl() {
    guard.reset();
    ioc.stop();
    worker.join();
  }

  /// A TLS client context that trusts the system's CAs and `ca_file`.
  std::shared_ptr<ssl::context> context_for(const std::string& ca_file,
                                            std::string& why) {
    std::lock_guard<std::mutex> lock{mtx};
    auto i = contexts.find(ca_file);
    if (i != contexts.end())
      return i->second;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (!ca_file.empty()) {
      ctx->load_verify_file(ca_file, ec);
      if (ec) {
        why = "cannot read CA file " + ca_file + ": " + ec.message();
        return nullptr;
      }
    }
    ctx->set_verify_mode(ssl::verify_peer);
    contexts.emplace(ca_file, ctx);
    return ctx;
  }

  void forget(uint64_t id) {
    std::lock_guard<std::mutex> lock{mtx};
    sessions.erase(id);
  }
};

namespace {

// One exchange, as Beast's async clients go: each step a do_x starting an
// operation and an on_x handling it, all on one strand.
template <class Stream>
class session : public session_base,
                public std::enable_shared_from_this<session<Stream>> {
public:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  session(net::any_io_executor ex, std::shared_ptr<ssl::context> ctx,
          http_request req, url_parts url, http_client::data_fn on_data,
          http_client::done_fn done)
    : ctx_(std::move(ctx)),
      stream_(make_stream(ex, ctx_.get())),
      resolver_(ex),
      total_timer_(ex),
      req_(std::move(req)),
      url_(std::move(url)),
      on_data_(std::move(on_data)),
      done_(std::move(done)) {
    // nop
  }

  void start() {
    net::post(stream_.get_executor(),
              [self = this->shared_from_this()] { self->do_resolve(); });
  }

  void cancel() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->finished_)
        return;
      self->result_.cancelled = true;
      self->abort();
    });
  }

private:
  static Stream make_stream(net::any_io_executor ex, ssl::context* ctx) {
    if constexpr (tls)
      return Stream{ex, *ctx};
    else
      return Stream{ex};
  }

  auto& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  void abort() {
    resolver_.cancel();
    lowest().cancel();
  }

  void do_resolve() {
    started_ = clock_type::now();
    if (req_.total_timeout.count() > 0) {
      total_timer_.expires_after(req_.total_timeout);
      total_timer_.async_wait(
        [self = this->shared_from_this()](boost::system::error_code ec) {
          if (ec || self->finished_)
            return;
          self->result_.timed_out = true;
          self->timeout_why_ = "no whole answer within "
                               + seconds_text(self->req_.total_timeout);
          self->abort();
        });
    }
    resolver_.async_resolve(
      url_.host, url_.port,
      beast::bind_front_handler(&session::on_resolve,
                                this->shared_from_this()));
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec)
      return fail(ec, "cannot resolve " + url_.host);
    lowest().expires_after(req_.connect_timeout);
    lowest().async_connect(
      results, beast::bind_front_handler(&session::on_connect,
                                         this->shared_from_this()));
  }

  void on_connect(beast::error_code ec, tcp::endpoint) {
    if (ec)
      return fail(ec, "cannot connect to " + url_.host + ":" + url_.port);
    connected_ = true;
    if constexpr (tls) {
      // SNI, and the certificate must name the host.
      if (!SSL_set_tlsext_host_name(stream_.native_handle(),
                                    url_.host.c_str())) {
        ec.assign(static_cast<int>(::ERR_get_error()),
                  net::error::get_ssl_category());
        return fail(ec, "TLS with " + url_.host);
      }
      stream_.set_verify_callback(ssl::host_name_verification(url_.host));
      lowest().expires_after(req_.connect_timeout);
      stream_.async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&session::on_handshake,
                                  this->shared_from_this()));
    } else {
      do_write();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec)
      return fail(ec, "TLS handshake with " + url_.host);
    do_write();
  }

  void do_write() {
    auto method = http::string_to_verb(req_.method);
    message_.method(method == http::verb::unknown ? http::verb::post
                                                  : method);
    message_.target(url_.target);
    message_.version(11);
    auto host = url_.host.find(':') != std::string::npos
                  ? "[" + url_.host + "]"
                  : url_.host;
    if ((url_.tls && url_.port != "443") || (!url_.tls && url_.port != "80"))
      host += ":" + url_.port;
    message_.set(http::field::host, host);
    message_.set(http::field::user_agent, "troupe");
    for (auto& [name, value] : req_.headers)
      message_.set(name, value);
    message_.body() = std::move(req_.body);
    message_.prepare_payload();
    lowest().expires_after(req_.read_timeout);
    http::async_write(stream_, message_,
                      beast::bind_front_handler(&session::on_write,
                                                this->shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec)
      return fail(ec, "cannot send the request to " + url_.host);
    parser_.body_limit(req_.body_limit);
    lowest().expires_after(req_.read_timeout);
    http::async_read_header(stream_, buffer_, parser_,
                            beast::bind_front_handler(
                              &session::on_header, this->shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec)
      return fail(ec, "no answer from " + url_.host);
    auto& res = parser_.get();
    result_.status = static_cast<int>(res.result_int());
    for (auto& field : res)
      result_.headers[lower(std::string{field.name_string()})]
        = std::string{field.value()};
    auto type = result_.headers.find("content-type");
    streaming_ = on_data_ && result_.status >= 200 && result_.status < 300
                 && type != result_.headers.end()
                 && lower(type->second).find("text/event-stream")
                      != std::string::npos;
    do_read_body();
  }

  void do_read_body() {
    if (parser_.is_done())
      return finish();
    auto& body = parser_.get().body();
    body.data = chunk_;
    body.size = sizeof(chunk_);
    lowest().expires_after(req_.read_timeout);
    http::async_read_some(stream_, buffer_, parser_,
                          beast::bind_front_handler(&session::on_body,
                                                    this->shared_from_this()));
  }

  void on_body(beast::error_code ec, size_t) {
    if (ec == http::error::need_buffer)
      ec = {};
    auto got = sizeof(chunk_) - parser_.get().body().size;
    if (got > 0) {
      if (streaming_)
        on_data_(std::string_view{chunk_, got});
      else
        result_.body.append(chunk_, got);
    }
    if (ec) {
      if (ec == http::error::body_limit)
        return fail(ec, "the answer from " + url_.host + " is longer than "
                          + std::to_string(req_.body_limit) + " bytes");
      return fail(ec, "the answer from " + url_.host + " was cut short");
    }
    do_read_body();
  }

  void fail(beast::error_code ec, const std::string& what) {
    if (result_.cancelled) {
      result_.error = "cancelled";
    } else if (result_.timed_out) {
      result_.error = what + ": " + timeout_why_;
    } else if (ec == beast::error::timeout) {
      result_.timed_out = true;
      result_.error = what + ": nothing for "
                      + seconds_text(connected_ ? req_.read_timeout
                                                : req_.connect_timeout);
    } else {
      result_.error = what + ": " + ec.message();
    }
    finish();
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    total_timer_.cancel();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
    result_.wall = clock_type::now() - started_;
    auto done = std::move(done_);
    on_data_ = nullptr;
    if (done)
      done(std::move(result_));
  }

  std::shared_ptr<ssl::context> ctx_;
  Stream stream_;
  tcp::resolver resolver_;
  net::steady_timer total_timer_;
  http_request req_;
  url_parts url_;
  http_client::data_fn on_data_;
  http_client::done_fn done_;
  http::request<http::string_body> message_;
  beast::flat_buffer buffer_; // (Must persist between reads)
  http::response_parser<http::buffer_body> parser_;
  char chunk_[16384];
  http_response result_;
  std::string timeout_why_;
  clock_type::time_point started_ = clock_type::now();
  bool connected_ = false;
  bool streaming_ = false;
  bool finished_ = false;
};

} // namespace

http_client::http_client() : impl_(std::make_unique<impl>()) {
  // nop
}

http_client::~http_client() = default;

http_client& http_client::shared() {
  static http_client instance;
  return instance;
}

uint64_t http_client::start(http_request req, data_fn on_data,
                            done_fn done) {
  auto id = impl_->next_id++;
  url_parts url;
  std::string why;
  std::shared_ptr<ssl::context> ctx;
  if (parse_url(req.url, url, why) && url.tls)
    ctx = impl_->context_for(req.ca_file, why);
  if (!why.empty()) {
    // Nothing to run: fail on the client's thread all the same, as callers
    // expect.
    net::post(impl_->ioc, [why, done = std::move(done)] {
      http_response r;
      r.error = why;
      done(std::move(r));
    });
    return id;
  }
  // The client forgets the exchange as it ends.
  auto finish = [impl = impl_.get(), id, done = std::move(done)](
                  http_response r) {
    impl->forget(id);
    done(std::move(r));
  };
  auto ex = net::make_strand(impl_->ioc);
  auto launch = [&](auto session_ptr) {
    {
      std::lock_guard<std::mutex> lock{impl_->mtx};
      impl_->sessions.emplace(id, session_ptr);
    }
    session_ptr->start();
  };
  if (url.tls)
    launch(std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
      ex, std::move(ctx), std::move(req), std::move(url), std::move(on_data),
      std::move(finish)));
  else
    launch(std::make_shared<session<beast::tcp_stream>>(
      ex, nullptr, std::move(req), std::move(url), std::move(on_data),
      std::move(finish)));
  return id;
}

void http_client::cancel(uint64_t id) {
  std::shared_ptr<session_base> s;
  {
    std::lock_guard<std::mutex> lock{impl_->mtx};
    auto i = impl_->sessions.find(id);
    if (i != impl_->sessions.end())
      s = i->second.lock();
  }
  if (s)
    s->cancel();
}

size_t http_client::running() const {
  std::lock_guard<std::mutex> lock{impl_->mtx};
  return impl_->sessions.size();
}

} // namespace troupe
