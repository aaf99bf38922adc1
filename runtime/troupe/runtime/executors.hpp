#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/llm.hpp"

namespace troupe {

class http_client;
class process_runner;

/// Bytes a command of a workstream with `output: plan` may print: its plan.
constexpr size_t max_plan_output_bytes = 4 << 20;

/// Makes the executor actor for one attempt of a workstream.
using executor_factory = std::function<executor_actor(caf::actor_system&)>;

/// The executors a node offers, by kind.
class executor_registry {
public:
  /// A registry with `command`, `sleep`, `anthropic`, `openai` and, when
  /// its CLI is found, `claude-code` (`noop` is handled by agents
  /// themselves and needs no actor), configured by the environment alone
  /// (`default_config()`; `executors_for` takes a config file's).
  static std::shared_ptr<executor_registry> with_builtins();

  void add(std::string kind, executor_factory f);

  /// Null when `kind` is unknown.
  const executor_factory* find(const std::string& kind) const;

  /// Every kind this registry can run, `noop` included.
  std::set<std::string> kinds() const;

  /// Records why `kind` cannot run here (a program is missing), so that a
  /// plan asking for it is refused saying so.
  void unavailable(std::string kind, std::string why);

  /// Kinds that cannot run here, with why.
  const std::map<std::string, std::string>& unavailable() const {
    return unavailable_;
  }

  /// What validating a plan to run here accepts: these kinds, and why
  /// the unavailable ones are not.
  validation_options validation() const;

private:
  std::map<std::string, executor_factory> factories_;
  std::map<std::string, std::string> unavailable_;
};

struct troupe_config;

/// The executors this node offers, reaching providers as `cfg` says.
std::shared_ptr<executor_registry> executors_for(const troupe_config& cfg);

/// Runs `ws.executor.run` with `/bin/sh -c` (over 64 KiB, from a file) in its
/// own process group, in `executor.cwd` (relative to the spec's workdir).
/// Passes the workstream id in TROUPE_WORKSTREAM, files holding the prompt
/// and a JSON context in TROUPE_PROMPT_FILE and TROUPE_CONTEXT, and a prompt
/// of at most 32 KiB in TROUPE_PROMPT too; a command may write a JSON result
/// (`summary`, `files_changed`, `outputs`) to the file named by
/// TROUPE_RESULT. The files are removed when the command ends.
executor_actor spawn_command_executor(caf::actor_system& sys,
                                      process_runner& runner);

/// Waits `executor.seconds`, then succeeds (or times out first).
executor_actor spawn_sleep_executor(caf::actor_system& sys);

/// Where and how this node reaches an LLM provider. Node-local: the key
/// never leaves the process, and appears in no log, event or result.
struct llm_endpoint {
  llm_provider provider = llm_provider::anthropic;
  /// Anthropic's without a path (`https://api.anthropic.com`); an
  /// OpenAI-compatible server's with its `/v1`.
  std::string base_url;
  std::string api_key;
  /// Certificates to trust beside the system's (a private server).
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{10'000};
  /// The longest silence while a reply comes.
  std::chrono::milliseconds read_timeout{300'000};
  /// Tries after the first when the provider is busy or failing (429,
  /// 5xx, 529, a lost connection), within the attempt's timeout.
  int32_t max_retries = 4;
  /// Waits between tries: random up to base * 2^try, at most `backoff_cap`,
  /// unless the provider says how long (`retry-after`).
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_cap{30'000};
};

/// Asks the model `spec.model` the workstream's prompt (with its persona's
/// system prompt and the handoff) through `ep`, without waiting on the
/// network: `client` does. Streams the reply when `executor.stream`, retries
/// what is worth retrying, and answers with the reply as output, its
/// usage and its cost at `spec.price`.
executor_actor spawn_llm_executor(caf::actor_system& sys,
                                  std::shared_ptr<const llm_endpoint> ep,
                                  http_client& client);

/// Where this node finds the Claude Code CLI and how it runs it.
struct claude_code_config {
  /// The CLI's absolute path.
  std::string program;
  /// What the CLI gets as ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL when
  /// set: the config file's, for a CLI that would not find them in the
  /// environment. Empty leaves the environment's.
  std::string api_key;
  std::string base_url;
};

/// Looks for the Claude Code CLI: `program` (a path, or a name looked up
/// on PATH), which `named_by` names, else `claude` on PATH. False, saying
/// why, when there is none.
bool find_claude_code(const std::string& program, const std::string& named_by,
                      claude_code_config& out, std::string& why);

/// Runs the Claude Code CLI headless (`-p --output-format stream-json
/// --verbose`) in the workstream's directory, the prompt on stdin, with
/// the model, turns, tools and permission mode the workstream names and
/// its persona's system prompt appended to the CLI's own. Its result,
/// usage per model and cost are the CLI's own, read from its last line;
/// the files its edits touched are `files_changed`.
executor_actor spawn_claude_code_executor(
  caf::actor_system& sys, std::shared_ptr<const claude_code_config> cfg,
  process_runner& runner);

/// A result for `spec`'s attempt, named as its workstream (id, persona,
/// title, attempt), for an executor to fill in.
workstream_result attempt_result(const workstream_spec& spec);

/// Where an attempt's executor tells how far its agent got: a copy of what
/// names the attempt and of `spec.progress`, usable from any thread.
class progress_notifier {
public:
  progress_notifier() = default;

  explicit progress_notifier(const workstream_spec& spec);

  /// Tells it `how_far` (a line such as "turn 3, 2 tool uses"); nothing
  /// when nobody follows the attempt.
  void operator()(std::string how_far) const;

private:
  caf::strong_actor_ptr to_;
  std::string run_id_;
  std::string ws_id_;
  int32_t attempt_ = 0;
  uint64_t key_ = 0;
};

/// The last non-empty line of `text`, at most `max` characters.
std::string last_line(const std::string& text, size_t max = 200);

} // namespace troupe
