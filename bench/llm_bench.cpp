// What Troupe adds to an LLM call: 1,000 `anthropic` workstreams, 64 at a
// time, against the stand-in server answering at once, run through
// Troupe's orchestrator and agent pool; then the same 1,000 requests sent
// by the bare HTTP client Troupe uses, 64 in flight. The difference per
// call is Troupe's overhead (building prompts and context, dispatch,
// events, the executor actor, reading the reply). Streamed replies and
// whole ones. Prints JSON.
//
//   llm_bench [--quick] [--calls N]     (--quick: 100 calls, for the tests)

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "sink.hpp"
#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/http_client.hpp"
#include "troupe/runtime/llm.hpp"

extern char** environ;

using namespace troupe;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int32_t in_flight = 64;

// The stand-in server, started on a free port and killed at the end.
class mock_server {
public:
  mock_server() {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::string prog = TROUPE_MOCK_LLM;
    std::string port = "--port";
    std::string zero = "0";
    char* argv[] = {prog.data(), port.data(), zero.data(), nullptr};
    auto rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (rc != 0)
      throw std::runtime_error("cannot start " + prog);
    std::string line;
    char c;
    pollfd p{out[0], POLLIN, 0};
    while (::poll(&p, 1, 10000) > 0 && ::read(out[0], &c, 1) == 1 && c != '\n')
      line += c;
    ::close(out[0]);
    if (line.rfind("listening on ", 0) != 0)
      throw std::runtime_error("the mock did not start: " + line);
    url_ = "http://" + line.substr(13);
  }

  ~mock_server() {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }

  const std::string& url() const {
    return url_;
  }

private:
  pid_t pid_ = -1;
  std::string url_;
};

plan llm_plan(size_t n, bool stream) {
  plan p;
  p.name = "llm-" + std::to_string(n);
  p.settings.max_parallel_agents = in_flight;
  p.settings.max_phase_width = static_cast<int32_t>(n);
  for (size_t i = 0; i < n; ++i) {
    workstream w;
    w.id = "ask" + std::to_string(i);
    w.agent = agent_kind::explore;
    w.model = model_tier::fast;
    w.persona = "analyzer";
    w.prompt = "Question " + std::to_string(i) + ": what does this repo do?";
    w.executor.kind = "anthropic";
    w.executor.stream = stream;
    p.workstreams.push_back(std::move(w));
  }
  return p;
}

// The floor: the same requests through the same client, `in_flight` at a
// time, each reply read as the executor reads it.
double run_bare(const std::string& url, size_t n, bool stream) {
  std::mutex mtx;
  std::condition_variable cv;
  size_t next = 0;
  size_t done = 0;
  size_t failed = 0;
  auto& client = http_client::shared();
  std::function<void()> issue = [&] {
    auto i = next++;
    llm_question q;
    q.model = "claude-haiku-4-5";
    q.system = "You are the analyzer agent.";
    q.prompt = "Question " + std::to_string(i) + ": what does this repo do?";
    q.stream = stream;
    http_request req;
    req.url = url + llm_path(llm_provider::anthropic);
    req.headers = llm_headers(llm_provider::anthropic, "");
    req.body = llm_request_body(llm_provider::anthropic, q);
    auto reader = std::make_shared<llm_stream_reader>(llm_provider::anthropic);
    http_client::data_fn on_data;
    if (stream)
      on_data = [reader](std::string_view d) { reader->feed(d); };
    client.start(std::move(req), std::move(on_data),
                 [&, reader, stream](http_response res) {
                   bool ok = stream ? reader->reply().complete
                                    : parse_llm_reply(llm_provider::anthropic,
                                                      res.body)
                                        .complete;
                   std::lock_guard<std::mutex> lock{mtx};
                   failed += ok ? 0 : 1;
                   if (++done == n)
                     cv.notify_one();
                   else if (next < n)
                     issue();
                 });
  };
  auto start = clock_type::now();
  {
    std::lock_guard<std::mutex> lock{mtx};
    for (size_t k = 0; k < std::min<size_t>(in_flight, n); ++k)
      issue();
  }
  std::unique_lock<std::mutex> lock{mtx};
  cv.wait(lock, [&] { return done == n; });
  if (failed > 0)
    std::cerr << failed << " bare requests failed\n";
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

} // namespace

int main(int argc, char** argv) {
  size_t calls = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0)
      calls = 100;
    else if (std::strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
      calls = std::stoul(argv[++i]);
  }
  mock_server mock;
  // The executors read where their provider is when they are made.
  ::setenv("ANTHROPIC_BASE_URL", mock.url().c_str(), 1);
  ::unsetenv("ANTHROPIC_API_KEY");
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  nlohmann::json out;
  out["calls"] = calls;
  out["in_flight"] = in_flight;
  out["cores"] = std::thread::hardware_concurrency();
  auto& results = out["results"];
  for (bool stream : {true, false}) {
    // Warm both paths up once, then measure.
    run_bare(mock.url(), std::min<size_t>(calls, 64), stream);
    auto t = bench::run_plan(sys, llm_plan(calls, stream), in_flight);
    auto bare = run_bare(mock.url(), calls, stream);
    results.push_back(
      {{"reply", stream ? "streamed" : "whole"},
       {"troupe_s", t.wall_s},
       {"succeeded", t.succeeded},
       {"bare_client_s", bare},
       {"troupe_calls_per_s", calls / t.wall_s},
       {"bare_calls_per_s", calls / bare},
       {"overhead_us_per_call", (t.wall_s - bare) * 1e6 / calls},
       {"ratio", bare > 0 ? t.wall_s / bare : 0}});
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
