// Registration of every Troupe message type and of the `troupe` error
// category with a CAF configuration.

#include "troupe/protocol/message_types.hpp"

#include <cstdint>
#include <string>

#include <caf/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/interfaces.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

namespace {

// Renders `troupe: unknown_persona ("nope")`: the code's name, then the
// context the error was made with, if any.
std::string render_error(uint8_t code, caf::atom_value category,
                         const caf::message& context) {
  auto result = caf::to_string(category);
  result += ": ";
  result += to_string(static_cast<errc>(code));
  if (!context.empty()) {
    result += ' ';
    result += caf::to_string(context);
  }
  return result;
}

} // namespace

void add_message_types(caf::actor_system_config& cfg) {
  // Each call also registers std::vector<T> (and stream<T>) as
  // "std::vector<troupe::T>".
  cfg.add_message_type<executor_spec>("troupe::executor_spec")
    .add_message_type<workstream>("troupe::workstream")
    .add_message_type<gate_check>("troupe::gate_check")
    .add_message_type<remediation>("troupe::remediation")
    .add_message_type<gate>("troupe::gate")
    .add_message_type<model_price>("troupe::model_price")
    .add_message_type<run_limits>("troupe::run_limits")
    .add_message_type<plan_settings>("troupe::plan_settings")
    .add_message_type<synthesis_spec>("troupe::synthesis_spec")
    .add_message_type<plan>("troupe::plan")
    .add_message_type<usage>("troupe::usage")
    .add_message_type<workspace_spec>("troupe::workspace_spec")
    .add_message_type<workstream_spec>("troupe::workstream_spec")
    .add_message_type<workstream_result>("troupe::workstream_result")
    .add_message_type<check_result>("troupe::check_result")
    .add_message_type<gate_result>("troupe::gate_result")
    .add_message_type<run_report>("troupe::run_report")
    .add_message_type<event>("troupe::event")
    .add_message_type<run_snapshot>("troupe::run_snapshot")
    .add_message_type<node_info>("troupe::node_info")
    .add_message_type<repo_options>("troupe::repo_options")
    .add_message_type<run_options>("troupe::run_options")
    .add_message_type<join_request>("troupe::join_request")
    .add_message_type<node_status>("troupe::node_status")
    .add_message_type<plan_assessment>("troupe::plan_assessment")
    // Handles sent inside messages, so they cross node boundaries.
    .add_message_type<progress_actor>("troupe::progress_actor")
    .add_message_type<executor_actor>("troupe::executor_actor")
    .add_message_type<agent_actor>("troupe::agent_actor")
    .add_message_type<pool_actor>("troupe::pool_actor")
    .add_message_type<observer_actor>("troupe::observer_actor");
  cfg.add_error_category(caf::atom("troupe"), render_error);
}

} // namespace troupe
