// How far `anthropic` and `openai` agents got, as they go: the real
// `troupe` against the stand-in LLM server, its events read back.

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

// The messages of `subject`'s ws_progress events, in order.
std::vector<std::string> progress_of(const fs::path& events,
                                     const std::string& subject) {
  std::vector<std::string> out;
  for (auto& line : test::split_lines(test::read_text(events))) {
    auto e = json::parse(line);
    if (e["kind"] == "ws_progress" && e["subject"] == subject)
      out.push_back(e["message"]);
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

} // namespace

TEST_CASE("agents that ask an LLM API tell how far they got: each try that "
          "failed, and a streamed reply as it comes",
          "[integration][llm]") {
  test::temp_dir dir;
  constexpr auto key = "sk-progress-k3y-never-printed";
  json script
    = {{"rules",
        {{{"match", "busy first"},
          {"status", 529},
          {"headers", {{"retry-after", "0"}}},
          {"error",
           {{"type", "overloaded_error"},
            {"message", std::string{"Overloaded; your key "} + key}}}},
         {{"match", "busy first"},
          {"text", "answered at last"},
          {"usage",
           {{"input_tokens", 1000},
            {"output_tokens", 20},
            {"cache_read_input_tokens", 300},
            {"cache_creation_input_tokens", 100}}}},
         {{"match", "whole"},
          {"text", "whole answer"},
          {"usage", {{"input_tokens", 5}, {"output_tokens", 2}}}},
         {{"match", "local"},
          {"text", "a local answer"},
          {"usage", {{"input_tokens", 9}, {"output_tokens", 3}}}}}}};
  // Apart, as its script holds the key.
  test::temp_dir mock_dir;
  test::mock_llm mock{mock_dir.path(), script};
  auto plan = dir.write("plan.yaml", R"(name: progress
workstreams:
  - {id: streamed, prompt: "busy first", executor: {kind: anthropic}}
  - {id: whole, prompt: "whole", executor: {kind: anthropic, stream: false}}
  - {id: local, prompt: "local", executor: {kind: openai, model: llama3}}
)");
  auto events = dir.path() / "events.jsonl";
  auto r = test::run_troupe(
    {"run", plan, "--no-journal", "--events", events.string(), "--report",
     (dir.path() / "report.json").string()},
    dir.str(),
    "export ANTHROPIC_BASE_URL=" + sh_quote(mock.url()) + " ANTHROPIC_API_KEY="
      + key + " OPENAI_BASE_URL=" + sh_quote(mock.url() + "/v1") + "; ");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);

  // The busy provider's answer, then the second try's stream as it began,
  // its input tokens known from its first event; the key never shows.
  auto streamed = progress_of(events, "streamed");
  REQUIRE(streamed.size() >= 2);
  CHECK(streamed[0]
        == "try 1 failed (HTTP 529 overloaded_error: Overloaded; your key "
           "[redacted]): trying again in 0.0 s");
  CHECK(
    starts_with(streamed[1], "try 2: streaming the reply, 1400 tokens in, "));
  CHECK(streamed[1].find(" bytes out") != std::string::npos);
  CHECK(r.err.find("workstream streamed running (attempt 1, node local): try "
                   "2: streaming the reply")
        != std::string::npos);

  // An OpenAI-compatible stream tells its input tokens only at its end.
  auto local = progress_of(events, "local");
  REQUIRE_FALSE(local.empty());
  CHECK(starts_with(local[0], "streaming the reply, "));
  CHECK(local[0].find(" bytes out") != std::string::npos);

  // A reply asked for whole has nothing to tell until it is there.
  CHECK(progress_of(events, "whole").empty());

  CHECK(r.out.find(key) == std::string::npos);
  CHECK(r.err.find(key) == std::string::npos);
  CHECK(test::text_under(dir.path()).find(key) == std::string::npos);
}
