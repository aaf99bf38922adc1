#pragma once

// The stand-in LLM server's script: the rules that say how to answer
// requests, read from a JSON file (see script.cpp for the fields).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe::mock {

using ojson = nlohmann::ordered_json;

/// The program's name, for its messages.
constexpr const char* program = "troupe_mock_llm";
/// Bytes of text per streamed delta unless a rule says.
constexpr std::size_t default_chunk_text = 16;

/// Dumps `j` compactly; text from outside may be invalid UTF-8.
std::string dump(const ojson& j);

/// `j[key]` of an object, or null.
const ojson* find_field(const ojson& j, const char* key);

/// Parses a request body; a discarded value if it is not (reasonable) JSON.
ojson parse_body(const std::string& text);

/// What a request asks for, by method and path.
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


/// Reads the script at `file` into `rules`; false (and messages on stderr
/// naming the file) if it cannot be read or is not a valid script.
bool load_script(const std::string& file, std::vector<rule>& rules);

} // namespace troupe::mock
