// The spellings of the protocol's enums, one table per enum.

#include <array>
#include <string>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

namespace {

// One table per enum, in enumerator order, so both directions agree.
constexpr std::array<const char*, 3> agent_kind_names{"explore", "plan",
                                                      "general"};
constexpr std::array<const char*, 3> model_tier_names{"fast", "balanced",
                                                      "deep"};
constexpr std::array<const char*, 3> failure_policy_names{
  "block_dependents", "fail_fast", "continue"};
constexpr std::array<const char*, 9> ws_state_names{
  "pending", "ready",     "dispatched", "running", "succeeded",
  "failed",  "timed_out", "cancelled",  "blocked"};
constexpr std::array<const char*, 4> run_status_names{"succeeded", "failed",
                                                      "blocked", "cancelled"};
constexpr std::array<const char*, 6> gate_state_names{
  "pending", "evaluating", "remediating", "passed", "failed", "cancelled"};
constexpr std::array<const char*, 23> event_kind_names{
  "run_started",  "run_resumed",     "run_cancelling",   "run_failing",
  "run_finished", "ws_ready",        "ws_waiting",       "ws_dispatched",
  "ws_running",   "ws_progress",     "ws_retrying",      "ws_requeued",
  "ws_ended",     "gate_evaluating", "gate_remediating", "gate_passed",
  "gate_failed",  "node_joined",     "node_draining",    "node_left",
  "node_lost",    "ws_iterating",    "ws_expanded"};
constexpr std::array<const char*, 4> complexity_names{"SIMPLE", "MODERATE",
                                                      "COMPLEX", "EPIC"};
constexpr std::array<const char*, 13> errc_names{
  "unknown_persona", "unknown_executor", "unknown_run",   "invalid_plan",
  "no_capacity",     "node_lost",        "cancelled",     "executor_failed",
  "bad_token",       "version_mismatch", "name_taken",    "shutting_down",
  "journal_failed"};

template <class E, size_t N>
std::string name_of(E x, const std::array<const char*, N>& names) {
  auto i = static_cast<size_t>(x);
  return i < N ? names[i] : "unknown(" + std::to_string(i) + ")";
}

template <class E, size_t N>
bool parse_name(const std::string& s, E& x,
                const std::array<const char*, N>& names) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i]) {
      x = static_cast<E>(i);
      return true;
    }
  return false;
}

} // namespace

std::string to_string(agent_kind x) {
  return name_of(x, agent_kind_names);
}

std::string to_string(model_tier x) {
  return name_of(x, model_tier_names);
}

std::string to_string(failure_policy x) {
  return name_of(x, failure_policy_names);
}

model_tier routed_tier(agent_kind k) {
  switch (k) {
  case agent_kind::explore:
    return model_tier::fast;
  case agent_kind::plan:
    return model_tier::deep;
  default:
    return model_tier::balanced;
  }
}

bool from_string(const std::string& s, agent_kind& x) {
  return parse_name(s, x, agent_kind_names);
}

bool from_string(const std::string& s, model_tier& x) {
  return parse_name(s, x, model_tier_names);
}

bool from_string(const std::string& s, failure_policy& x) {
  return parse_name(s, x, failure_policy_names);
}

std::string to_string(ws_state x) {
  return name_of(x, ws_state_names);
}

std::string to_string(run_status x) {
  return name_of(x, run_status_names);
}

std::string to_string(gate_state x) {
  return name_of(x, gate_state_names);
}

bool from_string(const std::string& s, ws_state& x) {
  return parse_name(s, x, ws_state_names);
}

bool from_string(const std::string& s, run_status& x) {
  return parse_name(s, x, run_status_names);
}

bool from_string(const std::string& s, gate_state& x) {
  return parse_name(s, x, gate_state_names);
}

std::string to_string(event_kind x) {
  return name_of(x, event_kind_names);
}

bool from_string(const std::string& s, event_kind& x) {
  return parse_name(s, x, event_kind_names);
}

bool is_terminal(ws_state x) {
  switch (x) {
    case ws_state::succeeded:
    case ws_state::failed:
    case ws_state::timed_out:
    case ws_state::cancelled:
    case ws_state::blocked:
      return true;
    default:
      return false;
  }
}

std::string to_string(complexity x) {
  return name_of(x, complexity_names);
}

std::string to_string(errc x) {
  // errc starts at 1; 0 means "no error".
  auto i = static_cast<size_t>(x);
  if (i >= 1 && i <= errc_names.size())
    return errc_names[i - 1];
  return "unknown(" + std::to_string(i) + ")";
}

std::string to_string(const diagnostic& d) {
  return d.path.empty() ? d.message : d.path + ": " + d.message;
}

} // namespace troupe
