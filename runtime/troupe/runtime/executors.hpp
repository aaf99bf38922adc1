#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {

class process_runner;

/// Makes the executor actor for one attempt of a workstream.
using executor_factory = std::function<executor_actor(caf::actor_system&)>;

/// The executors a node offers, by kind.
class executor_registry {
public:
  /// A registry with `command` and `sleep` (`noop` is handled by agents
  /// themselves and needs no actor).
  static std::shared_ptr<executor_registry> with_builtins();

  void add(std::string kind, executor_factory f);

  /// Null when `kind` is unknown.
  const executor_factory* find(const std::string& kind) const;

  /// Every kind this registry can run, `noop` included.
  std::set<std::string> kinds() const;

private:
  std::map<std::string, executor_factory> factories_;
};

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

/// The last non-empty line of `text`, at most `max` characters.
std::string last_line(const std::string& text, size_t max = 200);

} // namespace troupe
