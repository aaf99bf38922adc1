// `anthropic` and `openai` workstreams run by the real `troupe` against the
// stand-in LLM server: what they ask, what they report, how they retry,
// and that the key goes nowhere but to the provider.

#include <filesystem>
#include <fstream>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/certs.hpp"
#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/quiet_run.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_quietly;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

constexpr auto secret_key = "sk-ant-test-5ecr3t-k3y-never-printed";

// Environment for a `troupe` that asks `mock` with the secret key.
std::string anthropic_env(const test::mock_llm& mock) {
  return test::anthropic_env(mock, secret_key);
}

// A loopback port nothing listens on: one the system just handed out and
// took back.
std::string closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return std::to_string(ntohs(addr.sin_port));
}

} // namespace

TEST_CASE("anthropic workstreams ask their model and report its tokens and "
          "cost",
          "[integration][llm]") {
  test::temp_dir dir;
  json script = {
    {"rules",
     {{{"match", "Find the entry points."},
       {"text", "The entry point is main.cpp.\nentry: main.cpp"},
       {"usage",
        {{"input_tokens", 1000},
         {"output_tokens", 200},
         {"cache_read_input_tokens", 300},
         {"cache_creation_input_tokens", 100}}}},
      {{"match", "Build it."},
       {"text", "Built h\xC3\xA9llo."},
       {"usage", {{"input_tokens", 2000}, {"output_tokens", 500}}}}}}};
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: llm
settings: {max_parallel_agents: 2}
workstreams:
  - {id: scout, agent: explore, prompt: "Find the entry points.",
     executor: {kind: anthropic}}
  - {id: build, prompt: "Build it.", depends_on: [scout], owns: [src/**],
     executor: {kind: anthropic, stream: false, max_tokens: 1000}}
)");
  auto r = run_troupe({"run", plan, "--workdir", dir.str(), "--report",
                       (dir.path() / "report.json").string(), "--events",
                       (dir.path() / "events.jsonl").string(), "--journal",
                       (dir.path() / "journal.db").string()},
                      dir.str(), anthropic_env(mock));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto report = test::read_json_file(dir.path() / "report.json");

  // Explore work goes to the fast tier, writing work to the balanced one.
  auto& scout = test::workstream_of(report, "scout");
  CHECK(scout["status"] == "succeeded");
  CHECK(scout["summary"] == "entry: main.cpp");
  CHECK(scout["outputs"]["reply"]
        == "The entry point is main.cpp.\nentry: main.cpp");
  REQUIRE(scout["usage"].size() == 1);
  auto& su = scout["usage"][0];
  CHECK(su["model"] == "claude-haiku-4-5");
  CHECK(su["input_tokens"] == 1000);
  CHECK(su["output_tokens"] == 200);
  CHECK(su["cache_read_tokens"] == 300);
  CHECK(su["cache_write_tokens"] == 100);
  // claude-haiku-4-5: $1, $5, $0.10 and $1.25 per million tokens.
  CHECK(su["cost_usd"].get<double>()
        == Approx((1000 * 1 + 200 * 5 + 300 * 0.1 + 100 * 1.25) / 1e6));
  auto& build = test::workstream_of(report, "build");
  CHECK(build["summary"] == "Built h\xC3\xA9llo.");
  auto& bu = build["usage"][0];
  CHECK(bu["model"] == "claude-sonnet-4-5");
  CHECK(bu["cost_usd"].get<double>() == Approx((2000 * 3 + 500 * 15) / 1e6));
  // The run's totals: one entry per model.
  REQUIRE(report["usage"].size() == 2);
  CHECK(report["usage"][0]["model"] == "claude-haiku-4-5");
  CHECK(report["usage"][1]["model"] == "claude-sonnet-4-5");
  CHECK(report["usage"][1]["input_tokens"] == 2000);
  CHECK(r.out.find("| total | claude-sonnet-4-5 | 2000 | 500 | 0 | 0 | $0.0135 |")
        != std::string::npos);

  // What went over the wire.
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  for (auto& q : reqs) {
    CHECK(q["method"] == "POST");
    CHECK(q["target"] == "/v1/messages");
    CHECK(q["headers"]["x-api-key"] == secret_key);
    CHECK(q["headers"]["anthropic-version"] == "2023-06-01");
    CHECK(q["headers"]["content-type"] == "application/json");
    CHECK(q["body"]["messages"][0]["role"] == "user");
  }
  auto& first = reqs[0]["body"];
  CHECK(first["model"] == "claude-haiku-4-5");
  CHECK(first["stream"] == true);
  CHECK(first["max_tokens"] == 8192);
  CHECK(first["system"]
        == test::read_text(fs::path{TROUPE_SOURCE_DIR}
                           / "runtime/personas/analyzer.md"));
  auto& second = reqs[1]["body"];
  CHECK(second["model"] == "claude-sonnet-4-5");
  CHECK_FALSE(second.contains("stream"));
  CHECK(second["max_tokens"] == 1000);
  CHECK(second["system"]
        == test::read_text(fs::path{TROUPE_SOURCE_DIR}
                           / "runtime/personas/backend.md"));
  // The handoff: what scout found is in build's prompt.
  auto prompt = second["messages"][0]["content"].get<std::string>();
  CHECK(prompt.rfind("Build it.", 0) == 0);
  CHECK(prompt.find("### scout (succeeded)") != std::string::npos);
  CHECK(prompt.find("The entry point is main.cpp.") != std::string::npos);

  // The key reached the provider and nothing else: not the output, the
  // report, the events, the journal.
  CHECK(r.out.find(secret_key) == std::string::npos);
  CHECK(r.err.find(secret_key) == std::string::npos);
  CHECK(test::text_under(dir.path()).find(secret_key) == std::string::npos);
}

TEST_CASE("a busy provider is asked again; its own wait is honoured",
          "[integration][llm]") {
  test::temp_dir dir;
  json script = {
    {"rules",
     {{{"status", 429},
       {"headers", {{"retry-after", "0"}}},
       {"error", {{"type", "rate_limit_error"}, {"message", "slow down"}}}},
      {{"status", 529},
       {"headers", {{"retry-after", "0"}}},
       {"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}},
      {{"status", 500},
       {"headers", {{"retry-after-ms", "10"}}},
       {"body", "<html>oops</html>"}},
      {{"cut_after_events", 3},
       {"headers", {{"retry-after-ms", "10"}}},
       {"usage", {{"input_tokens", 40}, {"output_tokens", 1}}}},
      {{"text", "finally"},
       {"usage", {{"input_tokens", 50}, {"output_tokens", 2}}}}}}};
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: busy
workstreams:
  - {id: ask, prompt: "Hello?", executor: {kind: anthropic}}
)");
  auto r = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK(mock.requests().size() == 5);
  auto& report = r.report;
  auto& w = test::workstream_of(report, "ask");
  CHECK(w["attempts"] == 1);
  CHECK(w["summary"] == "finally");
  auto out = w["output"].get<std::string>();
  CHECK(out.find("try 1: HTTP 429 rate_limit_error: slow down") != std::string::npos);
  CHECK(out.find("try 2: HTTP 529 overloaded_error: Overloaded") != std::string::npos);
  CHECK(out.find("try 3: HTTP 500: <html>oops</html>") != std::string::npos);
  CHECK(out.find("try 4: ") != std::string::npos);
  // The stream cut short was billed too: its tokens count.
  CHECK(w["usage"][0]["input_tokens"] == 90);
}

TEST_CASE("a provider that stays busy fails the attempt after the last try, "
          "and a refusal fails it at once",
          "[integration][llm]") {
  test::temp_dir dir;
  json script = {
    {"rules",
     {{{"match", "refuse me"},
       {"status", 401},
       {"error",
        {{"type", "authentication_error"},
         {"message", "invalid x-api-key"}}}},
      {{"match", "busy"},
       {"times", -1},
       {"status", 529},
       {"headers", {{"retry-after", "0"}}},
       {"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}},
      {{"match", "garbled"}, {"stream", false}, {"body", "{\"content\": [tru"}},
      {{"match", "patience"},
       {"status", 429},
       {"headers", {{"retry-after", "3600"}}},
       {"error", {{"type", "rate_limit_error"}, {"message", "later"}}}}}}};
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: refused
settings: {on_failure: continue}
workstreams:
  - {id: denied, prompt: "refuse me", executor: {kind: anthropic}}
  - {id: busy, prompt: "busy", executor: {kind: anthropic}}
  - {id: garbled, prompt: "garbled", executor: {kind: anthropic}}
  - {id: patient, prompt: "patience", timeout_s: 60, executor: {kind: anthropic}}
)");
  auto r = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 1);
  auto& report = r.report;
  auto& denied = test::workstream_of(report, "denied");
  CHECK(denied["status"] == "failed");
  CHECK(denied["summary"]
        == "anthropic: HTTP 401 authentication_error: invalid x-api-key");
  auto& busy = test::workstream_of(report, "busy");
  CHECK(busy["status"] == "failed");
  CHECK(busy["summary"]
        == "anthropic: HTTP 529 overloaded_error: Overloaded (after 5 tries)");
  auto& garbled = test::workstream_of(report, "garbled");
  CHECK(garbled["status"] == "failed");
  CHECK(garbled["summary"].get<std::string>().find("not a JSON object")
        != std::string::npos);
  // Waiting an hour would pass the attempt's timeout: no use waiting.
  auto& patient = test::workstream_of(report, "patient");
  CHECK(patient["status"] == "failed");
  CHECK(patient["summary"].get<std::string>().find("would pass the attempt's "
                                                   "timeout")
        != std::string::npos);
  size_t denied_asks = 0;
  size_t busy_asks = 0;
  for (auto& q : mock.requests()) {
    auto body = q["body"].dump();
    denied_asks += body.find("refuse me") != std::string::npos ? 1 : 0;
    busy_asks += body.find("busy") != std::string::npos ? 1 : 0;
  }
  CHECK(denied_asks == 1);
  CHECK(busy_asks == 5);
}

TEST_CASE("anthropic over HTTPS trusts the config's CA file beside the "
          "system's, and no certificate they do not vouch for",
          "[integration][llm]") {
  test::temp_dir dir;
  // A private CA, a certificate it signs for 127.0.0.1, and one signed by
  // a CA nobody trusts.
  REQUIRE(test::make_certs(dir, {"ca", "rogue-ca"},
                           {{"server", "ca"}, {"rogue", "rogue-ca"}}));
  auto files = [&](const std::string& who) {
    return test::mock_llm::tls_files{dir.str() + "/" + who + ".pem",
                                     dir.str() + "/" + who + ".key"};
  };
  json script = {{"rules", {{{"text", "Sealed."}}}}};
  fs::create_directories(dir.path() / "trusted");
  fs::create_directories(dir.path() / "rogue");
  test::mock_llm trusted{dir.path() / "trusted", script, files("server")};
  test::mock_llm rogue{dir.path() / "rogue", script, files("rogue")};
  REQUIRE(trusted.url().rfind("https://127.0.0.1:", 0) == 0);
  auto config
    = dir.write("config.yaml", "providers:\n  anthropic: {retries: 0, ca_file: "
                                 + dir.str() + "/ca.pem}\n");
  auto plan = dir.write("plan.yaml", R"(name: tls
workstreams:
  - {id: ask, prompt: "Seal it.", executor: {kind: anthropic}}
)");
  auto run = [&](const test::mock_llm& mock) {
    return run_quietly(
      dir, plan, "export TROUPE_CONFIG=" + config + "; " + anthropic_env(mock));
  };
  auto ok = run(trusted);
  INFO(ok.cli.out << ok.cli.err);
  REQUIRE(ok.cli.exit_code == 0);
  CHECK(test::workstream_of(ok.report, "ask")["summary"] == "Sealed.");
  REQUIRE(trusted.requests().size() == 1);
  CHECK(trusted.requests()[0]["headers"]["x-api-key"] == secret_key);
  // The key is never sent where the certificate does not hold.
  auto refused = run(rogue);
  INFO(refused.cli.out << refused.cli.err);
  CHECK(refused.cli.exit_code == 1);
  auto why
    = test::workstream_of(refused.report, "ask")["summary"].get<std::string>();
  CHECK_THAT(why, Catch::Contains("certificate verify failed"));
  CHECK(rogue.requests().empty());
  CHECK(refused.cli.err.find(secret_key) == std::string::npos);
}

TEST_CASE("a reply slower than the attempt's timeout times the attempt out",
          "[integration][llm]") {
  test::temp_dir dir;
  json script = {{"rules", {{{"delay_ms", 20000}, {"text", "too late"}}}}};
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: slow
workstreams:
  - {id: slow, prompt: "take your time", timeout_s: 1, executor: {kind: anthropic}}
)");
  auto started = std::chrono::steady_clock::now();
  auto r = run_quietly(dir, plan, anthropic_env(mock));
  INFO(r.cli.out << r.cli.err);
  CHECK(r.cli.exit_code == 1);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(15));
  auto& report = r.report;
  auto& w = test::workstream_of(report, "slow");
  CHECK(w["status"] == "timed_out");
  CHECK(mock.requests().size() == 1);
}

TEST_CASE("openai workstreams talk to any OpenAI-compatible server",
          "[integration][llm]") {
  test::temp_dir dir;
  json script = {
    {"rules",
     {{{"match", "streamed"},
       {"text", "streamed answer"},
       {"usage",
        {{"input_tokens", 300},
         {"output_tokens", 20},
         {"cache_read_input_tokens", 100}}}},
      {{"match", "whole"},
       {"text", "whole answer"},
       {"usage", {{"input_tokens", 10}, {"output_tokens", 3}}}}}}};
  test::mock_llm mock{dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: local
settings:
  models: {fast: llama3}
  prices: {llama3: {input: 0.5, output: 1, cache_read: 0.25}}
workstreams:
  - {id: a, agent: explore, prompt: "streamed", executor: {kind: openai}}
  - {id: b, agent: explore, prompt: "whole", executor: {kind: openai, stream: false}}
)");
  auto r = run_quietly(dir, plan, "export OPENAI_BASE_URL=" + sh_quote(mock.url() + "/v1/")
                        + " OPENAI_API_KEY=" + secret_key + "; ");
  INFO(r.cli.out << r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  auto& report = r.report;
  auto& a = test::workstream_of(report, "a");
  CHECK(a["summary"] == "streamed answer");
  auto& au = a["usage"][0];
  CHECK(au["model"] == "llama3");
  // The server counts cached prompt tokens among the prompt's: they are
  // taken out of fresh input and billed at their own price.
  CHECK(au["input_tokens"] == 200);
  CHECK(au["cache_read_tokens"] == 100);
  CHECK(au["output_tokens"] == 20);
  CHECK(au["cost_usd"].get<double>()
        == Approx((200 * 0.5 + 100 * 0.25 + 20 * 1) / 1e6));
  CHECK(test::workstream_of(report, "b")["summary"] == "whole answer");
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  for (auto& q : reqs) {
    CHECK(q["target"] == "/v1/chat/completions");
    CHECK(q["headers"]["authorization"] == std::string{"Bearer "} + secret_key);
    CHECK(q["body"]["model"] == "llama3");
    CHECK(q["body"]["messages"][0]["role"] == "system");
    CHECK(q["body"]["messages"][1]["role"] == "user");
  }
  CHECK(r.cli.out.find(secret_key) == std::string::npos);
  CHECK(r.report.dump().find(secret_key) == std::string::npos);
}

TEST_CASE("an unreachable provider fails the attempt, naming where",
          "[integration][llm]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", R"(name: nowhere
workstreams:
  - {id: a, prompt: "anyone?", timeout_s: 20, executor: {kind: anthropic}}
)");
  // Nothing listens there: every try is refused at once.
  auto port = closed_port();
  auto r = run_quietly(dir, plan,
                       "export ANTHROPIC_BASE_URL=http://127.0.0.1:" + port
                         + "; ");
  INFO(r.cli.out << r.cli.err);
  CHECK(r.cli.exit_code == 1);
  auto& w = test::workstream_of(r.report, "a");
  CHECK(w["status"] == "failed");
  CHECK(w["summary"].get<std::string>().find("cannot connect to 127.0.0.1:"
                                             + port)
        != std::string::npos);

  // A base URL that can never work fails at once, saying so.
  auto bad = run_quietly(dir, plan, "export ANTHROPIC_BASE_URL=ftp://example; ");
  CHECK(bad.cli.exit_code == 1);
  auto& b = test::workstream_of(bad.report, "a");
  CHECK(b["summary"]
        == "anthropic: bad base URL: not an http:// or https:// URL: "
           "\"ftp://example/v1/messages\"");
  CHECK(b["output"].get<std::string>().find("try 1") == std::string::npos);
}
