// The verdicts of a gate's checks. The orchestrator runs a gate's checks in
// order: `completion` and `conflicts` it judges itself from the results the
// gate guards; a command it dispatches to a node like any work, and judges
// by how it ended.

#include "troupe/actors/gate.hpp"

#include <map>
#include <set>

#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

// Bytes of a check's output kept in its verdict.
constexpr size_t detail_limit = 4000;

} // namespace

check_result check_completion(const std::vector<workstream_result>& results) {
  check_result c{"completion", true, {}};
  std::string missing;
  for (auto& r : results) {
    if (r.status == ws_state::succeeded)
      continue;
    c.passed = false;
    if (!missing.empty())
      missing += ", ";
    missing += r.id + " " + to_string(r.status);
  }
  c.detail = c.passed ? std::to_string(results.size()) + " succeeded"
                      : missing;
  return c;
}

check_result check_conflicts(const std::vector<workstream_result>& results) {
  check_result c{"conflicts", true, {}};
  std::map<std::string, std::set<std::string>> writers;
  for (auto& r : results)
    for (auto& f : r.files_changed)
      writers[f].insert(r.id);
  for (auto& [file, ids] : writers) {
    if (ids.size() < 2)
      continue;
    c.passed = false;
    if (!c.detail.empty())
      c.detail += "; ";
    c.detail += file + " changed by";
    for (auto& id : ids)
      c.detail += " " + id;
  }
  if (c.passed)
    c.detail = std::to_string(writers.size()) + " files, no overlap";
  return c;
}

check_result check_command(const gate_check& check,
                           const workstream_result& r) {
  check_result c;
  c.name = "run: " + check.run;
  c.passed = r.status == ws_state::succeeded;
  switch (r.status) {
    case ws_state::succeeded:
      c.detail = "exit 0";
      break;
    case ws_state::timed_out:
      c.detail = r.summary.empty() ? "timed out" : r.summary;
      break;
    case ws_state::failed:
      c.detail = r.exit_code >= 0 ? "exit " + std::to_string(r.exit_code)
                                  : r.summary;
      break;
    default:
      c.detail = to_string(r.status)
                 + (r.summary.empty() ? "" : ": " + r.summary);
      break;
  }
  if (!r.node.empty())
    c.detail += " (on node " + r.node + ")";
  if (!r.output.empty() && r.output != r.summary)
    c.detail += "\n"
                + (r.output.size() <= detail_limit
                     ? r.output
                     : "..." + utf8_tail(r.output, detail_limit));
  return c;
}

} // namespace troupe
