#pragma once

// The Claude Code CLI as the tests run it: installed by .ci/claude-code
// (npm, pinned version), talking to the stand-in LLM server only.

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"

namespace troupe::test {

/// The key the CLI presents to the stand-in server; never to be printed.
constexpr auto claude_cli_key = "sk-ant-cli-5ecr3t-never-printed";

/// The CLI, or a failure saying how to get it: it is part of the product.
inline std::string claude_cli() {
  std::string cli = TROUPE_TEST_CLAUDE_CLI;
  if (!std::filesystem::exists(cli))
    FAIL("the Claude Code CLI is not installed at "
         << cli << ": .ci/claude-code installs it (npm, pinned version)");
  return cli;
}

/// Shell assignments for what the CLI needs to talk to `mock` and nothing
/// else, in a HOME of its own.
inline std::string claude_cli_env(const mock_llm& mock,
                                  const std::filesystem::path& home) {
  std::filesystem::create_directories(home);
  return "export HOME=" + sh_quote(home.string()) + " ANTHROPIC_BASE_URL="
         + sh_quote(mock.url()) + " ANTHROPIC_API_KEY=" + claude_cli_key
         + " CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"
           " CLAUDE_CODE_MAX_RETRIES=1; unset ANTHROPIC_AUTH_TOKEN; ";
}

/// The same, for a `troupe` that runs `cli`.
inline std::string claude_troupe_env(const mock_llm& mock,
                                     const std::filesystem::path& home,
                                     const std::string& cli) {
  return claude_cli_env(mock, home)
         + "export TROUPE_CLAUDE_CLI=" + sh_quote(cli) + "; ";
}

} // namespace troupe::test
