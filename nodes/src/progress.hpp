#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe {
class staged_file;
} // namespace troupe

namespace troupe::cli {

/// How the progress observer shows a run.
struct progress_config {
  const plan* p = nullptr;
  /// A live view redrawn in place (stderr is a terminal), else one line
  /// per event.
  bool live = false;
  bool quiet = false;
  /// Receives every event as a JSON line, when set.
  staged_file* events = nullptr;
  /// Called with every event, when set.
  std::function<void(const event&)> on_event;
  int32_t max_parallel = 1;
  /// Called once with the report.
  std::function<void(run_report)> on_report;
};

using partial_atom = caf::atom_constant<caf::atom("partial")>;
constexpr partial_atom partial_atom_v{};

/// The observer that draws progress and receives the report. Asked for a
/// partial report, with why the run was lost, it builds one from the events
/// it saw: every workstream and gate in its last known state, the run
/// `failed` and marked `partial`, its Markdown saying so at the top. From
/// then on it leaves the event log to the caller.
using progress_view_actor = observer_actor::extend<
  caf::replies_to<partial_atom, std::string>::with<run_report>>;

/// One event as a line of text (with its newline), as the progress view
/// prints it.
std::string event_line(const event& ev);

/// Spawns the progress view for `cfg.p`.
progress_view_actor spawn_progress(caf::actor_system& sys,
                                   progress_config cfg);

} // namespace troupe::cli
