#pragma once

#include <string>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"

namespace troupe::cli {

/// Exit codes: the run succeeded, it finished otherwise, bad input.
constexpr int exit_ok = 0;
constexpr int exit_run_failed = 1;
constexpr int exit_bad_input = 2;

/// Prints diagnostics about `origin` to stderr; returns true if none is an
/// error.
bool report_diagnostics(const std::string& origin, const diagnostics& d);

/// The workstream map by phase, gates, critical path, estimates and
/// complexity, as `troupe plan` prints it.
std::string render_plan(const plan& p, const plan_assessment& a,
                        int32_t max_parallel);

struct run_flags {
  std::string plan_file;
  int32_t max_parallel = 0;
  std::string report_file;
  std::string events_file;
  std::string workdir;
  bool yes = false;
  bool quiet = false;
};

/// `troupe run`: runs a plan on this machine; returns the exit code.
int run_command(const run_flags& flags);

} // namespace troupe::cli
