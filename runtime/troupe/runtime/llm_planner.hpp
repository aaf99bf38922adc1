#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

struct troupe_config;

/// How many replies the LLM planner reads at most before it gives up.
constexpr int32_t llm_planner_tries = 3;

/// What the LLM planner did.
struct llm_planning {
  /// The plan, valid, once it succeeded.
  plan p;
  /// Replies asked for.
  int32_t tries = 0;
  /// The model asked.
  std::string model;
  /// What every try spent, per model.
  std::vector<troupe::usage> usage;
  /// Why the last try failed, one line per error, when it did.
  std::string errors;
  /// The last reply, as the model wrote it.
  std::string reply;
};

/// The LLM planner: asks the `deep` tier (or `opts`' fixed tier) through
/// `opts.executor`'s agent (anthropic when it is no agent) for a plan of
/// `goal` in the plan schema, which the prompt spells out. Each workstream
/// gets `opts.executor` whatever the reply says, and the reply's settings
/// are dropped: the configuration's hold. A reply that is no valid plan
/// (against `vopts`) is answered with its errors and asked again, up to
/// `llm_planner_tries` replies in all; an agent that fails ends it at
/// once. Waits for the replies: for a command line, not for an actor.
bool plan_with_llm(const std::string& goal, const goal_options& opts,
                   const validation_options& vopts, const troupe_config& cfg,
                   llm_planning& out);

/// The planner's task for `goal`; with the errors of the previous `reply`
/// when there was one.
std::string llm_planner_prompt(const std::string& goal,
                               const std::string& reply,
                               const std::string& errors);

/// The YAML or JSON in a reply: inside its first code fence, else from the
/// first line a plan starts with (`name:`, `goal:`, `workstreams:`, `{`),
/// else all of it.
std::string plan_text_in(const std::string& reply);

/// Reads a planner's reply into a plan: code fences and prose around the
/// YAML or JSON dropped, `opts.executor` (and its fixed tier) put on every
/// workstream and the synthesis, settings dropped, then decoded and
/// validated against `vopts`. Problems land in `out`.
plan plan_from_reply(const std::string& reply, const goal_options& opts,
                     const validation_options& vopts, diagnostics& out);

} // namespace troupe
