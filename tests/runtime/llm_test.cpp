// The providers' wire formats: requests, whole replies, streams fed in
// pieces of every size, and errors.

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/runtime/http_client.hpp"
#include "troupe/runtime/llm.hpp"
#include "troupe/runtime/prompts.hpp"

using namespace troupe;
using nlohmann::json;

namespace {

std::string sse(const std::string& event, const json& data) {
  return "event: " + event + "\ndata: " + data.dump() + "\n\n";
}

// An Anthropic stream of "héllo wörld" in two deltas and one tool call.
std::string anthropic_stream() {
  std::string s;
  s += sse("message_start",
           {{"type", "message_start"},
            {"message",
             {{"model", "claude-sonnet-4-5-20250929"},
              {"usage",
               {{"input_tokens", 120},
                {"output_tokens", 1},
                {"cache_read_input_tokens", 30},
                {"cache_creation_input_tokens", 7}}}}}});
  s += ": keep-alive comment\n\n";
  s += sse("ping", {{"type", "ping"}});
  s += sse("content_block_start",
           {{"type", "content_block_start"},
            {"index", 0},
            {"content_block", {{"type", "text"}, {"text", ""}}}});
  s += sse("content_block_delta",
           {{"type", "content_block_delta"},
            {"delta", {{"type", "text_delta"}, {"text", "h\xC3\xA9llo "}}}});
  s += sse("content_block_delta",
           {{"type", "content_block_delta"},
            {"delta", {{"type", "text_delta"}, {"text", "w\xC3\xB6rld"}}}});
  s += sse("content_block_stop", {{"type", "content_block_stop"}});
  s += sse("content_block_start",
           {{"type", "content_block_start"},
            {"index", 1},
            {"content_block", {{"type", "tool_use"}, {"name", "Write"}}}});
  s += sse("content_block_delta",
           {{"type", "content_block_delta"},
            {"delta", {{"type", "input_json_delta"}, {"partial_json", "{\"a"}}}});
  s += sse("message_delta",
           {{"type", "message_delta"},
            {"delta", {{"stop_reason", "tool_use"}}},
            {"usage", {{"output_tokens", 42}}}});
  s += sse("message_stop", {{"type", "message_stop"}});
  return s;
}

std::string openai_stream() {
  std::string s;
  auto chunk = [](json delta, json finish) {
    return "data: "
           + json{{"object", "chat.completion.chunk"},
                  {"model", "llama3"},
                  {"choices",
                   json::array({{{"index", 0},
                                 {"delta", delta},
                                 {"finish_reason", finish}}})}}
               .dump()
           + "\r\n\r\n";
  };
  s += chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
  s += chunk({{"content", "h\xC3\xA9llo "}}, nullptr);
  s += chunk({{"content", "w\xC3\xB6rld"}}, nullptr);
  s += chunk(json::object(), "stop");
  s += "data: "
       + json{{"choices", json::array()},
              {"usage",
               {{"prompt_tokens", 150},
                {"completion_tokens", 9},
                {"prompt_tokens_details", {{"cached_tokens", 50}}}}}}
           .dump()
       + "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

} // namespace

TEST_CASE("URLs are taken apart, and bad ones named", "[runtime]") {
  url_parts u;
  std::string why;
  REQUIRE(parse_url("https://api.anthropic.com", u, why));
  CHECK(u.tls);
  CHECK(u.host == "api.anthropic.com");
  CHECK(u.port == "443");
  CHECK(u.target == "/");
  // An Ollama server on another machine: parsed only, nothing connects.
  REQUIRE(parse_url("http://gpu-box:11434/v1/chat/completions", u, why));
  CHECK_FALSE(u.tls);
  CHECK(u.host == "gpu-box");
  CHECK(u.port == "11434");
  CHECK(u.target == "/v1/chat/completions");
  REQUIRE(parse_url("http://[::1]:9/x", u, why));
  CHECK(u.host == "::1");
  CHECK(u.port == "9");
  for (auto bad : {"ftp://x", "http://", "http://h:0", "http://h:99999",
                   "http://h:8a", "http://user:pw@h/", "http://[::1/x",
                   "localhost:80"}) {
    INFO(bad);
    CHECK_FALSE(parse_url(bad, u, why));
    CHECK_FALSE(why.empty());
    why.clear();
  }
}

TEST_CASE("requests are shaped as each provider wants", "[runtime]") {
  llm_question q{"m1", "be brief", "say hi", 100, true};
  auto a = json::parse(llm_request_body(llm_provider::anthropic, q));
  CHECK(a["model"] == "m1");
  CHECK(a["max_tokens"] == 100);
  CHECK(a["system"] == "be brief");
  CHECK(a["messages"] == json::parse(R"([{"role":"user","content":"say hi"}])"));
  CHECK(a["stream"] == true);
  auto o = json::parse(llm_request_body(llm_provider::openai, q));
  CHECK(o["messages"][0] == json::parse(R"({"role":"system","content":"be brief"})"));
  CHECK(o["messages"][1]["content"] == "say hi");
  CHECK(o["stream_options"]["include_usage"] == true);
  q.stream = false;
  CHECK_FALSE(json::parse(llm_request_body(llm_provider::openai, q)).contains("stream"));
  // Invalid UTF-8 in a prompt does not throw: it is replaced.
  q.prompt = "bad \xFF byte";
  CHECK(json::parse(llm_request_body(llm_provider::anthropic, q))["messages"][0]
                                                                 ["content"]
        == "bad \xEF\xBF\xBD byte");
  auto h = llm_headers(llm_provider::anthropic, "sk-secret");
  CHECK(std::find(h.begin(), h.end(), std::pair<std::string, std::string>{
                                        "x-api-key", "sk-secret"})
        != h.end());
  CHECK(std::find(h.begin(), h.end(), std::pair<std::string, std::string>{
                                        "anthropic-version", "2023-06-01"})
        != h.end());
  auto ho = llm_headers(llm_provider::openai, "sk-secret");
  CHECK(std::find(ho.begin(), ho.end(), std::pair<std::string, std::string>{
                                          "authorization", "Bearer sk-secret"})
        != ho.end());
  CHECK(llm_headers(llm_provider::openai, "").size() == 1);
}

TEST_CASE("a reply's lone surrogates read as U+FFFD, and what is nested too "
          "deep is dropped, not built",
          "[runtime]") {
  // JavaScript writes a string cut between the halves of a pair so; a
  // whole pair, and escaped backslashes before a `u`, stay as they are.
  auto a = parse_llm_reply(llm_provider::anthropic, R"({
    "content": [{"type": "text",
                 "text": "a\ud800b\udc00c\ud83d\ude00d\\ud800e\ud800"}],
    "usage": {"input_tokens": 1}})");
  CHECK(a.error.empty());
  CHECK(a.text
        == "a\xEF\xBF\xBD"
           "b\xEF\xBF\xBD"
           "c\xF0\x9F\x98\x80"
           "d\\ud800e"
           "\xEF\xBF\xBD");
  // A tool call's input a million levels deep: the rest of the reply is
  // read, the depths are not.
  std::string deep
    = R"({"content": [{"type": "tool_use", "name": "Deep", "input": )"
      + std::string(1'000'000, '[') + std::string(1'000'000, ']')
      + R"(}, {"type": "text", "text": "after"}], "usage": {"output_tokens": 7}})";
  auto d = parse_llm_reply(llm_provider::anthropic, deep);
  CHECK(d.error.empty());
  CHECK(d.text == "after");
  CHECK(d.tool_calls == std::vector<std::string>{"Deep"});
  CHECK(d.output_tokens == 7);
  // Not JSON stays not JSON.
  CHECK_FALSE(parse_llm_reply(llm_provider::anthropic, "{\"a\": \"\\ud800")
                .error.empty());
}

TEST_CASE("whole replies give text, stop reason and every kind of token",
          "[runtime]") {
  auto a = parse_llm_reply(llm_provider::anthropic, R"({
    "model": "claude-haiku-4-5", "stop_reason": "end_turn",
    "content": [{"type": "text", "text": "one "}, {"type": "tool_use", "name": "Read"},
                {"type": "text", "text": "two"}],
    "usage": {"input_tokens": 10, "output_tokens": 5,
              "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}})");
  CHECK(a.error.empty());
  CHECK(a.complete);
  CHECK(a.text == "one two");
  CHECK(a.tool_calls == std::vector<std::string>{"Read"});
  CHECK(a.input_tokens == 10);
  CHECK(a.output_tokens == 5);
  CHECK(a.cache_read_tokens == 3);
  CHECK(a.cache_write_tokens == 2);
  auto o = parse_llm_reply(llm_provider::openai, R"({
    "model": "llama3", "choices": [{"message": {"content": "hi",
      "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
      "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 4,
              "prompt_tokens_details": {"cached_tokens": 15}}})");
  CHECK(o.complete);
  CHECK(o.text == "hi");
  CHECK(o.stop_reason == "tool_calls");
  CHECK(o.tool_calls == std::vector<std::string>{"f"});
  // Cached prompt tokens are billed apart from fresh ones.
  CHECK(o.input_tokens == 5);
  CHECK(o.cache_read_tokens == 15);
  CHECK(o.output_tokens == 4);
}

TEST_CASE("malformed replies are errors, never exceptions", "[runtime]") {
  for (auto p : {llm_provider::anthropic, llm_provider::openai}) {
    for (std::string body : std::vector<std::string>{
           "", "not json", "[1,2]", "{\"content\": 3}", "{\"choices\": []}",
          "{\"choices\": [{\"message\": {\"content\": 7}}], \"usage\": "
          "{\"prompt_tokens\": \"x\", \"completion_tokens\": -5}}",
          "{\"content\": [{\"type\": \"text\", \"text\": null}], \"usage\": "
          "{\"input_tokens\": 1e300, \"output_tokens\": -1}}",
          std::string("\xFF\xFE{}", 4)}) {
      INFO(body);
      llm_reply r;
      CHECK_NOTHROW(r = parse_llm_reply(p, body));
      CHECK(r.input_tokens >= 0);
      CHECK(r.output_tokens >= 0);
    }
  }
  CHECK_FALSE(parse_llm_reply(llm_provider::anthropic, "{oops").error.empty());
  CHECK_FALSE(parse_llm_reply(llm_provider::openai, "{\"choices\": []}")
                .error.empty());
}

TEST_CASE("a stream read in pieces of any size gives the same reply",
          "[runtime]") {
  for (auto [p, text] : {std::pair{llm_provider::anthropic, anthropic_stream()},
                         std::pair{llm_provider::openai, openai_stream()}}) {
    for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7},
                         size_t{64}, text.size()}) {
      CAPTURE(to_string(p), piece);
      llm_stream_reader reader{p};
      for (size_t i = 0; i < text.size(); i += piece)
        reader.feed(std::string_view{text}.substr(i, piece));
      auto& r = reader.reply();
      CHECK(r.complete);
      CHECK(r.error.empty());
      CHECK(r.text == "h\xC3\xA9llo w\xC3\xB6rld");
      if (p == llm_provider::anthropic) {
        CHECK(r.model == "claude-sonnet-4-5-20250929");
        CHECK(r.input_tokens == 120);
        CHECK(r.output_tokens == 42);
        CHECK(r.cache_read_tokens == 30);
        CHECK(r.cache_write_tokens == 7);
        CHECK(r.stop_reason == "tool_use");
        CHECK(r.tool_calls == std::vector<std::string>{"Write"});
      } else {
        CHECK(r.model == "llama3");
        CHECK(r.input_tokens == 100);
        CHECK(r.cache_read_tokens == 50);
        CHECK(r.output_tokens == 9);
        CHECK(r.stop_reason == "stop");
      }
    }
  }
}

TEST_CASE("a stream cut anywhere is incomplete, and keeps what it counted",
          "[runtime]") {
  auto text = anthropic_stream();
  auto stop = text.find("event: message_stop");
  for (size_t cut = 0; cut < stop; cut += 13) {
    llm_stream_reader reader{llm_provider::anthropic};
    reader.feed(std::string_view{text}.substr(0, cut));
    CHECK_FALSE(reader.reply().complete);
  }
  llm_stream_reader reader{llm_provider::anthropic};
  reader.feed(std::string_view{text}.substr(0, stop));
  CHECK(reader.reply().input_tokens == 120);
  CHECK(reader.reply().output_tokens == 42);
}

TEST_CASE("errors inside a stream say what and whether to try again",
          "[runtime]") {
  llm_stream_reader a{llm_provider::anthropic};
  a.feed("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
         "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
  CHECK(a.reply().error == "error in the stream (overloaded_error): Overloaded");
  CHECK(a.reply().transient);
  llm_stream_reader o{llm_provider::openai};
  o.feed("data: {\"error\":{\"message\":\"context too long\",\"type\":"
         "\"invalid_request_error\"}}\n\n");
  CHECK(o.reply().error.find("context too long") != std::string::npos);
  CHECK_FALSE(o.reply().transient);
  llm_stream_reader junk{llm_provider::openai};
  junk.feed("data: {not json\n\n");
  CHECK_FALSE(junk.reply().error.empty());
  // One endless line is bounded.
  llm_stream_reader endless{llm_provider::anthropic};
  std::string mb(1 << 20, 'x');
  for (int i = 0; i < 10; ++i)
    endless.feed(mb);
  CHECK(endless.reply().error.find("longer than") != std::string::npos);
}

TEST_CASE("the provider's error message is the one reported", "[runtime]") {
  CHECK(llm_error_message(llm_provider::anthropic, 401,
                          R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})")
        == "HTTP 401 authentication_error: invalid x-api-key");
  CHECK(llm_error_message(llm_provider::openai, 404,
                          R"({"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}})")
        == "HTTP 404 invalid_request_error: The model `x` does not exist");
  CHECK(llm_error_message(llm_provider::openai, 502, "<html>Bad gateway</html>")
        == "HTTP 502: <html>Bad gateway</html>");
  CHECK(llm_error_message(llm_provider::anthropic, 500, "")
        == "HTTP 500 with an empty body");
  CHECK(llm_error_message(llm_provider::anthropic, 500, std::string(5000, 'z'))
          .size()
        < 600);
}

TEST_CASE("an agent's prompt carries the handoff and earlier failures",
          "[runtime]") {
  auto ctx = R"({
    "dependencies": [{"id": "types", "status": "succeeded", "summary": "made types",
                      "files_changed": ["a.ts"], "outputs": {"reply": "User, Token"}}],
    "previous_attempts": [{"attempt": 1, "status": "failed", "summary": "HTTP 500",
                           "output": "boom"}],
    "gate": {"id": "g", "checks": [{"name": "tests", "passed": false, "detail": "1 failed"},
                                   {"name": "completion", "passed": true, "detail": ""}]}})";
  auto p = agent_prompt("Write jwt.ts.", ctx);
  CHECK(p.rfind("Write jwt.ts.\n", 0) == 0);
  CHECK(p.find("### types (succeeded)\nmade types") != std::string::npos);
  CHECK(p.find("Files changed: a.ts") != std::string::npos);
  CHECK(p.find("Output reply:\nUser, Token") != std::string::npos);
  CHECK(p.find("### Attempt 1 (failed): HTTP 500\n```\nboom") != std::string::npos);
  CHECK(p.find("### tests\n```\n1 failed") != std::string::npos);
  CHECK(p.find("completion") == std::string::npos);
  CHECK(agent_prompt("just this", "") == "just this");
  CHECK(agent_prompt("just this", "{}") == "just this");
  CHECK(agent_prompt("x", "[1]") == "x");
  CHECK_NOTHROW(agent_prompt("x", R"({"dependencies": [1, {"id": 2}], "gate": 3})"));
}

TEST_CASE("the synthesis agent's prompt says how the work ended, and every "
          "gate's verdict",
          "[runtime]") {
  auto ctx = R"({
    "outcome": "blocked: 1 of 3 workstreams succeeded, 0 of 1 gates passed",
    "dependencies": [{"id": "a", "status": "succeeded", "summary": "did a"}],
    "left_out": 2,
    "gates": [{"id": "g", "status": "failed",
               "checks": [{"name": "completion", "passed": true, "detail": ""},
                          {"name": "run: make test", "passed": false,
                           "detail": "2 tests failed"}]},
              7, {"id": "h", "checks": "none"}]})";
  auto p = agent_prompt("Sum it up.", ctx);
  CHECK(p.rfind("Sum it up.\n\n## How the run's work ended\nblocked: 1 of 3 "
                "workstreams succeeded, 0 of 1 gates passed\n",
                0)
        == 0);
  CHECK(p.find("### a (succeeded)\ndid a\n\n2 more results do not fit here; "
               "the run's report lists them.\n")
        != std::string::npos);
  CHECK(p.find("## Gates\n\n### g (failed)\n- completion: passed\n- run: make "
               "test: failed\n```\n2 tests failed\n```\n\n### h ()\n")
        != std::string::npos);
  // What is not a count, or not there, adds nothing.
  CHECK(agent_prompt("x", R"({"left_out": "many", "outcome": 3})") == "x");
}

TEST_CASE("an agent's budget bounds the reply it asks for", "[runtime]") {
  llm_question q;
  q.system = std::string(270, 's');
  q.prompt = std::string(30, 'p');
  q.max_tokens = 8192;
  std::string why;
  // No budget, or no price for the reply: nothing changes.
  REQUIRE(fit_to_budget(q, 0, 1, 1, why));
  REQUIRE(fit_to_budget(q, 1, 1, 0, why));
  CHECK(q.max_tokens == 8192);
  // The prompt: 300 bytes, 116 tokens at most; at $1,000 a million in,
  // $0.116. What is left pays for the reply at $2,000 a million out.
  REQUIRE(fit_to_budget(q, 0.2, 1000, 2000, why));
  CHECK(q.max_tokens == 42);
  // A budget the prompt alone would pass.
  auto r = q;
  CHECK_FALSE(fit_to_budget(r, 0.1, 1000, 2000, why));
  CHECK(why == "its budget of $0.100000 cannot pay for its prompt (about 116 "
               "tokens) and a reply");
  // Never more than asked for.
  q.max_tokens = 10;
  REQUIRE(fit_to_budget(q, 100, 1000, 2000, why));
  CHECK(q.max_tokens == 10);
}
