#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

/// The last known state of a run's workstreams and gates, kept from its
/// events, for a report when the run's own will not come (its coordinator
/// was lost).
class run_tracker {
public:
  /// Tracks a run of `p`, which must outlive the tracker.
  explicit run_tracker(const plan& p);

  /// Takes in the next event of the run.
  void add(const event& ev);

  /// Takes in the run's state at one point (a late subscriber's start).
  void add(const run_snapshot& s);

  /// The state so far, as `status` says it is (running, or how it ended),
  /// at run time `t_s`.
  run_snapshot snapshot(const std::string& status, double t_s) const;

  /// A report of what the events said: every workstream of the plan, then
  /// any other that appeared (a gate's fixers), in its last known state (one
  /// last seen running stays running), every gate likewise; the run
  /// `failed` after `wall_s` seconds and marked `partial`. Its Markdown
  /// opens with "Partial report: `why`.".
  run_report partial_report(double wall_s, const std::string& why) const;

private:
  struct seen_ws {
    ws_state status = ws_state::pending;
    int32_t attempts = 0;
    std::string node;
    std::string summary;
    /// Run time of its last dispatch and of its end; negative until then.
    double dispatched = -1;
    double ended = -1;
  };

  const plan* p_;
  std::string run_id_;
  uint64_t seq_ = 0;
  std::vector<std::string> rerun_;
  std::unordered_map<std::string, seen_ws> seen_;
  /// Workstreams outside the plan, in order of appearance.
  std::vector<std::string> extra_;
  std::unordered_map<std::string, gate_result> gates_;
  /// What the synthesis agent wrote, once it ended: its outputs and output.
  std::map<std::string, std::string> synthesis_outputs_;
  std::string synthesis_output_;
};

} // namespace troupe
