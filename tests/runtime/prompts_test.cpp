// Persona prompts: the ones shipped, and the settings' over them.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "troupe/runtime/prompts.hpp"

using namespace troupe;
namespace fs = std::filesystem;

TEST_CASE("every shipped persona has its prompt file's text, compiled in",
          "[runtime]") {
  auto& builtin = builtin_persona_prompts();
  for (auto persona :
       {"backend", "frontend", "data_engineer", "agent", "analyzer",
        "refactorer", "devops", "security", "performance", "qa", "docs",
        "debugger"})
    CHECK(builtin.count(persona) == 1);
  size_t files = 0;
  for (auto& e : fs::directory_iterator{fs::path{TROUPE_SOURCE_DIR}
                                        / "runtime/personas"}) {
    if (e.path().extension() != ".md")
      continue;
    ++files;
    std::ifstream in{e.path(), std::ios::binary};
    std::ostringstream text;
    text << in.rdbuf();
    auto persona = e.path().stem().string();
    INFO(persona);
    REQUIRE(builtin.count(persona) == 1);
    CHECK(builtin.at(persona) == text.str());
  }
  CHECK(files == builtin.size());
}

TEST_CASE("the settings' persona prompts win over the shipped ones, and "
          "any persona gets one",
          "[runtime]") {
  plan_settings s;
  s.personas = {{"qa", "Test twice."}, {"reviewer", "Review."}};
  CHECK(persona_prompt(s, "qa") == "Test twice.");
  CHECK(persona_prompt_source(s, "qa") == "settings");
  CHECK(persona_prompt(s, "reviewer") == "Review.");
  CHECK(persona_prompt(s, "backend") == builtin_persona_prompts().at("backend"));
  CHECK(persona_prompt_source(s, "backend") == "built-in");
  auto general = persona_prompt(s, "astronomer");
  CHECK(general.find("You are the astronomer agent") == 0);
  CHECK(persona_prompt_source(s, "astronomer") == "general");
  // A dispatch made without the run's settings still gets a prompt.
  workstream_spec spec;
  spec.ws.persona = "docs";
  CHECK(system_prompt_of(spec) == builtin_persona_prompts().at("docs"));
  spec.system_prompt = "Write well.";
  CHECK(system_prompt_of(spec) == "Write well.");
}
