#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "troupe/protocol/interfaces.hpp"

namespace troupe::cli {

/// How the progress observer shows a run.
struct progress_config {
  const plan* p = nullptr;
  /// A live view redrawn in place (stderr is a terminal), else one line
  /// per event.
  bool live = false;
  bool quiet = false;
  /// Every event as a JSON line, when open.
  std::FILE* events = nullptr;
  int32_t max_parallel = 1;
  /// Called once with the report.
  std::function<void(run_report)> on_report;
};

/// Spawns the observer that draws progress and receives the report.
observer_actor spawn_progress(caf::actor_system& sys, progress_config cfg);

} // namespace troupe::cli
