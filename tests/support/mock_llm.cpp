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
// are listed at `decode_rule` below.
//
// Standalone on purpose: Boost headers, nlohmann_json and OpenSSL, no troupe.

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using ojson = nlohmann::ordered_json;

namespace {

constexpr std::uint64_t max_body_bytes = 32ull * 1024 * 1024;
constexpr std::uint32_t max_header_bytes = 1024 * 1024;
// Deeper JSON is logged as a string: parsing, copying and dumping recurse.
constexpr int max_json_depth = 256;
// Clients keep connections open between requests; a test is shorter.
constexpr auto idle_timeout = std::chrono::seconds(600);
constexpr auto io_timeout = std::chrono::seconds(60);
constexpr auto linger_timeout = std::chrono::seconds(5);
constexpr auto accept_backoff = std::chrono::milliseconds(100);
constexpr std::int64_t max_delay_ms = 24 * 3600 * 1000;
constexpr std::size_t default_chunk_text = 16;
constexpr const char* program = "troupe_mock_llm";

/// Dumps `j` compactly; text from outside may be invalid UTF-8.
std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

/// The deepest nesting of arrays and objects in `text`, read as JSON.
int nesting_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

/// Parses a request body; a discarded value if it is not (reasonable) JSON.
ojson parse_body(const std::string& text) {
  if (nesting_depth(text) > max_json_depth)
    return ojson(ojson::value_t::discarded);
  return ojson::parse(text, nullptr, false);
}

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// Cuts `text` into pieces of at most `size` bytes, never inside a UTF-8
/// character (a character longer than `size` makes a piece of its own).
/// A size of 0 keeps the text whole.
std::vector<std::string> split_utf8(const std::string& text, std::size_t size) {
  std::vector<std::string> pieces;
  if (size == 0) {
    if (!text.empty())
      pieces.push_back(text);
    return pieces;
  }
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = std::min(text.size(), pos + size);
    while (end > pos && end < text.size() && is_continuation_byte(text[end]))
      --end;
    if (end == pos) {
      end = pos + 1;
      while (end < text.size() && is_continuation_byte(text[end]))
        ++end;
    }
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

std::int64_t count_words(std::string_view text) {
  std::int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
                 || c == '\v';
    if (!space && !in_word)
      ++words;
    in_word = !space;
  }
  return words;
}

// -- the script ---------------------------------------------------------------

enum class route { other, messages, chat, count_tokens };

struct tool_call {
  std::string name;
  ojson input = ojson::object();
};

struct usage_spec {
  std::optional<std::int64_t> input_tokens;
  std::optional<std::int64_t> output_tokens;
  std::optional<std::int64_t> cache_creation_input_tokens;
  std::optional<std::int64_t> cache_read_input_tokens;
};

struct error_spec {
  std::string type = "api_error";
  std::string message = "mock error";
};

/// How to answer one request; empty fields take the automatic reply's values.
struct reply_spec {
  std::optional<unsigned> status;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
  std::optional<std::string> body;
  std::optional<error_spec> error;
  std::optional<std::string> text;
  std::vector<tool_call> tool_calls;
  usage_spec usage;
  std::optional<std::string> model;
  std::optional<std::string> stop_reason;
  std::optional<bool> stream;
  std::optional<std::size_t> cut_after_events;
  std::chrono::milliseconds event_delay{0};
  std::size_t chunk_text = default_chunk_text;
};

struct rule {
  std::int64_t uses_left = 1; // -1: unlimited
  std::optional<route> path;
  std::optional<std::string> match;
  std::optional<std::string> unless;
  reply_spec reply;
};

/// Problems found in a script, each "path: what", all of them.
struct diagnostics {
  std::vector<std::string> items;

  void add(const std::string& path, const std::string& what) {
    items.push_back(path.empty() ? what : path + ": " + what);
  }
};

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void reject_unknown_keys(const ojson& j, const std::string& path,
                         std::initializer_list<std::string_view> known,
                         diagnostics& out) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end())
      out.add(join(path, it.key()), "unknown key");
}

const ojson* find_field(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

void read_int(const ojson& j, const std::string& path, const char* key,
              std::int64_t min, std::int64_t max,
              std::optional<std::int64_t>& value, diagnostics& out) {
  auto* v = find_field(j, key);
  if (v == nullptr)
    return;
  if (v->is_number_integer()
      && !(v->is_number_unsigned()
           && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))) {
    auto x = v->get<std::int64_t>();
    if (x >= min && x <= max) {
      value = x;
      return;
    }
  }
  out.add(join(path, key), "must be an integer from " + std::to_string(min)
                               + " to " + std::to_string(max));
}

void read_string(const ojson& j, const std::string& path, const char* key,
                 std::optional<std::string>& value, diagnostics& out) {
  auto* v = find_field(j, key);
  if (v == nullptr)
    return;
  if (v->is_string())
    value = v->get<std::string>();
  else
    out.add(join(path, key), "must be a string");
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0
         || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

void decode_headers(const ojson& j, const std::string& path, reply_spec& reply,
                    diagnostics& out) {
  if (!j.is_object())
    return out.add(path, "must be an object of header names and values");
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto where = path + "." + it.key();
    const auto& name = it.key();
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      out.add(where, "not a valid header name");
      continue;
    }
    std::string value;
    if (it->is_string())
      value = it->get<std::string>();
    else if (it->is_number() || it->is_boolean())
      value = it->dump();
    else {
      out.add(where, "must be a string or a number");
      continue;
    }
    if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      out.add(where, "must not contain CR, LF or NUL");
      continue;
    }
    reply.headers.emplace_back(name, value);
  }
}

void decode_error(const ojson& j, const std::string& path, reply_spec& reply,
                  diagnostics& out) {
  if (!j.is_object())
    return out.add(path, "must be an object with \"type\" and \"message\"");
  reject_unknown_keys(j, path, {"type", "message"}, out);
  std::optional<std::string> type;
  std::optional<std::string> message;
  read_string(j, path, "type", type, out);
  read_string(j, path, "message", message, out);
  error_spec e;
  if (type)
    e.type = *type;
  if (message)
    e.message = *message;
  reply.error = e;
}

void decode_tool_calls(const ojson& j, const std::string& path,
                       reply_spec& reply, diagnostics& out) {
  if (!j.is_array())
    return out.add(path, "must be an array of {\"name\", \"input\"}");
  for (std::size_t i = 0; i < j.size(); ++i) {
    auto where = path + "[" + std::to_string(i) + "]";
    const auto& call = j[i];
    if (!call.is_object()) {
      out.add(where, "must be an object with \"name\" and \"input\"");
      continue;
    }
    reject_unknown_keys(call, where, {"name", "input"}, out);
    std::optional<std::string> name;
    read_string(call, where, "name", name, out);
    if (!call.contains("name"))
      out.add(where + ".name", "missing");
    tool_call tc;
    if (name)
      tc.name = *name;
    if (auto* input = find_field(call, "input")) {
      if (input->is_object())
        tc.input = *input;
      else
        out.add(where + ".input", "must be an object");
    }
    reply.tool_calls.push_back(std::move(tc));
  }
}

void decode_usage(const ojson& j, const std::string& path, reply_spec& reply,
                  diagnostics& out) {
  if (!j.is_object())
    return out.add(path, "must be an object of token counts");
  reject_unknown_keys(j, path,
                      {"input_tokens", "output_tokens",
                       "cache_creation_input_tokens",
                       "cache_read_input_tokens"},
                      out);
  constexpr auto max = std::int64_t{1} << 52;
  auto& u = reply.usage;
  read_int(j, path, "input_tokens", 0, max, u.input_tokens, out);
  read_int(j, path, "output_tokens", 0, max, u.output_tokens, out);
  read_int(j, path, "cache_creation_input_tokens", 0, max,
           u.cache_creation_input_tokens, out);
  read_int(j, path, "cache_read_input_tokens", 0, max,
           u.cache_read_input_tokens, out);
}

/// Reads one rule:
///   times (uses, default 1, -1 unlimited), path ("messages" | "chat"),
///   match / unless (substrings of the raw request body),
///   status, headers, delay_ms, body (raw), error {type, message}, text,
///   tool_calls [{name, input}], usage {input_tokens, output_tokens,
///   cache_creation_input_tokens, cache_read_input_tokens}, model,
///   stop_reason, stream, cut_after_events, event_delay_ms, chunk_text.
void decode_rule(const ojson& j, const std::string& path, rule& r,
                 diagnostics& out) {
  if (!j.is_object())
    return out.add(path, "must be an object");
  reject_unknown_keys(j, path,
                      {"times", "path", "match", "unless", "status", "headers",
                       "delay_ms", "body", "error", "text", "tool_calls",
                       "usage", "model", "stop_reason", "stream",
                       "cut_after_events", "event_delay_ms", "chunk_text"},
                      out);
  std::optional<std::int64_t> n;
  read_int(j, path, "times", -1, INT64_MAX, n, out);
  if (n)
    r.uses_left = *n;
  std::optional<std::string> s;
  read_string(j, path, "path", s, out);
  if (s) {
    if (*s == "messages")
      r.path = route::messages;
    else if (*s == "chat")
      r.path = route::chat;
    else
      out.add(join(path, "path"), "must be \"messages\" or \"chat\"");
  }
  read_string(j, path, "match", r.match, out);
  read_string(j, path, "unless", r.unless, out);
  auto& reply = r.reply;
  n.reset();
  read_int(j, path, "status", 100, 599, n, out);
  if (n)
    reply.status = static_cast<unsigned>(*n);
  if (auto* h = find_field(j, "headers"))
    decode_headers(*h, join(path, "headers"), reply, out);
  n.reset();
  read_int(j, path, "delay_ms", 0, max_delay_ms, n, out);
  if (n)
    reply.delay = std::chrono::milliseconds(*n);
  read_string(j, path, "body", reply.body, out);
  if (auto* e = find_field(j, "error"))
    decode_error(*e, join(path, "error"), reply, out);
  read_string(j, path, "text", reply.text, out);
  if (auto* t = find_field(j, "tool_calls"))
    decode_tool_calls(*t, join(path, "tool_calls"), reply, out);
  if (auto* u = find_field(j, "usage"))
    decode_usage(*u, join(path, "usage"), reply, out);
  read_string(j, path, "model", reply.model, out);
  read_string(j, path, "stop_reason", reply.stop_reason, out);
  if (auto* st = find_field(j, "stream")) {
    if (st->is_boolean())
      reply.stream = st->get<bool>();
    else
      out.add(join(path, "stream"), "must be true or false");
  }
  n.reset();
  read_int(j, path, "cut_after_events", 0, INT32_MAX, n, out);
  if (n)
    reply.cut_after_events = static_cast<std::size_t>(*n);
  n.reset();
  read_int(j, path, "event_delay_ms", 0, max_delay_ms, n, out);
  if (n)
    reply.event_delay = std::chrono::milliseconds(*n);
  n.reset();
  read_int(j, path, "chunk_text", 0, INT32_MAX, n, out);
  if (n)
    reply.chunk_text = static_cast<std::size_t>(*n);
}

/// Reads the script at `file` into `rules`; false (and messages on stderr
/// naming the file) if it cannot be read or is not a valid script.
bool load_script(const std::string& file, std::vector<rule>& rules) {
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    std::cerr << program << ": cannot read script " << file << ": "
              << std::strerror(errno) << "\n";
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    std::cerr << program << ": cannot read script " << file << "\n";
    return false;
  }
  auto content = text.str();
  if (nesting_depth(content) > max_json_depth) {
    std::cerr << program << ": script " << file << ": nested more than "
              << max_json_depth << " levels deep\n";
    return false;
  }
  ojson j;
  try {
    j = ojson::parse(content);
  } catch (const ojson::exception& e) {
    std::cerr << program << ": script " << file << ": " << e.what() << "\n";
    return false;
  }
  diagnostics out;
  if (!j.is_object()) {
    out.add("", "must be an object {\"rules\": [...]}");
  } else {
    reject_unknown_keys(j, "", {"rules"}, out);
    if (auto* list = find_field(j, "rules")) {
      if (!list->is_array()) {
        out.add("rules", "must be an array");
      } else {
        rules.resize(list->size());
        for (std::size_t i = 0; i < list->size(); ++i)
          decode_rule((*list)[i], "rules[" + std::to_string(i) + "]", rules[i],
                      out);
      }
    }
  }
  for (const auto& item : out.items)
    std::cerr << program << ": script " << file << ": " << item << "\n";
  return out.items.empty();
}

// -- replies ------------------------------------------------------------------

/// What the session sends: a whole body, or a header and SSE events.
struct reply_plan {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool streamed = false;
  std::vector<std::string> events;
  std::optional<std::size_t> cut_after_events;
  std::chrono::milliseconds delay{0};
  std::chrono::milliseconds event_delay{0};
};

struct request_info {
  route path = route::other;
  std::uint64_t n = 0;
  std::size_t body_bytes = 0;
  const ojson* body = nullptr; // discarded if the body is not JSON
  std::string method;
  std::string target;
};

/// The reply's content, in neither provider's shape yet.
struct reply_content {
  std::uint64_t n = 0;
  std::string model;
  std::string text;
  bool text_block = true;
  std::vector<tool_call> tools;
  std::string stop_reason;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cache_creation_input_tokens = 0;
  std::int64_t cache_read_input_tokens = 0;
};

const ojson* request_field(const request_info& rq, const char* key) {
  if (rq.body == nullptr || !rq.body->is_object())
    return nullptr;
  return find_field(*rq.body, key);
}

std::string request_model(const request_info& rq) {
  auto* m = request_field(rq, "model");
  return m != nullptr && m->is_string() ? m->get<std::string>() : "mock-model";
}

bool request_streams(const request_info& rq) {
  auto* s = request_field(rq, "stream");
  return s != nullptr && s->is_boolean() && s->get<bool>();
}

bool request_wants_usage(const request_info& rq) {
  auto* o = request_field(rq, "stream_options");
  if (o == nullptr || !o->is_object())
    return false;
  auto* u = find_field(*o, "include_usage");
  return u != nullptr && u->is_boolean() && u->get<bool>();
}

std::int64_t estimated_input_tokens(const request_info& rq) {
  return static_cast<std::int64_t>((rq.body_bytes + 3) / 4);
}

reply_content make_content(const request_info& rq, const reply_spec& spec) {
  reply_content c;
  c.n = rq.n;
  c.model = spec.model ? *spec.model : request_model(rq);
  c.tools = spec.tool_calls;
  if (spec.text)
    c.text = *spec.text;
  else if (c.tools.empty())
    c.text = "mock reply " + std::to_string(rq.n);
  c.text_block = !c.text.empty() || c.tools.empty();
  if (spec.stop_reason)
    c.stop_reason = *spec.stop_reason;
  else
    c.stop_reason = c.tools.empty() ? "end_turn" : "tool_use";
  const auto& u = spec.usage;
  c.input_tokens = u.input_tokens.value_or(estimated_input_tokens(rq));
  c.output_tokens = u.output_tokens.value_or(count_words(c.text));
  c.cache_creation_input_tokens = u.cache_creation_input_tokens.value_or(0);
  c.cache_read_input_tokens = u.cache_read_input_tokens.value_or(0);
  return c;
}

std::string tool_id(const char* prefix, std::uint64_t n, std::size_t k) {
  return prefix + std::to_string(n) + "_" + std::to_string(k + 1);
}

/// The status an error reply gets when the rule names none.
unsigned default_error_status(const std::string& type) {
  static const std::pair<const char*, unsigned> statuses[] = {
      {"invalid_request_error", 400},
      {"authentication_error", 401},
      {"permission_error", 403},
      {"not_found_error", 404},
      {"request_too_large", 413},
      {"rate_limit_error", 429},
      {"api_error", 500},
      {"overloaded_error", 529},
  };
  for (const auto& [name, status] : statuses)
    if (type == name)
      return status;
  return 500;
}

ojson anthropic_error(const std::string& type, const std::string& message) {
  return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

ojson openai_error(const std::string& type, const std::string& message) {
  return {{"error", {{"message", message}, {"type", type}, {"code", nullptr}}}};
}

reply_plan json_plan(unsigned status, const ojson& body) {
  reply_plan p;
  p.status = status;
  p.headers.emplace_back("content-type", "application/json");
  p.body = dump(body);
  return p;
}

// Anthropic Messages.

ojson anthropic_usage(const reply_content& c, std::int64_t output_tokens) {
  return {{"input_tokens", c.input_tokens},
          {"cache_creation_input_tokens", c.cache_creation_input_tokens},
          {"cache_read_input_tokens", c.cache_read_input_tokens},
          {"output_tokens", output_tokens}};
}

ojson anthropic_message(const reply_content& c, bool streamed) {
  auto content = ojson::array();
  if (!streamed) {
    if (c.text_block)
      content.push_back({{"type", "text"}, {"text", c.text}});
    for (std::size_t k = 0; k < c.tools.size(); ++k)
      content.push_back({{"type", "tool_use"},
                         {"id", tool_id("toolu_mock_", c.n, k)},
                         {"name", c.tools[k].name},
                         {"input", c.tools[k].input}});
  }
  ojson stop_reason = streamed ? ojson(nullptr) : ojson(c.stop_reason);
  return {{"id", "msg_mock_" + std::to_string(c.n)},
          {"type", "message"},
          {"role", "assistant"},
          {"model", c.model},
          {"content", std::move(content)},
          {"stop_reason", std::move(stop_reason)},
          {"stop_sequence", nullptr},
          {"usage", anthropic_usage(c, streamed ? 1 : c.output_tokens)}};
}

std::vector<std::string> anthropic_events(const reply_content& c,
                                          std::size_t chunk) {
  std::vector<std::string> events;
  auto add = [&events](const char* type, const ojson& data) {
    events.push_back(std::string("event: ") + type + "\ndata: " + dump(data)
                     + "\n\n");
  };
  add("message_start",
      {{"type", "message_start"}, {"message", anthropic_message(c, true)}});
  add("ping", {{"type", "ping"}});
  std::size_t index = 0;
  auto block = [&](const ojson& start, const char* delta_type,
                   const char* delta_key, const std::string& text) {
    add("content_block_start", {{"type", "content_block_start"},
                                {"index", index},
                                {"content_block", start}});
    for (const auto& piece : split_utf8(text, chunk))
      add("content_block_delta",
          {{"type", "content_block_delta"},
           {"index", index},
           {"delta", {{"type", delta_type}, {delta_key, piece}}}});
    add("content_block_stop",
        {{"type", "content_block_stop"}, {"index", index}});
    ++index;
  };
  if (c.text_block)
    block({{"type", "text"}, {"text", ""}}, "text_delta", "text", c.text);
  for (std::size_t k = 0; k < c.tools.size(); ++k)
    block({{"type", "tool_use"},
           {"id", tool_id("toolu_mock_", c.n, k)},
           {"name", c.tools[k].name},
           {"input", ojson::object()}},
          "input_json_delta", "partial_json", dump(c.tools[k].input));
  add("message_delta",
      {{"type", "message_delta"},
       {"delta", {{"stop_reason", c.stop_reason}, {"stop_sequence", nullptr}}},
       {"usage", {{"output_tokens", c.output_tokens}}}});
  add("message_stop", {{"type", "message_stop"}});
  return events;
}

// OpenAI chat completions.

std::string finish_reason(const std::string& stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence")
    return "stop";
  if (stop_reason == "tool_use")
    return "tool_calls";
  if (stop_reason == "max_tokens")
    return "length";
  return stop_reason;
}

ojson openai_usage(const reply_content& c) {
  return {{"prompt_tokens", c.input_tokens},
          {"completion_tokens", c.output_tokens},
          {"total_tokens", c.input_tokens + c.output_tokens},
          {"prompt_tokens_details",
           {{"cached_tokens", c.cache_read_input_tokens}}}};
}

ojson openai_tool_calls(const reply_content& c) {
  auto calls = ojson::array();
  for (std::size_t k = 0; k < c.tools.size(); ++k)
    calls.push_back(
        {{"id", tool_id("call_mock_", c.n, k)},
         {"type", "function"},
         {"function",
          {{"name", c.tools[k].name}, {"arguments", dump(c.tools[k].input)}}}});
  return calls;
}

ojson openai_completion(const reply_content& c, std::time_t created) {
  ojson message = {{"role", "assistant"},
                   {"content", c.text_block ? ojson(c.text) : ojson(nullptr)}};
  if (!c.tools.empty())
    message["tool_calls"] = openai_tool_calls(c);
  return {{"id", "chatcmpl-mock-" + std::to_string(c.n)},
          {"object", "chat.completion"},
          {"created", static_cast<std::int64_t>(created)},
          {"model", c.model},
          {"choices",
           {{{"index", 0},
             {"message", std::move(message)},
             {"finish_reason", finish_reason(c.stop_reason)}}}},
          {"usage", openai_usage(c)}};
}

std::vector<std::string> openai_events(const reply_content& c,
                                       std::size_t chunk, bool with_usage,
                                       std::time_t created) {
  std::vector<std::string> events;
  auto base = [&] {
    return ojson{{"id", "chatcmpl-mock-" + std::to_string(c.n)},
                 {"object", "chat.completion.chunk"},
                 {"created", static_cast<std::int64_t>(created)},
                 {"model", c.model}};
  };
  auto add = [&](ojson delta, ojson finish) {
    auto j = base();
    j["choices"] = {{{"index", 0},
                     {"delta", std::move(delta)},
                     {"finish_reason", std::move(finish)}}};
    events.push_back("data: " + dump(j) + "\n\n");
  };
  add({{"role", "assistant"},
       {"content", c.text_block ? ojson("") : ojson(nullptr)}},
      nullptr);
  if (c.text_block)
    for (const auto& piece : split_utf8(c.text, chunk))
      add({{"content", piece}}, nullptr);
  for (std::size_t k = 0; k < c.tools.size(); ++k) {
    add({{"tool_calls",
          {{{"index", k},
            {"id", tool_id("call_mock_", c.n, k)},
            {"type", "function"},
            {"function", {{"name", c.tools[k].name}, {"arguments", ""}}}}}}},
        nullptr);
    for (const auto& piece : split_utf8(dump(c.tools[k].input), chunk))
      add({{"tool_calls",
            {{{"index", k}, {"function", {{"arguments", piece}}}}}}},
          nullptr);
  }
  add(ojson::object(), finish_reason(c.stop_reason));
  if (with_usage) {
    auto j = base();
    j["choices"] = ojson::array();
    j["usage"] = openai_usage(c);
    events.push_back("data: " + dump(j) + "\n\n");
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

/// What to answer `rq` with, following `spec` (an empty one: the automatic
/// reply).
reply_plan make_reply(const request_info& rq, const reply_spec& spec) {
  if (rq.path == route::other)
    return json_plan(
        404, anthropic_error("not_found_error",
                             "no route for " + rq.method + " " + rq.target));
  if (rq.path == route::count_tokens)
    return json_plan(200, {{"input_tokens", estimated_input_tokens(rq)}});
  bool openai = rq.path == route::chat;
  reply_plan p;
  if (spec.body) {
    p.status = spec.status.value_or(200);
    p.headers.emplace_back("content-type", "application/json");
    p.body = *spec.body;
  } else if (spec.error) {
    const auto& e = *spec.error;
    p = json_plan(spec.status.value_or(default_error_status(e.type)),
                  openai ? openai_error(e.type, e.message)
                         : anthropic_error(e.type, e.message));
  } else {
    auto c = make_content(rq, spec);
    auto created = std::time(nullptr);
    p.status = spec.status.value_or(200);
    p.streamed = spec.stream.value_or(request_streams(rq));
    if (p.streamed) {
      p.headers.emplace_back("content-type", "text/event-stream");
      p.headers.emplace_back("cache-control", "no-cache");
      p.events = openai ? openai_events(c, spec.chunk_text,
                                        request_wants_usage(rq), created)
                        : anthropic_events(c, spec.chunk_text);
      p.cut_after_events = spec.cut_after_events;
      p.event_delay = spec.event_delay;
    } else {
      p.headers.emplace_back("content-type", "application/json");
      p.body = dump(openai ? openai_completion(c, created)
                           : anthropic_message(c, false));
    }
  }
  p.headers.emplace_back(openai ? "x-request-id" : "request-id",
                         "req_mock_" + std::to_string(rq.n));
  p.headers.insert(p.headers.end(), spec.headers.begin(), spec.headers.end());
  p.delay = spec.delay;
  return p;
}

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

// -- the server ---------------------------------------------------------------

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
  record(const http::request<http::string_body>& req, const ojson* body,
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

// -- main ---------------------------------------------------------------------

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
  std::make_shared<listener>(ioc, std::move(acceptor), srv,
                             tls ? &*tls : nullptr)
      ->run();
  std::cout << "listening on 127.0.0.1:" << port << std::endl;
  std::thread second{[&ioc] { run_io(ioc); }};
  run_io(ioc);
  second.join();
  return 0;
}
