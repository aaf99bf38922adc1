#pragma once

// An agent of an embedding program's own, as a pool's `custom_agents`
// lends: it answers every dispatch at once, running nothing.

#include <string>

#include <caf/actor_system.hpp>

#include "troupe/actors/agents.hpp"
#include "troupe/protocol/message_types.hpp"

namespace troupe::test {

/// Answers each dispatch as succeeded, its summary "custom: PERSONA"; no
/// output, no check, no usage.
inline agent_actor spawn_custom_agent(caf::actor_system& sys) {
  return sys.spawn([](agent_actor::pointer) -> agent_actor::behavior_type {
    return {
      [](dispatch_atom, const workstream_spec& spec,
         const progress_actor&) -> workstream_result {
        workstream_result r;
        r.id = spec.ws.id;
        r.status = ws_state::succeeded;
        r.summary = "custom: " + spec.ws.persona;
        return r;
      },
      [](cancel_atom, const std::string&, const std::string&) {},
    };
  });
}

} // namespace troupe::test
