#pragma once

// The executor actor of the kinds that run a process per attempt
// (`command`, `claude-code`); for executors.cpp and its siblings.

#include <functional>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe::detail {

/// One attempt as a process: what to run, how its end becomes the
/// attempt's result (called on the runner's thread), and what to clean up
/// once that is known.
struct process_job {
  process_request req;
  std::function<workstream_result(process_outcome&)> to_result;
  std::function<void()> cleanup;
};

/// Prepares the job of an attempt; an error (a scratch file that cannot be
/// written) fails the attempt's request instead.
using job_maker = std::function<bool(const workstream_spec& spec,
                                     process_job& job, std::string& why)>;

/// Spawns an executor that runs what `make` prepares on `runner`, answers
/// with its result and quits; `cancel_atom` stops the process.
executor_actor spawn_process_executor(caf::actor_system& sys,
                                      process_runner& runner, job_maker make);

/// The process request every attempt starts from: it runs in the run's
/// directory (or the executor's `cwd` below it), with the executor's `env`
/// and TROUPE_WORKSTREAM and TROUPE_RUN_ID, and the attempt's timeout.
process_request attempt_request(const workstream_spec& spec);

/// `s` quoted for /bin/sh.
std::string sh_quoted(const std::string& s);

} // namespace troupe::detail
