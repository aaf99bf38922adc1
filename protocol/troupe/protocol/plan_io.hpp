#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"

namespace troupe {

/// Bounds on what a plan holds, wherever it comes from (a file, or a
/// submitter over the network). Each workstream costs a struct and
/// validation work; each gate, one pass over all workstreams.
constexpr size_t max_plan_workstreams = 200'000;
constexpr size_t max_plan_gates = 1'000;
/// The longest system prompt a persona may have.
constexpr size_t max_persona_prompt_bytes = 256 * 1024;

/// The executor kinds every Troupe build has.
const std::set<std::string>& builtin_executor_kinds();

/// What validation accepts beyond the built-ins.
struct validation_options {
  /// Executor kinds that can run; defaults to the built-in ones.
  std::set<std::string> executor_kinds = builtin_executor_kinds();
  /// Kinds that cannot run here, with why (a program is missing): a plan
  /// that asks for one is refused saying so.
  std::map<std::string, std::string> unavailable_executors;
  /// Settings a plan's own are laid over (a config file's), as JSON; see
  /// `merge_settings`.
  std::shared_ptr<const nlohmann::json> settings_base;
};

/// Parses plan text, YAML or JSON (`format` is "yaml", "json", or "" to tell
/// from the text), into JSON. Syntax errors land in `out` with their line.
/// Refuses text over 16 MiB, nesting deeper than 64 levels and more than
/// 1,000,000 values, YAML aliases expanded. Strings from YAML come out as
/// valid UTF-8.
bool parse_plan_text(const std::string& text, const std::string& format,
                     nlohmann::json& result, diagnostics& out);

/// Decodes a plan from JSON, reporting unknown keys, wrong types and missing
/// fields with their paths, and filling defaults. Refuses more than 200,000
/// workstreams or 1,000 gates.
plan decode_plan(const nlohmann::json& j, diagnostics& out);

/// Decodes a plan's `settings` object on its own (a config file has one),
/// paths in `out` under `path`.
plan_settings decode_plan_settings(const nlohmann::json& v,
                                   const std::string& path, diagnostics& out);

/// Checks settings on their own: what `validate_plan` checks of them.
void validate_settings(const plan_settings& s, diagnostics& out);

/// The settings `over` laid over `base`, both as plans write them: each key
/// `over` has replaces `base`'s, but the named entries of `models`,
/// `prices`, `personas` and `limits.persona` / `limits.model` replace
/// entry by entry, so a plan naming one tier keeps the others.
nlohmann::json merge_settings(const nlohmann::json& base,
                              const nlohmann::json& over);

/// Checks a decoded plan's semantics: ids, dependencies, cycles, ownership,
/// agent kinds, gates and settings.
void validate_plan(const plan& p, const validation_options& opts,
                   diagnostics& out);

/// Reads, decodes and validates a plan file: a regular file, read no
/// further than a plan may go. The result is usable only when `out.ok()`.
plan load_plan_file(const std::string& path, const validation_options& opts,
                    diagnostics& out);

/// Same as `load_plan_file` for text already in memory; `origin` names it.
plan load_plan_text(const std::string& text, const std::string& format,
                    const validation_options& opts, diagnostics& out);

/// True if some path matches both ownership globs (`*`, `?`, `**`; a plain
/// path also owns everything below it).
bool globs_overlap(const std::string& a, const std::string& b);

/// True if `path` (relative, '/'-separated) matches ownership glob `glob`.
bool glob_matches(const std::string& glob, std::string_view path);

} // namespace troupe
