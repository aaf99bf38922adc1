#pragma once

#include <string>

namespace troupe {

/// The system prompt an agent of `persona` gets.
std::string persona_prompt(const std::string& persona);

/// What an agent is asked: the workstream's `prompt`, then what `context`
/// (the handoff's JSON, as commands get it in TROUPE_CONTEXT) holds: the
/// results of the work it depends on, the attempts of it that failed before
/// (their output cut to what is worth reading), and for a gate's fixer the
/// checks that failed. Context that is not a JSON object adds nothing.
std::string agent_prompt(const std::string& prompt, const std::string& context);

} // namespace troupe
