#pragma once

#include <map>
#include <string>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

/// The system prompts Troupe ships, by persona: backend, frontend,
/// data_engineer, agent, analyzer, refactorer, devops, security,
/// performance, qa, docs and debugger (runtime/personas/*.md, compiled in).
const std::map<std::string, std::string>& builtin_persona_prompts();

/// The system prompt an agent of `persona` gets: the settings' own
/// (`settings.personas`), else the built-in one, else a general one that
/// names the persona.
std::string persona_prompt(const plan_settings& settings,
                           const std::string& persona);

/// Where `persona_prompt` takes `persona`'s prompt from: "settings",
/// "built-in" or "general".
std::string persona_prompt_source(const plan_settings& settings,
                                  const std::string& persona);

/// The system prompt a dispatch carries, else its persona's built-in one
/// (a spec made without the run's settings).
std::string system_prompt_of(const workstream_spec& spec);

/// What an agent is asked: the workstream's `prompt`, then what `context`
/// (the handoff's JSON, as commands get it in TROUPE_CONTEXT) holds: the
/// results of the work it depends on, the attempts of it that failed before
/// (their output cut to what is worth reading), for a gate's fixer the
/// checks that failed, and for the synthesis agent how the run's work ended
/// and every gate's verdict. Context that is not a JSON object adds nothing.
std::string agent_prompt(const std::string& prompt, const std::string& context);

} // namespace troupe
