#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"

namespace troupe {

/// A goal's text taken apart: the steps it names in order ("A then B"),
/// each made of deliverables that can be done side by side ("A and B").
/// A requirements document (lines of `- item` under headings) gives one
/// step of its items, or one step per section when its headings name
/// phases, steps, stages or milestones.
struct goal_outline {
  /// The goal in one line: the text itself, or a document's first heading
  /// (else first line).
  std::string title;
  std::vector<std::vector<std::string>> steps;
  /// The text was a document of items rather than a sentence.
  bool document = false;
};

/// Takes goal text apart (see `goal_outline`). Splits on "then" and on
/// "and", commas and semicolons outside quotes and brackets; a fragment
/// without a verb of its own ("password hashing") takes the verb of the
/// step's first ("implement").
goal_outline outline_goal(const std::string& text);

/// How the heuristic planner turns a goal into a plan.
struct goal_options {
  /// What each workstream's agent runs on: copied into every workstream,
  /// every gate's fixer and (for agents) the synthesis.
  executor_spec executor;
  /// Set to put every workstream on `tier` instead of routing by agent
  /// kind (explore on fast, plan on deep, general on balanced).
  bool fixed_tier = false;
  model_tier tier = model_tier::balanced;
  /// The widest phase the plan may have.
  int32_t max_phase_width = 7;
};

/// What the planner made of a goal, and why.
struct goal_assessment {
  complexity level = complexity::simple;
  int32_t score = 0;
  /// The indicators that scored, each with what made it score.
  std::vector<std::string> reasons;
  std::string strategy;
  /// The words that pointed at the strategy; empty for the default one.
  std::vector<std::string> strategy_words;
  /// Lines of code the goal is expected to change, as estimated.
  int32_t estimated_lines = 0;
};

/// The most deliverables the heuristic planner takes from one goal: a
/// requirements document longer than that is several goals.
constexpr size_t max_goal_deliverables = 300;

/// A plan made from a goal, with the assessment that shaped it; or, when
/// the goal cannot be planned, why (`error`).
struct goal_plan {
  plan p;
  goal_assessment assessment;
  std::string error;
};

/// The heuristic planner (DESIGN.md, "Planning"): deterministic, no model
/// asked. Scores the goal's complexity; a SIMPLE goal is one workstream.
/// Otherwise each deliverable is a workstream (parallel within a step, a
/// chain across steps), with persona, agent kind and tier from its words and
/// file patterns, the strategy's own first and last steps (reproduce a bug,
/// measure before optimizing, ...), a test workstream after the
/// implementation behind a gate, docs last where a feature calls for it, and
/// no phase wider than `max_phase_width`. The plan is valid as a plan file.
goal_plan plan_from_goal(const std::string& goal, const goal_options& opts);

/// The plan of `troupe parallel`: one workstream per task, all at once.
/// A task's prefix before ':' (`explore:`, `plan:`, `general:`) picks its
/// agent kind; without one it is general. With a `command` executor that
/// names no command, each task's text is its command.
plan plan_from_tasks(const std::vector<std::string>& tasks,
                     const goal_options& opts);

/// The plan as YAML a person can read and edit: every value the schema
/// would default left out, keys in the order plans are written. Decoding it
/// gives `p` back.
std::string plan_yaml(const plan& p);

} // namespace troupe
