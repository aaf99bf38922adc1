#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {

/// The wire formats Troupe speaks to models in.
enum class llm_provider : uint8_t {
  /// Anthropic's Messages API (`POST /v1/messages`).
  anthropic,
  /// OpenAI's chat completions (`POST /chat/completions` below a base URL
  /// that ends in `/v1`): OpenAI, llama.cpp's server, Ollama, vLLM, ...
  openai,
};

std::string to_string(llm_provider x);

/// One question to a model.
struct llm_question {
  std::string model;
  std::string system;
  std::string prompt;
  int32_t max_tokens = 8192;
  bool stream = true;
};

/// Fits `q.max_tokens` to `budget_usd` (no limit when 0) at `price`: its
/// prompt's tokens (a byte in three, more than real text has) and the
/// reply's must cost no more. False, saying why, when the budget cannot
/// pay for even one token of reply; true, changing nothing, when the
/// model's output has no price.
bool fit_to_budget(llm_question& q, double budget_usd, double input_price,
                   double output_price, std::string& why);

/// The path below the base URL that `p` posts to.
std::string llm_path(llm_provider p);

/// The headers `p` wants besides the body's type; `api_key` may be empty
/// (a local server).
std::vector<std::pair<std::string, std::string>>
llm_headers(llm_provider p, const std::string& api_key);

/// The request body asking `q` in `p`'s format.
std::string llm_request_body(llm_provider p, const llm_question& q);

/// What a model answered, read from a whole reply or a stream.
struct llm_reply {
  std::string model;
  std::string text;
  /// Why it stopped: `end_turn`, `max_tokens`, `tool_use`, `stop`, ...
  std::string stop_reason;
  /// Names of the tools it asked to call.
  std::vector<std::string> tool_calls;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  /// The reply arrived whole (a stream reached its end).
  bool complete = false;
  /// What was wrong with it: malformed JSON, an error inside the stream.
  std::string error;
  /// An error inside a stream that the provider calls passing (overloaded,
  /// a server error): worth asking again.
  bool transient = false;
};

/// Bytes of reply text kept at most.
constexpr size_t llm_text_limit = 4 << 20;

/// Reads a whole (not streamed) reply body.
llm_reply parse_llm_reply(llm_provider p, std::string_view body);

/// The provider's own words for a failed request: its error type and
/// message from the body when it sent its error format, else the start of
/// the body.
std::string llm_error_message(llm_provider p, int status,
                              std::string_view body);

/// Reads a streamed reply (server-sent events) piece by piece, in bounded
/// memory.
class llm_stream_reader {
public:
  explicit llm_stream_reader(llm_provider p);

  /// Takes the next bytes of the stream.
  void feed(std::string_view data);

  /// The reply so far; `complete` once the stream said it ended.
  const llm_reply& reply() const {
    return reply_;
  }

  llm_reply& reply() {
    return reply_;
  }

  /// Server-sent events read so far.
  int64_t events() const {
    return events_;
  }

private:
  void line(std::string_view l);
  void dispatch();
  void anthropic_event(std::string_view type, std::string_view data);
  void openai_event(std::string_view data);

  llm_provider provider_;
  llm_reply reply_;
  std::string pending_;
  std::string event_;
  std::string data_;
  int64_t events_ = 0;
  bool overflow_ = false;
};

} // namespace troupe
