// The stand-in LLM server's replies in each provider's shape.

#include "mock_llm/replies.hpp"

#include <algorithm>
#include <ctime>

namespace troupe::mock {

namespace {

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

ojson openai_error(const std::string& type, const std::string& message) {
  return {{"error", {{"message", message}, {"type", type}, {"code", nullptr}}}};
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

} // namespace

ojson anthropic_error(const std::string& type, const std::string& message) {
  return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

reply_plan json_plan(unsigned status, const ojson& body) {
  reply_plan p;
  p.status = status;
  p.headers.emplace_back("content-type", "application/json");
  p.body = dump(body);
  return p;
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

} // namespace troupe::mock
