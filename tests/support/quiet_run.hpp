#pragma once

// `troupe run` of a plan in a test's directory, quietly and without a
// journal, for the tests that read what it reports.

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

/// Shell exports that send a `troupe`'s anthropic agents to `mock`, with
/// API key `key`.
inline std::string anthropic_env(const mock_llm& mock, const std::string& key) {
  return "export ANTHROPIC_BASE_URL=" + sh_quote(mock.url())
         + " ANTHROPIC_API_KEY=" + key + "; ";
}

/// How a run ended, and its JSON report (null when it wrote none).
struct quiet_run {
  cli_result cli;
  nlohmann::json report;
};

/// `troupe run -q --no-journal` of `plan` in `dir`, its environment set by
/// `env`.
inline quiet_run run_quietly(const temp_dir& dir, const std::string& plan,
                             const std::string& env = {}) {
  auto report_file = dir.path() / "report.json";
  std::error_code ignored;
  std::filesystem::remove(report_file, ignored);
  quiet_run r;
  r.cli = run_troupe(
    {"run", plan, "-q", "--no-journal", "--report", report_file.string()},
    dir.str(), env);
  if (std::filesystem::exists(report_file))
    r.report = read_json_file(report_file);
  return r;
}

} // namespace troupe::test
