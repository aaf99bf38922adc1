#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"

using namespace troupe;

namespace {

workstream agent_ws(std::string kind, model_tier tier) {
  workstream ws;
  ws.id = "w";
  ws.model = tier;
  ws.executor.kind = std::move(kind);
  return ws;
}

std::string all(const diagnostics& d) {
  std::string out;
  for (auto& x : d.items())
    out += to_string(x) + "\n";
  return out;
}

plan decoded(const std::string& yaml, diagnostics& d) {
  nlohmann::json j;
  REQUIRE(parse_plan_text(yaml, "yaml", j, d));
  return decode_plan(j, d);
}

} // namespace

TEST_CASE("a workstream's model comes from its executor, then the run's "
          "tiers, then the executor's defaults",
          "[protocol]") {
  plan_settings s;
  auto ws = agent_ws("anthropic", model_tier::fast);
  CHECK(resolve_model(s, ws) == "claude-haiku-4-5");
  ws.model = model_tier::deep;
  CHECK(resolve_model(s, ws) == "claude-opus-4-5");
  s.models["deep"] = "claude-opus-4-1";
  CHECK(resolve_model(s, ws) == "claude-opus-4-1");
  ws.executor.model = "my-model";
  CHECK(resolve_model(s, ws) == "my-model");
  // OpenAI-compatible servers have no default: the tier must be named.
  auto local = agent_ws("openai", model_tier::balanced);
  CHECK(resolve_model(plan_settings{}, local).empty());
  CHECK(resolve_model(plan_settings{}, agent_ws("claude-code",
                                                model_tier::balanced))
        == "sonnet");
  // Commands ask no model.
  CHECK(resolve_model(s, agent_ws("command", model_tier::deep)).empty());
}

TEST_CASE("prices come from the settings, else from a model's family",
          "[protocol]") {
  plan_settings s;
  model_price p;
  REQUIRE(find_price(s, "claude-sonnet-4-5", p));
  CHECK(p == model_price{3, 15, 0.3, 3.75});
  // A dated name costs what its family does; a newer family is not an
  // older one's dated name.
  REQUIRE(find_price(s, "claude-sonnet-4-5-20250929", p));
  CHECK(p.input == 3);
  REQUIRE(find_price(s, "claude-opus-4-5", p));
  CHECK(p.input == 5);
  REQUIRE(find_price(s, "claude-opus-4-20250514", p));
  CHECK(p.input == 15);
  CHECK_FALSE(find_price(s, "llama-3.1-8b", p));
  CHECK_FALSE(find_price(s, "claude-opus-4-9", p));
  s.prices["llama-3.1-8b"] = {0.1, 0.2, 0, 0};
  REQUIRE(find_price(s, "llama-3.1-8b", p));
  CHECK(p.output == 0.2);
  s.prices["claude-sonnet-4-5"] = {1, 1, 1, 1};
  REQUIRE(find_price(s, "claude-sonnet-4-5", p));
  CHECK(p.input == 1);
}

TEST_CASE("cost is tokens times price per million, each kind of token apart",
          "[protocol]") {
  usage u{"claude-sonnet-4-5", 1'000'000, 200'000, 3'000'000, 400'000, 0};
  // 3 + 0.2 * 15 + 3 * 0.3 + 0.4 * 3.75
  CHECK(cost_usd(u, {3, 15, 0.3, 3.75}) == Approx(3 + 3 + 0.9 + 1.5));
  CHECK(cost_usd(usage{"m", 7, 0, 0, 0, 0}, {1, 0, 0, 0})
        == Approx(7e-6));
  CHECK(cost_usd(u, model_price{}) == 0);
}

TEST_CASE("usage adds up per model, once each, in order of names",
          "[protocol]") {
  std::vector<usage> totals;
  add_usage(totals, {"b", 1, 2, 3, 4, 0.5});
  add_usage(totals, {"a", 10, 0, 0, 0, 1});
  add_usage(totals, {"b", 1, 1, 1, 1, 0.25});
  REQUIRE(totals.size() == 2);
  CHECK(totals[0].model == "a");
  CHECK(totals[1].model == "b");
  CHECK(totals[1].input_tokens == 2);
  CHECK(totals[1].output_tokens == 3);
  CHECK(totals[1].cache_read_tokens == 4);
  CHECK(totals[1].cache_write_tokens == 5);
  CHECK(totals[1].cost_usd == Approx(0.75));
}

TEST_CASE("usage sums stay at the largest count rather than wrap",
          "[protocol]") {
  constexpr auto max = std::numeric_limits<int64_t>::max();
  std::vector<usage> totals;
  add_usage(totals, {"m", max, 1, max - 1, 0, 1});
  add_usage(totals, {"m", max, 2, 1, 0, 1});
  add_usage(totals, {"m", 5, 0, 1, 0, 1});
  REQUIRE(totals.size() == 1);
  CHECK(totals[0].input_tokens == max);
  CHECK(totals[0].output_tokens == 3);
  CHECK(totals[0].cache_read_tokens == max);
  CHECK(totals[0].cost_usd == 3);
}

TEST_CASE("one usage less another: per model, never below zero",
          "[protocol]") {
  std::vector<usage> all{{"a", 10, 5, 4, 3, 1.0}, {"b", 7, 7, 0, 0, 0.5}};
  auto left = usage_less(all, {{"a", 4, 5, 9, 1, 0.25}, {"c", 1, 1, 1, 1, 9}});
  REQUIRE(left.size() == 2);
  CHECK(left[0].model == "a");
  CHECK(left[0].input_tokens == 6);
  CHECK(left[0].output_tokens == 0);
  CHECK(left[0].cache_read_tokens == 0);
  CHECK(left[0].cache_write_tokens == 2);
  CHECK(left[0].cost_usd == Approx(0.75));
  CHECK(left[1].model == "b");
  CHECK(left[1].input_tokens == 7);
  // A model with nothing left is dropped; a part costing more leaves 0.
  auto none = usage_less(all, {{"a", 10, 5, 4, 3, 2.0}});
  REQUIRE(none.size() == 1);
  CHECK(none[0].model == "b");
  // Nor does a part below zero add anything, or wrap.
  auto odd = usage_less({{"a", std::numeric_limits<int64_t>::max(), 0, 0, 0, 0}},
                        {{"a", std::numeric_limits<int64_t>::min(), 0, 0, 0, 0}});
  REQUIRE(odd.size() == 1);
  CHECK(odd[0].input_tokens == std::numeric_limits<int64_t>::max());
}

TEST_CASE("plans name tiers, exact models, prices and agent options",
          "[protocol]") {
  diagnostics d;
  auto p = decoded(R"(name: agents
settings:
  models: {fast: claude-haiku-4-5, deep: my-deep}
  prices:
    my-deep: {input: 2, output: 8, cache_read: 0.2}
workstreams:
  - id: a
    prompt: look
    model: claude-sonnet-4-5-20250929
    executor: {kind: anthropic, max_tokens: 512, stream: false}
  - id: b
    prompt: plan
    agent: plan
    executor: {kind: claude-code, max_turns: 3, allowed_tools: [Read, Write],
               permission_mode: acceptEdits}
)",
                   d);
  INFO(all(d));
  REQUIRE(d.ok());
  CHECK(p.settings.models.at("fast") == "claude-haiku-4-5");
  auto& price = p.settings.prices.at("my-deep");
  CHECK(price.output == 8);
  CHECK(price.cache_read == 0.2);
  // Unnamed cache writes cost what fresh input does.
  CHECK(price.cache_write == 2);
  auto& a = p.workstreams[0];
  CHECK(a.executor.model == "claude-sonnet-4-5-20250929");
  CHECK(a.executor.max_tokens == 512);
  CHECK_FALSE(a.executor.stream);
  CHECK(resolve_model(p.settings, a) == "claude-sonnet-4-5-20250929");
  auto& b = p.workstreams[1];
  CHECK(b.model == model_tier::deep);
  CHECK(resolve_model(p.settings, b) == "my-deep");
  CHECK(b.executor.max_turns == 3);
  CHECK(b.executor.allowed_tools == std::vector<std::string>{"Read", "Write"});
  CHECK(b.executor.permission_mode == "acceptEdits");

  // What the journal keeps reads back the same.
  diagnostics again;
  auto back = decode_plan(nlohmann::json::parse(json_text(p)), again);
  INFO(all(again));
  REQUIRE(again.ok());
  CHECK(json_text(back) == json_text(p));
}

TEST_CASE("bad agent settings are refused with their paths", "[protocol]") {
  diagnostics d;
  auto p = decoded(R"(name: bad
settings:
  models: {fastest: x, deep: ""}
  prices:
    m: {input: -1, output: 1, per_call: 3}
    n: {output: 2}
workstreams:
  - {id: a, prompt: x, model: fsat, executor: {kind: anthropic}}
  - {id: b, prompt: x, executor: {kind: anthropic, max_tokens: 0}}
  - {id: c, prompt: x, model: m1, executor: {kind: anthropic, model: m2}}
)",
                   d);
  auto text = all(d);
  INFO(text);
  CHECK(text.find("settings.models.fastest: unknown tier") != std::string::npos);
  CHECK(text.find("settings.models.deep: must not be empty") != std::string::npos);
  CHECK(text.find("settings.prices.m.input: must not be negative") != std::string::npos);
  CHECK(text.find("settings.prices.m.per_call: unknown field") != std::string::npos);
  CHECK(text.find("settings.prices.n.input: missing") != std::string::npos);
  CHECK(text.find("workstreams[0] (a).model: unknown tier \"fsat\" (did you mean \"fast\"?)")
        != std::string::npos);
  CHECK(text.find("workstreams[1] (b).executor.max_tokens") != std::string::npos);
  CHECK(text.find("workstreams[2] (c).model: names model \"m1\" but its executor "
                  "names \"m2\"")
        != std::string::npos);
}

TEST_CASE("an agent without a prompt or a model is refused by validation",
          "[protocol]") {
  diagnostics d;
  load_plan_text(R"(name: bad
workstreams:
  - {id: a, executor: {kind: anthropic}}
  - {id: b, prompt: x, executor: {kind: openai}}
  - {id: c, prompt: x, model: llama3, executor: {kind: openai}}
)",
                 "yaml", {}, d);
  auto text = all(d);
  INFO(text);
  CHECK(text.find("workstreams[0] (a).prompt: must not be empty") != std::string::npos);
  CHECK(text.find("workstreams[1] (b).model: no model for tier \"fast\" with "
                  "executor \"openai\"")
        != std::string::npos);
  CHECK(text.find("workstreams[2]") == std::string::npos);
}

TEST_CASE("limits per persona and model are read, checked and kept",
          "[protocol]") {
  diagnostics d;
  auto p = decoded(R"(name: limits
settings:
  limits: {persona: {qa: 2}, model: {deep: 1, claude-opus-4-5: 3}}
workstreams: [{id: a}]
)",
                   d);
  INFO(all(d));
  REQUIRE(d.ok());
  CHECK(p.settings.limits.persona.at("qa") == 2);
  CHECK(p.settings.limits.model.at("deep") == 1);
  CHECK(p.settings.limits.model.at("claude-opus-4-5") == 3);
  diagnostics again;
  auto back = decode_plan(nlohmann::json::parse(json_text(p)), again);
  REQUIRE(again.ok());
  CHECK(back.settings.limits.model == p.settings.limits.model);
  CHECK(json_text(back) == json_text(p));

  diagnostics bad;
  decoded(R"(name: limits
settings:
  limits: {persona: {qa: 0, "": 1}, model: {deep: two}, tier: {}}
workstreams: [{id: a}]
)",
          bad);
  auto text = all(bad);
  INFO(text);
  CHECK(text.find("settings.limits.persona.qa: must be at least 1, got 0")
        != std::string::npos);
  CHECK(text.find("settings.limits.persona.\"\": must name a persona")
        != std::string::npos);
  CHECK(text.find("settings.limits.model.deep: expected") != std::string::npos);
  CHECK(text.find("settings.limits.tier: unknown field") != std::string::npos);
}

TEST_CASE("an agent's expected cost: its own estimate, its tier's, else "
          "Troupe's guess; nothing for other work",
          "[protocol]") {
  plan_settings s;
  auto api = agent_ws("anthropic", model_tier::fast);
  auto cli = agent_ws("claude-code", model_tier::fast);
  // Claude Code sessions take several calls: they are guessed dearer.
  CHECK(estimated_cost(s, api).high < estimated_cost(s, cli).high);
  CHECK(estimated_cost(s, agent_ws("anthropic", model_tier::deep)).low
        > estimated_cost(s, api).low);
  s.cost_estimates["fast"] = {0.5, 1};
  CHECK(estimated_cost(s, api).low == 0.5);
  CHECK(estimated_cost(s, cli).high == 1);
  api.estimate_usd = {0.125, 0.25};
  CHECK(estimated_cost(s, api).low == 0.125);
  CHECK(estimated_cost(s, agent_ws("command", model_tier::fast)).empty());
}

TEST_CASE("what tokens would have cost on the deep tier", "[protocol]") {
  plan_settings s;
  usage u{"claude-haiku-4-5", 1000, 200, 100, 10};
  double deep = 0;
  // Anthropic's deep tier is Opus 4.5: $5, $25, $0.50, $6.25 a million.
  REQUIRE(deep_tier_cost(s, agent_ws("anthropic", model_tier::fast), u, deep));
  CHECK(deep == Approx((1000 * 5 + 200 * 25 + 100 * 0.5 + 10 * 6.25) / 1e6));
  // The CLI's alias costs what its family's current model does.
  REQUIRE(deep_tier_cost(s, agent_ws("claude-code", model_tier::fast), u, deep));
  CHECK(deep == Approx((1000 * 5 + 200 * 25 + 100 * 0.5 + 10 * 6.25) / 1e6));
  // An OpenAI-compatible server has no deep model unless the settings
  // name one, and a price for it.
  CHECK_FALSE(deep_tier_cost(s, agent_ws("openai", model_tier::fast), u, deep));
  s.models["deep"] = "big";
  s.prices["big"] = {1, 2, 1, 1};
  REQUIRE(deep_tier_cost(s, agent_ws("openai", model_tier::fast), u, deep));
  CHECK(deep == Approx((1000 * 1 + 200 * 2 + 100 + 10) / 1e6));
}

TEST_CASE("settings and workstreams take costs as a number or [low, high], "
          "never negative or upside down",
          "[protocol]") {
  diagnostics d;
  auto s = decode_plan_settings(
    nlohmann::json::parse(R"({"max_cost_usd": 2.5,
      "cost_estimates": {"fast": 0.5, "deep": [1, 3]}})"),
    "settings", d);
  INFO(all(d));
  REQUIRE(d.ok());
  CHECK(s.max_cost_usd == 2.5);
  CHECK(s.cost_estimates.at("fast").low == 0.5);
  CHECK(s.cost_estimates.at("fast").high == 0.5);
  CHECK(s.cost_estimates.at("deep").high == 3);
  diagnostics bad;
  decode_plan_settings(
    nlohmann::json::parse(R"({"max_cost_usd": -1,
      "cost_estimates": {"huge": 1, "fast": [3, 1], "deep": "cheap",
                         "balanced": [1]}})"),
    "settings", bad);
  auto text = all(bad);
  CHECK(text.find("settings.max_cost_usd: must not be negative")
        != std::string::npos);
  CHECK(text.find("settings.cost_estimates.huge: unknown tier")
        != std::string::npos);
  CHECK(text.find("settings.cost_estimates.fast: must be US dollars, not "
                  "negative, low <= high")
        != std::string::npos);
  CHECK(text.find("settings.cost_estimates.deep: expected US dollars")
        != std::string::npos);
  CHECK(text.find("settings.cost_estimates.balanced: expected US dollars")
        != std::string::npos);
}
