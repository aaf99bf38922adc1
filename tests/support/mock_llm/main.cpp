// troupe_mock_llm: a stand-in for LLM APIs, so that tests and benchmarks can
// drive executors (and the Claude Code CLI) with no internet.
//
//   troupe_mock_llm [--port N] [--script FILE] [--log FILE]
//                   [--tls-cert FILE --tls-key FILE]
//
// Serves on 127.0.0.1 only: POST /v1/messages (Anthropic Messages),
// POST /v1/chat/completions (OpenAI chat completions),
// POST /v1/messages/count_tokens and GET /health. Prints
// "listening on 127.0.0.1:PORT" once the port is bound and runs until SIGTERM
// or SIGINT (exit 0). Bad flags or a bad script: a message on stderr, exit 2.
//
// A script ({"rules": [...]}) says how to answer: for each request, the first
// rule with uses left whose `path`, `match` and `unless` fit is used; without
// one the answer is an automatic reply ("mock reply <n>"). Every request but
// /health is appended to the log file as one JSON line. The fields of a rule
// are listed at `decode_rule` in script.cpp.
//
// Standalone on purpose: Boost headers, nlohmann_json and OpenSSL, no troupe.

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <openssl/ssl.h>

#include "mock_llm/script.hpp"
#include "mock_llm/server.hpp"

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using namespace troupe::mock;

namespace {

struct options {
  unsigned short port = 0;
  std::optional<std::string> script;
  std::optional<std::string> log;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
};

constexpr const char* usage
    = "usage: troupe_mock_llm [--port N] [--script FILE] [--log FILE]\n"
      "                       [--tls-cert FILE --tls-key FILE]\n";

/// Reads the command line into `opts`; false after a message on stderr.
bool parse_options(int argc, char** argv, options& opts, bool& help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return true;
    }
    std::string value;
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (arg == "--port" || arg == "--script" || arg == "--log"
               || arg == "--tls-cert" || arg == "--tls-key") {
      if (i + 1 == argc) {
        std::cerr << program << ": " << arg << " needs a value\n" << usage;
        return false;
      }
      value = argv[++i];
    }
    if (arg == "--port") {
      char* end = nullptr;
      errno = 0;
      auto port = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || port > 65535
          || value[0] == '-' || value[0] == '+') {
        std::cerr << program
                  << ": --port: not a port number (0-65535): " << value << "\n";
        return false;
      }
      opts.port = static_cast<unsigned short>(port);
    } else if (arg == "--script") {
      opts.script = value;
    } else if (arg == "--log") {
      opts.log = value;
    } else if (arg == "--tls-cert") {
      opts.tls_cert = value;
    } else if (arg == "--tls-key") {
      opts.tls_key = value;
    } else {
      std::cerr << program << ": unknown argument: " << argv[i] << "\n"
                << usage;
      return false;
    }
  }
  if (opts.tls_cert.has_value() != opts.tls_key.has_value()) {
    std::cerr << program << ": --tls-cert and --tls-key go together\n";
    return false;
  }
  return true;
}

bool readable(const std::string& file, const char* what) {
  std::ifstream in{file, std::ios::binary};
  if (in)
    return true;
  std::cerr << program << ": cannot read " << what << " " << file << ": "
            << std::strerror(errno) << "\n";
  return false;
}

/// Sets up `ctx` to serve with the certificate and key of `opts`.
bool setup_tls(ssl::context& ctx, const options& opts) {
  if (!readable(*opts.tls_cert, "certificate")
      || !readable(*opts.tls_key, "key"))
    return false;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                  | ssl::context::no_sslv3);
  beast::error_code ec;
  ctx.use_certificate_chain_file(*opts.tls_cert, ec);
  if (ec) {
    std::cerr << program << ": certificate " << *opts.tls_cert << ": "
              << ec.message() << "\n";
    return false;
  }
  ctx.use_private_key_file(*opts.tls_key, ssl::context::pem, ec);
  if (ec) {
    std::cerr << program << ": key " << *opts.tls_key << ": " << ec.message()
              << "\n";
    return false;
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    std::cerr << program << ": key " << *opts.tls_key
              << " does not match certificate " << *opts.tls_cert << "\n";
    return false;
  }
  return true;
}

void run_io(net::io_context& ioc) {
  // A handler that throws loses its connection, not the server.
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      std::cerr << program << ": " << e.what() << "\n";
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  bool help = false;
  if (!parse_options(argc, argv, opts, help))
    return 2;
  if (help) {
    std::cout << usage;
    return 0;
  }
  std::vector<rule> rules;
  if (opts.script && !load_script(*opts.script, rules))
    return 2;
  std::ofstream log;
  if (opts.log) {
    log.open(*opts.log, std::ios::app | std::ios::binary);
    if (!log) {
      std::cerr << program << ": cannot open log " << *opts.log << ": "
                << std::strerror(errno) << "\n";
      return 2;
    }
  }
  std::optional<ssl::context> tls;
  if (opts.tls_cert) {
    tls.emplace(ssl::context::tls_server);
    if (!setup_tls(*tls, opts))
      return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  // Declared after what sessions use, so that they go first.
  server srv{std::move(rules), std::move(log)};
  net::io_context ioc{2};
  // Before the port is printed: a test may stop us right after reading it.
  net::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&ioc](const beast::error_code&, int) { ioc.stop(); });
  tcp::acceptor acceptor{ioc};
  tcp::endpoint endpoint{net::ip::make_address_v4("127.0.0.1"), opts.port};
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << program << ": cannot listen on 127.0.0.1:" << opts.port << ": "
              << ec.message() << "\n";
    return 1;
  }
  auto port = acceptor.local_endpoint().port();
  serve(ioc, std::move(acceptor), srv, tls ? &*tls : nullptr);
  std::cout << "listening on 127.0.0.1:" << port << std::endl;
  std::thread second{[&ioc] { run_io(ioc); }};
  run_io(ioc);
  second.join();
  return 0;
}

