// The executor of the `anthropic` and `openai` kinds: one question to a
// model over HTTP, asked again while the provider is busy.
//
//   asking --(reply)--> done
//     |  ^
//     |  `--(backoff over)-- waiting      (429, 5xx, 529, lost connection)
//     `--(cancel)--> done (cancelled)

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include <caf/all.hpp>

#include "troupe/protocol/models.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/http_client.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/prompts.hpp"

namespace troupe::detail {

/// What one HTTP try brought: the exchange, and the reply read from it.
struct llm_try_outcome {
  http_response http;
  llm_reply reply;
  bool streamed = false;
};

} // namespace troupe::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::detail::llm_try_outcome)

namespace troupe {

namespace {

using detail::llm_try_outcome;
using clock_type = std::chrono::steady_clock;

using retry_atom = caf::atom_constant<caf::atom("retry")>;
constexpr retry_atom retry_atom_v{};

// Bytes of the reply kept as the result's output, and as its `reply`
// output for the work that depends on it.
constexpr size_t output_limit = 64 * 1024;
// The longest reply asked for unless the executor says.
constexpr int32_t default_max_tokens = 8192;
// What `retry_after` says when the provider names no wait.
constexpr auto no_wait_asked = std::chrono::milliseconds(-1);
// How often a streamed reply's progress is told at most, once it began.
constexpr auto progress_every = std::chrono::seconds(2);

using llm_executor_actor = executor_actor::extend<
  caf::reacts_to<done_atom, int32_t, llm_try_outcome>,
  caf::reacts_to<retry_atom, int32_t>>;

struct llm_state {
  static inline const char* name = "troupe.llm_executor";
  std::shared_ptr<const llm_endpoint> ep;
  http_client* client = nullptr;
  workstream_spec spec;
  caf::response_promise rp;
  clock_type::time_point started;
  clock_type::time_point deadline = clock_type::time_point::max();
  std::string body;
  /// Tries made so far; the one in flight is the last.
  int32_t tries = 0;
  uint64_t call = 0;
  bool in_flight = false;
  bool cancelled = false;
  bool done = false;
  /// Tokens of every try: a reply cut short was still billed.
  usage spent;
  /// What happened to tries that failed, for the output.
  std::string log;
  progress_notifier progress;
  std::minstd_rand jitter{std::random_device{}()};
};

using self_ptr = llm_executor_actor::stateful_pointer<llm_state>;

std::string seconds_text(clock_type::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s",
                std::chrono::duration<double>(d).count());
  return buf;
}

// Replaces the key wherever a provider (or we) might have echoed it.
std::string redacted(std::string s, const std::string& key) {
  if (key.size() < 4)
    return s;
  for (auto pos = s.find(key); pos != std::string::npos;
       pos = s.find(key, pos))
    s.replace(pos, key.size(), "[redacted]");
  return s;
}

// How long the provider asks us to wait: `retry-after-ms`, or
// `retry-after` in seconds; `no_wait_asked` when it does not say.
std::chrono::milliseconds retry_after(const http_response& r) {
  auto parse = [](const std::string& s, double& x) {
    char* end = nullptr;
    x = std::strtod(s.c_str(), &end);
    return end != s.c_str() && *end == '\0' && x >= 0 && x < 86400 * 1000.0;
  };
  double x = 0;
  if (auto i = r.headers.find("retry-after-ms");
      i != r.headers.end() && parse(i->second, x))
    return std::chrono::milliseconds(static_cast<int64_t>(x));
  if (auto i = r.headers.find("retry-after");
      i != r.headers.end() && parse(i->second, x) && x < 86400)
    return std::chrono::milliseconds(static_cast<int64_t>(x * 1000));
  return no_wait_asked;
}

bool transient_status(int status) {
  return status == 408 || status == 429 || status >= 500;
}

void add_tokens(usage& total, const llm_reply& r) {
  usage x;
  x.input_tokens = r.input_tokens;
  x.output_tokens = r.output_tokens;
  x.cache_read_tokens = r.cache_read_tokens;
  x.cache_write_tokens = r.cache_write_tokens;
  total += x;
  if (!r.model.empty())
    total.model = r.model;
}

// Tells how far a streamed reply got: as it begins, then at most every
// `progress_every`. Runs on the HTTP client's thread.
class stream_progress {
public:
  stream_progress(progress_notifier tell, int32_t try_no)
    : tell_(std::move(tell)), try_no_(try_no) {
    // Nothing.
  }

  void operator()(const llm_stream_reader& reader) {
    if (reader.events() == 0)
      return;
    auto now = clock_type::now();
    if (told_ && now - last_ < progress_every)
      return;
    told_ = true;
    last_ = now;
    auto& r = reader.reply();
    std::string text = try_no_ > 1 ? "try " + std::to_string(try_no_) + ": "
                                   : "";
    text += "streaming the reply";
    auto in = sum_tokens(sum_tokens(r.input_tokens, r.cache_read_tokens),
                         r.cache_write_tokens);
    if (in > 0)
      text += ", " + std::to_string(in) + " tokens in";
    text += ", " + std::to_string(r.text.size()) + " bytes out";
    if (!r.tool_calls.empty())
      text += " (tool call: " + utf8_head(valid_utf8(r.tool_calls.back()), 64)
              + ")";
    tell_(std::move(text));
  }

private:
  progress_notifier tell_;
  int32_t try_no_;
  bool told_ = false;
  clock_type::time_point last_;
};

workstream_result base_result(self_ptr self) {
  auto& st = self->state;
  auto r = attempt_result(st.spec);
  r.wall_s = std::chrono::duration<double>(clock_type::now() - st.started)
               .count();
  auto u = st.spent;
  if (u.model.empty())
    u.model = st.spec.model;
  u.cost_usd = cost_usd(u, st.spec.price);
  if (u.input_tokens != 0 || u.output_tokens != 0 || u.cache_read_tokens != 0
      || u.cache_write_tokens != 0)
    r.usage.push_back(u);
  return r;
}

void finish(self_ptr self, workstream_result r) {
  auto& st = self->state;
  if (st.done)
    return;
  st.done = true;
  auto& key = st.ep->api_key;
  r.summary = redacted(std::move(r.summary), key);
  r.output = redacted(std::move(r.output), key);
  st.rp.deliver(std::move(r));
  self->quit();
}

void fail(self_ptr self, ws_state status, const std::string& why) {
  auto& st = self->state;
  auto r = base_result(self);
  r.status = status;
  r.exit_code = 1;
  r.summary = to_string(st.ep->provider) + ": " + why;
  r.output = utf8_tail(st.log + r.summary, output_limit);
  log()->debug("workstream {}: {}", st.spec.ws.id, r.summary);
  finish(self, std::move(r));
}

void succeed(self_ptr self, const llm_reply& reply) {
  auto& st = self->state;
  auto r = base_result(self);
  r.status = ws_state::succeeded;
  r.exit_code = 0;
  r.summary = last_line(reply.text);
  if (r.summary.empty())
    r.summary = "(an empty reply)";
  r.output = utf8_tail(st.log + reply.text, output_limit);
  r.outputs["reply"] = utf8_head(reply.text, output_limit);
  if (!reply.stop_reason.empty())
    r.outputs["stop_reason"] = reply.stop_reason;
  finish(self, std::move(r));
}

void ask(self_ptr self) {
  auto& st = self->state;
  auto now = clock_type::now();
  if (now >= st.deadline)
    return fail(self, ws_state::timed_out,
                "no reply within the attempt's " + seconds_text(st.deadline
                                                                - st.started));
  st.tries += 1;
  http_request req;
  req.url = st.ep->base_url + llm_path(st.ep->provider);
  req.headers = llm_headers(st.ep->provider, st.ep->api_key);
  req.body = st.body;
  req.ca_file = st.ep->ca_file;
  req.connect_timeout = st.ep->connect_timeout;
  req.read_timeout = st.ep->read_timeout;
  if (st.deadline != clock_type::time_point::max())
    req.total_timeout = std::max(
      std::chrono::duration_cast<std::chrono::milliseconds>(st.deadline - now),
      std::chrono::milliseconds(1));
  auto me = caf::actor_cast<llm_executor_actor>(self);
  auto try_no = st.tries;
  bool stream = st.spec.ws.executor.stream;
  auto reader = stream ? std::make_shared<llm_stream_reader>(st.ep->provider)
                       : nullptr;
  http_client::data_fn on_data;
  if (reader)
    on_data = [reader, told = stream_progress{st.progress, try_no}](
                std::string_view data) mutable {
      reader->feed(data);
      told(*reader);
    };
  auto provider = st.ep->provider;
  st.in_flight = true;
  st.call = st.client->start(
    std::move(req), std::move(on_data),
    [me, try_no, reader, provider](http_response res) {
      llm_try_outcome o;
      bool ok = res.status >= 200 && res.status < 300;
      // A server may answer a streamed question whole: then the body is
      // all here, and the reader saw nothing.
      if (ok && reader && reader->events() > 0) {
        o.reply = std::move(reader->reply());
        o.streamed = true;
      } else if (ok && !(reader && res.body.empty() && !res.error.empty())) {
        o.reply = parse_llm_reply(provider, res.body);
      }
      o.http = std::move(res);
      caf::anon_send(me, done_atom_v, try_no, std::move(o));
    });
}

// Decides what follows a try that failed for `why`: another try after a
// wait, or the end.
void retry_or_fail(self_ptr self, const std::string& why, bool transient,
                   std::chrono::milliseconds asked_wait) {
  auto& st = self->state;
  auto now = clock_type::now();
  st.log += "[troupe] try " + std::to_string(st.tries) + ": " + why + "\n";
  if (!transient)
    return fail(self, ws_state::failed, why);
  if (st.tries > st.ep->max_retries)
    return fail(self, ws_state::failed,
                why + " (after " + std::to_string(st.tries) + " tries)");
  std::chrono::milliseconds wait;
  if (asked_wait != no_wait_asked) {
    wait = asked_wait;
  } else {
    // Exponential backoff with full jitter.
    auto cap = std::min<int64_t>(st.ep->backoff_cap.count(),
                                 st.ep->backoff_base.count()
                                   << std::min(st.tries - 1, 20));
    std::uniform_int_distribution<int64_t> pick{cap / 2, std::max<int64_t>(
                                                           cap, cap / 2)};
    wait = std::chrono::milliseconds(pick(st.jitter));
  }
  if (st.deadline != clock_type::time_point::max() && now + wait >= st.deadline)
    return fail(self, ws_state::failed,
                why + " (waiting " + seconds_text(wait)
                  + " to try again would pass the attempt's timeout)");
  st.log += "[troupe] trying again in " + seconds_text(wait) + "\n";
  st.progress("try " + std::to_string(st.tries) + " failed ("
              + utf8_head(redacted(why, st.ep->api_key), 300)
              + "): trying again in " + seconds_text(wait));
  self->delayed_send(self, wait, retry_atom_v, st.tries);
}

void on_try(self_ptr self, int32_t try_no, llm_try_outcome& o) {
  auto& st = self->state;
  if (try_no != st.tries || st.done)
    return;
  st.in_flight = false;
  add_tokens(st.spent, o.reply);
  auto& res = o.http;
  if (st.cancelled || res.cancelled)
    return fail(self, ws_state::cancelled, "cancelled");
  bool ok = res.status >= 200 && res.status < 300;
  if (!ok && res.status != 0) {
    auto why = llm_error_message(st.ep->provider, res.status, res.body);
    return retry_or_fail(self, why, transient_status(res.status),
                         retry_after(res));
  }
  if (!res.error.empty()) {
    // No answer, or one cut short: the network's fault, or the
    // attempt's timeout.
    if (res.timed_out && st.deadline != clock_type::time_point::max()
        && clock_type::now() + std::chrono::milliseconds(5) >= st.deadline)
      return fail(self, ws_state::timed_out, res.error);
    return retry_or_fail(self, res.error, true, no_wait_asked);
  }
  auto& reply = o.reply;
  if (!reply.error.empty())
    return retry_or_fail(self, reply.error, reply.transient,
                         no_wait_asked);
  if (!reply.complete)
    return retry_or_fail(self, "the reply stream ended before the reply did",
                         true, no_wait_asked);
  succeed(self, reply);
}

llm_executor_actor::behavior_type
llm_executor(self_ptr self, std::shared_ptr<const llm_endpoint> ep,
             http_client* client) {
  self->state.ep = std::move(ep);
  self->state.client = client;
  return {
    [=](run_atom, workstream_spec& spec) -> caf::result<workstream_result> {
      auto& st = self->state;
      st.rp = self->make_response_promise();
      st.started = clock_type::now();
      if (spec.timeout_s > 0)
        st.deadline = st.started
                      + std::chrono::milliseconds(
                        static_cast<int64_t>(spec.timeout_s * 1000));
      st.spec = std::move(spec);
      st.progress = progress_notifier{st.spec};
      if (st.spec.model.empty()) {
        fail(self, ws_state::failed, "no model to ask");
        return st.rp;
      }
      // A base URL that can never work is no reason to try again.
      url_parts url;
      std::string why;
      if (!parse_url(st.ep->base_url + llm_path(st.ep->provider), url, why)) {
        fail(self, ws_state::failed, "bad base URL: " + why);
        return st.rp;
      }
      llm_question q;
      q.model = st.spec.model;
      q.system = system_prompt_of(st.spec);
      q.prompt = agent_prompt(st.spec.ws.prompt, st.spec.context);
      q.max_tokens = st.spec.ws.executor.max_tokens > 0
                       ? st.spec.ws.executor.max_tokens
                       : default_max_tokens;
      q.stream = st.spec.ws.executor.stream;
      if (!fit_to_budget(q, st.spec.budget_usd, st.spec.price.input,
                         st.spec.price.output, why)) {
        fail(self, ws_state::failed, why);
        return st.rp;
      }
      st.body = llm_request_body(st.ep->provider, q);
      if (st.cancelled)
        fail(self, ws_state::cancelled, "cancelled");
      else
        ask(self);
      return st.rp;
    },
    [=](cancel_atom) {
      auto& st = self->state;
      st.cancelled = true;
      if (st.in_flight)
        st.client->cancel(st.call);
      else if (st.rp.pending())
        fail(self, ws_state::cancelled, "cancelled");
    },
    [=](done_atom, int32_t try_no, llm_try_outcome& o) {
      on_try(self, try_no, o);
    },
    [=](retry_atom, int32_t try_no) {
      auto& st = self->state;
      if (try_no == st.tries && !st.done && !st.cancelled)
        ask(self);
    },
  };
}

} // namespace

executor_actor spawn_llm_executor(caf::actor_system& sys,
                                  std::shared_ptr<const llm_endpoint> ep,
                                  http_client& client) {
  return sys.spawn(llm_executor, std::move(ep), &client);
}

} // namespace troupe
