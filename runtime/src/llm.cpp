#include "troupe/runtime/llm.hpp"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "json_fields.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

using nlohmann::json;
using detail::count_of;
using detail::field;
using detail::text_of;

namespace {

// Bytes one server-sent event may take; a longer one ends the stream.
constexpr size_t sse_event_limit = 8 << 20;

void append_text(llm_reply& r, std::string_view s) {
  if (r.text.size() >= llm_text_limit)
    return;
  r.text.append(s.substr(0, llm_text_limit - r.text.size()));
}

// Anthropic's usage: fresh input, output, and the cache's reads and
// writes, each its own count. Fields a message omits keep their value.
void anthropic_usage(const json& u, llm_reply& r) {
  if (!u.is_object())
    return;
  if (field(u, "input_tokens"))
    r.input_tokens = count_of(u, "input_tokens");
  if (field(u, "output_tokens"))
    r.output_tokens = count_of(u, "output_tokens");
  if (field(u, "cache_read_input_tokens"))
    r.cache_read_tokens = count_of(u, "cache_read_input_tokens");
  if (field(u, "cache_creation_input_tokens"))
    r.cache_write_tokens = count_of(u, "cache_creation_input_tokens");
}

// OpenAI's usage: prompt tokens include the cached ones, which are billed
// apart.
void openai_usage(const json& u, llm_reply& r) {
  if (!u.is_object())
    return;
  auto prompt = count_of(u, "prompt_tokens");
  int64_t cached = 0;
  if (auto d = field(u, "prompt_tokens_details"))
    cached = std::min(count_of(*d, "cached_tokens"), prompt);
  r.input_tokens = prompt - cached;
  r.cache_read_tokens = cached;
  r.output_tokens = count_of(u, "completion_tokens");
}

void anthropic_content(const json& content, llm_reply& r) {
  if (!content.is_array())
    return;
  for (auto& block : content) {
    auto type = text_of(block, "type");
    if (type == "text")
      append_text(r, text_of(block, "text"));
    else if (type == "tool_use")
      r.tool_calls.push_back(text_of(block, "name"));
  }
}

void openai_tool_calls(const json& calls, llm_reply& r) {
  if (!calls.is_array())
    return;
  for (auto& c : calls) {
    auto fn = field(c, "function");
    auto name = fn ? text_of(*fn, "name") : "";
    if (!name.empty())
      r.tool_calls.push_back(name);
  }
}

// Parses one streamed event's data; one that is not JSON is the reply's
// first error.
bool parse_event(std::string_view data, json& j, llm_reply& r) {
  j = detail::parse_outside(data);
  if (!j.is_discarded())
    return true;
  if (r.error.empty())
    r.error = "a streamed event is not JSON: "
              + utf8_clip(valid_utf8(data.substr(0, 300)), 200);
  return false;
}

bool transient_error_type(const std::string& type) {
  return type == "overloaded_error" || type == "api_error"
         || type == "rate_limit_error" || type == "server_error";
}

} // namespace

std::string to_string(llm_provider x) {
  return x == llm_provider::anthropic ? "anthropic" : "openai";
}

bool fit_to_budget(llm_question& q, double budget_usd, double input_price,
                   double output_price, std::string& why) {
  if (budget_usd <= 0 || output_price <= 0)
    return true;
  auto prompt_tokens = static_cast<double>(q.system.size() + q.prompt.size()) / 3
                       + 16;
  auto left = budget_usd - prompt_tokens * input_price / 1e6;
  auto reply_tokens = left > 0 ? std::floor(left / (output_price / 1e6)) : 0;
  if (reply_tokens < 1) {
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  "its budget of $%.6f cannot pay for its prompt (about %.0f "
                  "tokens) and a reply",
                  budget_usd, prompt_tokens);
    why = buf;
    return false;
  }
  if (reply_tokens < q.max_tokens)
    q.max_tokens = static_cast<int32_t>(reply_tokens);
  return true;
}

std::string llm_path(llm_provider p) {
  return p == llm_provider::anthropic ? "/v1/messages" : "/chat/completions";
}

std::vector<std::pair<std::string, std::string>>
llm_headers(llm_provider p, const std::string& api_key) {
  std::vector<std::pair<std::string, std::string>> h{
    {"content-type", "application/json"}};
  if (p == llm_provider::anthropic) {
    h.emplace_back("anthropic-version", "2023-06-01");
    if (!api_key.empty())
      h.emplace_back("x-api-key", api_key);
  } else if (!api_key.empty()) {
    h.emplace_back("authorization", "Bearer " + api_key);
  }
  return h;
}

std::string llm_request_body(llm_provider p, const llm_question& q) {
  json j;
  j["model"] = q.model;
  j["max_tokens"] = q.max_tokens;
  if (p == llm_provider::anthropic) {
    if (!q.system.empty())
      j["system"] = q.system;
    j["messages"] = json::array({{{"role", "user"}, {"content", q.prompt}}});
  } else {
    auto messages = json::array();
    if (!q.system.empty())
      messages.push_back({{"role", "system"}, {"content", q.system}});
    messages.push_back({{"role", "user"}, {"content", q.prompt}});
    j["messages"] = std::move(messages);
  }
  if (q.stream) {
    j["stream"] = true;
    if (p == llm_provider::openai)
      j["stream_options"] = {{"include_usage", true}};
  }
  return json_text(j);
}

llm_reply parse_llm_reply(llm_provider p, std::string_view body) {
  llm_reply r;
  auto j = detail::parse_outside(body);
  if (j.is_discarded() || !j.is_object()) {
    r.error = "the reply is not a JSON object: "
              + utf8_clip(valid_utf8(body.substr(0, 300)), 200);
    return r;
  }
  r.model = text_of(j, "model");
  if (p == llm_provider::anthropic) {
    if (auto c = field(j, "content"))
      anthropic_content(*c, r);
    else
      r.error = "the reply has no content";
    r.stop_reason = text_of(j, "stop_reason");
    if (auto u = field(j, "usage"))
      anthropic_usage(*u, r);
  } else {
    auto choices = field(j, "choices");
    if (choices == nullptr || !choices->is_array() || choices->empty()) {
      r.error = "the reply has no choices";
    } else {
      auto& first = (*choices)[0];
      if (auto m = field(first, "message")) {
        append_text(r, text_of(*m, "content"));
        if (auto calls = field(*m, "tool_calls"))
          openai_tool_calls(*calls, r);
      }
      r.stop_reason = text_of(first, "finish_reason");
    }
    if (auto u = field(j, "usage"))
      openai_usage(*u, r);
  }
  make_valid_utf8(r.text);
  r.complete = r.error.empty();
  return r;
}

std::string llm_error_message(llm_provider p, int status,
                              std::string_view body) {
  auto head = "HTTP " + std::to_string(status);
  auto j = detail::parse_outside(body);
  // Both providers nest their error in "error": Anthropic as
  // {"type":"error","error":{"type","message"}}, OpenAI as
  // {"error":{"message","type","code"}}.
  if (auto e = j.is_discarded() ? nullptr : field(j, "error")) {
    auto type = text_of(*e, "type");
    auto message = text_of(*e, "message");
    if (e->is_string())
      message = e->get<std::string>();
    if (!message.empty() || !type.empty())
      return head + (type.empty() ? "" : " " + type) + ": "
             + utf8_clip(valid_utf8(message), 1000);
  }
  auto text = utf8_clip(valid_utf8(body.substr(0, 1200)), 500);
  return text.empty() ? head + " with an empty body" : head + ": " + text;
}

llm_stream_reader::llm_stream_reader(llm_provider p) : provider_(p) {
  // nop
}

void llm_stream_reader::feed(std::string_view data) {
  if (overflow_)
    return;
  pending_.append(data);
  size_t start = 0;
  for (;;) {
    auto nl = pending_.find('\n', start);
    if (nl == std::string::npos)
      break;
    auto l = std::string_view{pending_}.substr(start, nl - start);
    if (!l.empty() && l.back() == '\r')
      l.remove_suffix(1);
    line(l);
    start = nl + 1;
    if (overflow_)
      return;
  }
  pending_.erase(0, start);
  if (pending_.size() + data_.size() > sse_event_limit) {
    overflow_ = true;
    reply_.error = "a streamed event is longer than "
                   + std::to_string(sse_event_limit) + " bytes";
  }
}

void llm_stream_reader::line(std::string_view l) {
  if (l.empty())
    return dispatch();
  if (l.front() == ':')
    return; // a comment, kept for keep-alive
  auto colon = l.find(':');
  auto name = l.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (name == "event") {
    event_.assign(value);
  } else if (name == "data") {
    if (!data_.empty())
      data_ += '\n';
    data_.append(value);
    if (data_.size() > sse_event_limit) {
      overflow_ = true;
      reply_.error = "a streamed event is longer than "
                     + std::to_string(sse_event_limit) + " bytes";
    }
  }
}

void llm_stream_reader::dispatch() {
  if (data_.empty() && event_.empty())
    return;
  ++events_;
  if (provider_ == llm_provider::anthropic)
    anthropic_event(event_, data_);
  else
    openai_event(data_);
  event_.clear();
  data_.clear();
}

void llm_stream_reader::anthropic_event(std::string_view type,
                                        std::string_view data) {
  json j;
  if (!parse_event(data, j, reply_))
    return;
  // The type is in the data too; the event line may be missing.
  std::string kind = type.empty() ? text_of(j, "type") : std::string{type};
  if (kind == "message_start") {
    if (auto m = field(j, "message")) {
      reply_.model = text_of(*m, "model");
      if (auto u = field(*m, "usage"))
        anthropic_usage(*u, reply_);
    }
  } else if (kind == "content_block_start") {
    if (auto b = field(j, "content_block")) {
      auto btype = text_of(*b, "type");
      if (btype == "tool_use")
        reply_.tool_calls.push_back(text_of(*b, "name"));
      else if (btype == "text")
        append_text(reply_, text_of(*b, "text"));
    }
  } else if (kind == "content_block_delta") {
    if (auto d = field(j, "delta"); d && text_of(*d, "type") == "text_delta")
      append_text(reply_, text_of(*d, "text"));
  } else if (kind == "message_delta") {
    if (auto d = field(j, "delta")) {
      auto stop = text_of(*d, "stop_reason");
      if (!stop.empty())
        reply_.stop_reason = stop;
    }
    // Counts here are the message's totals so far.
    if (auto u = field(j, "usage"))
      anthropic_usage(*u, reply_);
  } else if (kind == "message_stop") {
    reply_.complete = true;
    make_valid_utf8(reply_.text);
  } else if (kind == "error") {
    auto e = field(j, "error");
    auto etype = e ? text_of(*e, "type") : "";
    reply_.error = "error in the stream"
                   + (etype.empty() ? std::string{} : " (" + etype + ")")
                   + ": " + utf8_clip(valid_utf8(e ? text_of(*e, "message")
                                                   : ""),
                                      1000);
    reply_.transient = transient_error_type(etype);
  }
}

void llm_stream_reader::openai_event(std::string_view data) {
  if (data == "[DONE]") {
    reply_.complete = true;
    make_valid_utf8(reply_.text);
    return;
  }
  json j;
  if (!parse_event(data, j, reply_))
    return;
  if (auto e = field(j, "error")) {
    auto etype = text_of(*e, "type");
    reply_.error = "error in the stream"
                   + (etype.empty() ? std::string{} : " (" + etype + ")")
                   + ": "
                   + utf8_clip(valid_utf8(text_of(*e, "message")), 1000);
    reply_.transient = transient_error_type(etype);
    return;
  }
  auto model = text_of(j, "model");
  if (!model.empty())
    reply_.model = model;
  if (auto choices = field(j, "choices");
      choices && choices->is_array() && !choices->empty()) {
    auto& first = (*choices)[0];
    if (auto d = field(first, "delta")) {
      append_text(reply_, text_of(*d, "content"));
      if (auto calls = field(*d, "tool_calls"))
        openai_tool_calls(*calls, reply_);
    }
    auto finish = text_of(first, "finish_reason");
    if (!finish.empty())
      reply_.stop_reason = finish;
  }
  if (auto u = field(j, "usage"))
    openai_usage(*u, reply_);
}

} // namespace troupe
