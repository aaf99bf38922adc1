// The LLM executors' connect and read timeouts, from the config file: a
// server that never accepts and one that falls silent mid-reply, both on
// loopback, each ends the try after its own timeout.

#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::sh_quote;

namespace {

// A loopback listener whose queue of connections waiting to be accepted
// is full, and stays full: a further connect waits, unanswered.
class full_listener {
public:
  full_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 0) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    // Linux queues one more than the backlog; fill it, and some.
    for (auto& c : clients_) {
      c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
  }

  ~full_listener() {
    for (auto c : clients_)
      ::close(c);
    ::close(fd_);
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

private:
  int fd_ = -1;
  int clients_[3] = {-1, -1, -1};
  unsigned port_ = 0;
};

} // namespace

TEST_CASE("a provider that never accepts the connection, or falls silent "
          "mid-reply, fails the try after the config file's timeout",
          "[integration][llm]") {
  test::temp_dir dir;
  // The second event of the reply comes after 5 s of silence.
  json script = {{"rules",
                  {{{"text", "too late"},
                    {"times", -1},
                    {"event_delay_ms", 5000},
                    {"usage", {{"input_tokens", 3}, {"output_tokens", 1}}}}}}};
  test::mock_llm mock{dir.path(), script};
  full_listener deaf;
  auto config = dir.write("config.yaml",
                          "providers:\n"
                          "  anthropic: {base_url: \""
                            + mock.url()
                            + "\", read_timeout_s: 0.5, retries: 0}\n"
                              "  openai: {base_url: \""
                            + deaf.url()
                            + "/v1\", connect_timeout_s: 0.5, retries: 0}\n");
  auto plan = dir.write("plan.yaml", R"(name: timeouts
settings: {on_failure: continue}
workstreams:
  - {id: silent, prompt: "hello", timeout_s: 60, executor: {kind: anthropic}}
  - {id: deaf, prompt: "hello", timeout_s: 60,
     executor: {kind: openai, model: llama3}}
)");
  auto report_file = (dir.path() / "report.json").string();
  auto r
    = test::run_troupe({"--config", config, "run", plan, "-q", "--no-journal",
                        "--report", report_file},
                       dir.str(), "unset ANTHROPIC_BASE_URL OPENAI_BASE_URL; ");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto report = test::read_json_file(report_file);
  auto& silent = test::workstream_of(report, "silent");
  CHECK(silent["status"] == "failed");
  CHECK_THAT(silent["summary"].get<std::string>(),
             Catch::Contains("was cut short: nothing for 500 ms"));
  // What came before the silence was billed, and counts.
  CHECK(silent["usage"][0]["input_tokens"] == 3);
  auto& deaf_ws = test::workstream_of(report, "deaf");
  CHECK(deaf_ws["status"] == "failed");
  CHECK_THAT(deaf_ws["summary"].get<std::string>(),
             Catch::Contains("cannot connect to 127.0.0.1:"));
  CHECK_THAT(deaf_ws["summary"].get<std::string>(),
             Catch::Contains("nothing for 500 ms"));
  // One try each: the config file's retries.
  CHECK(mock.requests().size() == 1);
}
