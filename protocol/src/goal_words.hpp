#pragma once

// Words of goal text, shared by the outline (goal_text.cpp) and the
// planner (goal_planner.cpp).

#include <string>
#include <string_view>
#include <vector>

#include "text.hpp"
#include "troupe/protocol/goal.hpp"

namespace troupe::detail {

/// The words of `text` in lower case: letters, digits, '_' and inner '-';
/// bytes beyond ASCII are letters.
std::vector<std::string> word_list(std::string_view text);

/// True for the verbs a deliverable starts with ("add", "fix", "audit").
bool is_verb(const std::string& word);

/// The persona the words and file patterns of `text` point at, else
/// `fallback`, which also wins ties when `fallback_wins_ties`.
std::string goal_persona(const std::string& text, const std::string& fallback,
                         bool fallback_wins_ties = false);

/// The file patterns `text` names ("src/api/", "auth.ts", "Dockerfile").
std::vector<std::string> goal_file_patterns(const std::string& text);

/// The agent a deliverable needs, by its verb: reading, designing or
/// writing.
agent_kind goal_agent_kind(const std::string& text);

/// An id for a deliverable: its first words after the verb (with it, when
/// `keep_verb`), stop words left out, joined by '-'; the verb alone when
/// nothing else is left.
std::string goal_slug(const std::string& text, size_t max_words = 3,
                      bool keep_verb = false);

/// The persona a strategy's own work falls to, and the one its
/// deliverables get when their words point at none.
std::string strategy_persona(const std::string& strategy);

/// The plan for an outlined and scored goal (goal_shape.cpp).
plan shape_goal(const std::string& goal, const goal_outline& o,
                const goal_assessment& a, const goal_options& opts);

} // namespace troupe::detail
