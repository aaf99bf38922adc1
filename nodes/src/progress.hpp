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
  int32_t max_parallel = 1;
  /// Called once with the report.
  std::function<void(run_report)> on_report;
};

/// Spawns the observer that draws progress and receives the report.
observer_actor spawn_progress(caf::actor_system& sys, progress_config cfg);

} // namespace troupe::cli
