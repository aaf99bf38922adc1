// Settings laid over settings: a config file's under a plan's own.

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/plan_io.hpp"

using nlohmann::json;
using namespace troupe;

namespace {

std::string all(const diagnostics& d) {
  std::string s;
  for (auto& x : d.items())
    s += (x.warning ? "warning: " : "error: ") + to_string(x) + "\n";
  return s;
}

} // namespace

TEST_CASE("a plan's settings replace a base's key by key, and named "
          "entries one by one",
          "[protocol]") {
  auto base = json::parse(R"({
    "max_parallel_agents": 6, "default_timeout_s": 60,
    "models": {"fast": "base-fast", "deep": "base-deep"},
    "prices": {"m": {"input": 1, "output": 2}},
    "personas": {"qa": "base qa", "docs": "base docs"},
    "limits": {"persona": {"qa": 2}, "model": {"deep": 1}}})");
  auto over = json::parse(R"({
    "max_parallel_agents": 2,
    "models": {"deep": "plan-deep"},
    "prices": {"m": {"input": 5, "output": 6}},
    "personas": {"docs": "plan docs"},
    "limits": {"persona": {"docs": 1}}})");
  auto m = merge_settings(base, over);
  CHECK(m["max_parallel_agents"] == 2);
  CHECK(m["default_timeout_s"] == 60);
  CHECK(m["models"] == json{{"fast", "base-fast"}, {"deep", "plan-deep"}});
  // A price is one entry: replaced whole, not field by field.
  CHECK(m["prices"]["m"] == json{{"input", 5}, {"output", 6}});
  CHECK(m["personas"] == json{{"qa", "base qa"}, {"docs", "plan docs"}});
  CHECK(m["limits"]["persona"] == json{{"qa", 2}, {"docs", 1}});
  CHECK(m["limits"]["model"] == json{{"deep", 1}});
  // Nothing over: the base; nothing under: what is over.
  CHECK(merge_settings(base, json{}) == base);
  CHECK(merge_settings(json::object(), over) == over);
  // What is not an object is left for decoding to refuse.
  CHECK(merge_settings(base, json{1, 2}) == json{1, 2});
  CHECK(merge_settings(base, json{{"models", "fast"}})["models"] == "fast");
}

TEST_CASE("a plan loaded over base settings runs with both, its own first",
          "[protocol]") {
  validation_options opts;
  opts.settings_base = std::make_shared<const json>(json::parse(
    R"({"max_parallel_agents": 6, "models": {"fast": "base-fast"},
        "personas": {"qa": "Test everything."}})"));
  diagnostics d;
  auto p = load_plan_text(R"(name: p
settings: {models: {deep: plan-deep}}
workstreams:
  - {id: a, executor: {kind: noop}}
)",
                          "yaml", opts, d);
  INFO(all(d));
  REQUIRE(d.ok());
  CHECK(p.settings.max_parallel_agents == 6);
  CHECK(p.settings.models
        == std::map<std::string, std::string>{{"deep", "plan-deep"},
                                              {"fast", "base-fast"}});
  CHECK(p.settings.personas.at("qa") == "Test everything.");
  // A plan without settings takes the base's.
  diagnostics d2;
  auto q = load_plan_text("workstreams: [{id: a, executor: {kind: noop}}]\n",
                          "yaml", opts, d2);
  REQUIRE(d2.ok());
  CHECK(q.settings.max_parallel_agents == 6);
  // A plan's bad settings are still its own error.
  diagnostics d3;
  load_plan_text("settings: 3\nworkstreams: [{id: a}]\n", "yaml", opts, d3);
  CHECK(all(d3).find("error: settings: expected") != std::string::npos);
}

TEST_CASE("persona prompts must be named, non-empty and of bounded size",
          "[protocol]") {
  plan_settings s;
  s.personas = {{"", "x"},
                {"qa", ""},
                {"docs", std::string(max_persona_prompt_bytes + 1, 'x')},
                {"ok", std::string(max_persona_prompt_bytes, 'x')}};
  diagnostics d;
  validate_settings(s, d);
  auto text = all(d);
  CHECK(d.error_count() == 3);
  CHECK(text.find("error: settings.personas: a persona must have a name")
        != std::string::npos);
  CHECK(text.find("error: settings.personas.qa: must not be empty")
        != std::string::npos);
  CHECK(text.find("error: settings.personas.docs: too long: 262145 bytes (at "
                  "most 262144)")
        != std::string::npos);
  diagnostics e;
  decode_plan_settings(json{{"personas", {{"qa", 3}}}}, "settings", e);
  CHECK(all(e).find("settings.personas.qa") != std::string::npos);
}
