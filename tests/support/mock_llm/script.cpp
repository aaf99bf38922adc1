// Reading the stand-in LLM server's script.

#include "mock_llm/script.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace troupe::mock {

namespace {

// Deeper JSON is logged as a string: parsing, copying and dumping recurse.
constexpr int max_json_depth = 256;
constexpr std::int64_t max_delay_ms = 24 * 3600 * 1000;

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

} // namespace

const ojson* find_field(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

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

/// Dumps `j` compactly; text from outside may be invalid UTF-8.
std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

/// Parses a request body; a discarded value if it is not (reasonable) JSON.
ojson parse_body(const std::string& text) {
  if (nesting_depth(text) > max_json_depth)
    return ojson(ojson::value_t::discarded);
  return ojson::parse(text, nullptr, false);
}

} // namespace troupe::mock
