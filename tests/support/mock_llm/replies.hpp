#pragma once

// What the stand-in LLM server answers: Anthropic's and OpenAI's shapes,
// whole or as server-sent events.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mock_llm/script.hpp"

namespace troupe::mock {

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

/// Anthropic's error body.
ojson anthropic_error(const std::string& type, const std::string& message);

/// A whole JSON answer.
reply_plan json_plan(unsigned status, const ojson& body);

/// What to answer `rq` with, following `spec` (an empty one: the automatic
/// reply).
reply_plan make_reply(const request_info& rq, const reply_spec& spec);

} // namespace troupe::mock
