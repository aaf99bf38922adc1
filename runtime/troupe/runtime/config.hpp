#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe {

/// Troupe's configuration on this machine: the settings every plan starts
/// from, and how this node reaches the LLM providers and the Claude Code
/// CLI. Read from a YAML (or JSON) file:
///
///     settings:            # as a plan's; a plan's own override them
///       max_parallel_agents: 6
///       models: {fast: claude-haiku-4-5}
///       personas:
///         qa: {file: prompts/qa.md}   # or the prompt's text
///     providers:
///       anthropic: {api_key_file: anthropic.key, retries: 6}
///       openai: {base_url: "http://127.0.0.1:8080/v1"}
///       claude-code: {program: /opt/claude/bin/claude}
///     git:                 # who the commits of runs on a repository are by
///       author_name: Release Bot
///       author_email: bot@example.com
///
/// Relative paths are relative to the file; `~/` is the home directory.
/// The environment wins over the file: ANTHROPIC_BASE_URL,
/// ANTHROPIC_API_KEY, OPENAI_BASE_URL, OPENAI_API_KEY, TROUPE_CLAUDE_CLI.
struct troupe_config {
  /// The file read; empty when there is none.
  std::string path;
  /// How it was found: "--config", "TROUPE_CONFIG" or "default path".
  std::string found_by;
  /// The file's `settings`, checked, as a JSON object (empty when none):
  /// what every plan's settings are laid over.
  std::shared_ptr<const nlohmann::json> settings;
  /// Where each of `settings`' persona prompts came from, when from a file.
  std::map<std::string, std::string> persona_files;
  llm_endpoint anthropic;
  llm_endpoint openai;
  /// The Claude Code CLI the file names; empty to look for it.
  std::string claude_program;
  /// Who the commits of runs on a repository are by; empty takes Troupe's
  /// own ("Troupe", "troupe@localhost").
  std::string git_author_name;
  std::string git_author_email;
  /// Where each provider value came from ("default", "config",
  /// "env ANTHROPIC_API_KEY", "file /path"), by its path such as
  /// `providers.anthropic.base_url`.
  std::map<std::string, std::string> sources;
};

/// The configuration of an empty file: defaults, and the environment.
troupe_config default_config();

/// Finds and reads the configuration: `explicit_path` (`--config`), else
/// the file TROUPE_CONFIG names, else `$XDG_CONFIG_HOME/troupe/config.yaml`
/// (`~/.config/troupe/config.yaml`) if it exists; no file at all is no
/// error. What is wrong lands in `out` with its path in the file; the
/// result is usable only when `out.ok()`. Keys are never quoted.
troupe_config load_config(const std::string& explicit_path, diagnostics& out);

} // namespace troupe
