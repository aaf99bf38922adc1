#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"

namespace {

using troupe::test::all;
using troupe::test::at;
using troupe::test::messages_at;

// A YAML plan, read as `troupe validate` reads it.
troupe::test::decoded load(const std::string& yaml,
                           const troupe::validation_options& opts = {}) {
  return troupe::test::load(yaml, "yaml", opts);
}

/// A workstream line for a YAML plan.
std::string ws(const std::string& fields) {
  return "  - {" + fields + ", executor: {kind: noop}}\n";
}

} // namespace

TEST_CASE("duplicate workstream ids are refused, pointing at the first",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: types") + ws("id: jwt")
                + ws("id: hash") + ws("id: api") + ws("id: jwt"));
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[4] (jwt).id")
        == "duplicate id \"jwt\" (first at workstreams[1])");
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a gate id may repeat neither another gate's nor a workstream's",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a")
                + "gates:\n  - {id: g, after: [a]}\n  - {id: g, after: [a]}\n"
                  "  - {id: a, after: [a]}\n");
  INFO(all(r.d));
  CHECK(at(r.d, "gates[1] (g).id") == "duplicate id \"g\" (first at gates[0])");
  CHECK_THAT(at(r.d, "gates[2] (a).id"),
             Catch::StartsWith("duplicate id \"a\"")
               && Catch::Contains("workstreams[0]"));
  CHECK(r.d.error_count() == 2);
}

TEST_CASE("a dependency on an unknown workstream is refused with a "
          "suggestion",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: types") + ws("id: jwt")
                + ws("id: hash") + ws("id: api, depends_on: [jwtt, hash]"));
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[3] (api).depends_on[0]")
        == "unknown workstream \"jwtt\" (did you mean \"jwt\"?)");
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a workstream depending on itself is refused", "[protocol]") {
  auto r
    = load("workstreams:\n" + ws("id: a") + ws("id: b, depends_on: [a, b]"));
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[1] (b).depends_on[1]") == "depends on itself");
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a dependency cycle is refused once, naming its members in order",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: x") + ws("id: y, depends_on: [x]")
                + ws("id: a, depends_on: [b]") + ws("id: b, depends_on: [c]")
                + ws("id: c, depends_on: [a, y]"));
  INFO(all(r.d));
  CHECK(messages_at(r.d, "workstreams[2] (a).depends_on")
        == std::vector<std::string>{"dependency cycle: a -> b -> c -> a"});
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("two cycles through one workstream are both reported", "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a, depends_on: [b, c]")
                + ws("id: b, depends_on: [a]") + ws("id: c, depends_on: [a]"));
  INFO(all(r.d));
  auto m = messages_at(r.d, "workstreams[0] (a).depends_on");
  REQUIRE(m.size() == 2);
  CHECK(m[0] == "dependency cycle: a -> b -> a");
  CHECK(m[1] == "dependency cycle: a -> c -> a");
  CHECK(r.d.error_count() == 2);
}

TEST_CASE("workstreams that can run at the same time may not own "
          "overlapping files",
          "[protocol]") {
  auto r
    = load("workstreams:\n" + ws("id: types, owns: [src/types.ts]")
           + ws("id: api, owns: [src/api/x.ts], depends_on: [types]")
           + ws("id: docs, owns: [docs/**]") + ws("id: lint, owns: [src/**]"));
  INFO(all(r.d));
  // `lint` overlaps both `types` and `api`, neither ordered with it.
  CHECK(at(r.d, "workstreams[3] (lint).owns[0]")
        == "\"src/**\" overlaps \"src/types.ts\" owned by workstream "
           "\"types\", which can run at the same time");
  CHECK(messages_at(r.d, "workstreams[3] (lint).owns[0]").size() == 2);
  CHECK(r.d.error_count() == 2);
}

TEST_CASE("overlapping writers may run at the same time when a gate "
          "checks their changes for conflicts",
          "[protocol]") {
  auto gate = [](const std::string& checks) {
    return "gates:\n  - {id: merge, after: [a, b], checks: [" + checks + "]}\n";
  };
  auto plan = "workstreams:\n" + ws("id: a, owns: [shared.txt]")
              + ws("id: b, owns: [shared.txt]");
  auto checked = load(plan + gate("completion, conflicts"));
  INFO(all(checked.d));
  CHECK(checked.d.ok());
  CHECK(at(checked.d, "workstreams[1] (b).owns[0]")
        == "\"shared.txt\" overlaps \"shared.txt\" owned by workstream "
           "\"a\", which can run at the same time; gate \"merge\" checks "
           "their changes for conflicts");
  // A gate that does not check for conflicts does not make it safe.
  auto unchecked = load(plan + gate("completion"));
  CHECK(unchecked.d.error_count() == 1);
}

TEST_CASE("ownership may overlap between workstreams ordered by their "
          "dependencies",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a, owns: [src/**]")
                + ws("id: b, owns: [src/x.ts], depends_on: [a]")
                + ws("id: c, owns: [src/y.ts], depends_on: [b]"));
  INFO(all(r.d));
  CHECK(r.d.ok());
}

TEST_CASE("a writing workstream on an explore agent is refused", "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a") + ws("id: b")
                + ws("id: c, agent: explore, owns: [src/x.ts]"));
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[2] (c).agent"),
             Catch::Contains("explore") && Catch::Contains("read-only")
               && Catch::Contains("src/x.ts"));
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a gate after an unknown workstream is refused", "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a")
                + "gates:\n  - {id: g, after: [a, x]}\n");
  INFO(all(r.d));
  CHECK(at(r.d, "gates[0] (g).after[1]") == "unknown workstream \"x\"");
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("an executor kind nobody can run is refused, listing those "
          "available",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: foo}}
gates:
  - {id: g, after: [a], remediate: {executor: {kind: bar}}}
)");
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[0] (a).executor.kind")
        == "unknown executor \"foo\" (available: anthropic, command, noop, openai, sleep)");
  CHECK(at(r.d, "gates[0] (g).remediate.executor.kind")
        == "unknown executor \"bar\" (available: anthropic, command, noop, openai, sleep)");
  CHECK(r.d.error_count() == 2);
}

TEST_CASE("an LLM executor without a prompt is refused", "[protocol]") {
  troupe::validation_options opts;
  opts.executor_kinds.insert("claude-code");
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: anthropic}}
  - {id: b, prompt: Write it., executor: {kind: openai, model: llama3}}
  - {id: c, executor: {kind: claude-code}}
)",
                opts);
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[0] (a).prompt"),
             Catch::Contains("\"anthropic\" needs a prompt"));
  CHECK_THAT(at(r.d, "workstreams[2] (c).prompt"),
             Catch::Contains("\"claude-code\" needs a prompt"));
  CHECK(r.d.error_count() == 2);
}

TEST_CASE("a phase wider than max_phase_width is a warning, not an error",
          "[protocol]") {
  auto r = load("settings: {max_phase_width: 2}\nworkstreams:\n" + ws("id: a")
                + ws("id: b") + ws("id: c") + ws("id: d, depends_on: [a]"));
  INFO(all(r.d));
  CHECK(r.d.ok());
  REQUIRE(r.d.items().size() == 1);
  CHECK(r.d.items()[0].warning);
  CHECK(r.d.items()[0].path == "workstreams");
  CHECK_THAT(r.d.items()[0].message,
             Catch::Contains("phase 1 has 3 workstreams (a, b, c)")
               && Catch::Contains("max_phase_width 2"));
}

TEST_CASE("a gate that waits for work it holds back is refused", "[protocol]") {
  // c depends on a, so it waits for the gate; b, which the gate waits for,
  // depends on c.
  auto r = load("workstreams:\n" + ws("id: a") + ws("id: c, depends_on: [a]")
                + ws("id: b, depends_on: [c]")
                + "gates:\n  - {id: g, after: [a, b]}\n");
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "gates[0] (g).after"),
             Catch::Contains("\"c\" waits for this gate")
               && Catch::Contains("\"b\""));
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("every problem of a plan is reported at once", "[protocol]") {
  auto r = load(R"(
settings: {max_parallel_agents: 0}
workstreams:
  - {id: types, titel: x, owns: [src/**], executor: {kind: noop}}
  - {id: types, owns: [docs/a.md], executor: {kind: noop}}
  - {id: jwt, owns: [src/jwt.ts], depends_on: [typs], retries: two,
     executor: {kind: foo}}
  - {id: scan, agent: explore, owns: [scan.txt], executor: {kind: noop}}
gates:
  - {id: g, after: [jwt, nope]}
)");
  INFO(all(r.d));
  CHECK(at(r.d, "settings.max_parallel_agents") == "must be at least 1, got 0");
  CHECK_THAT(at(r.d, "workstreams[0] (types).titel"),
             Catch::Contains("unknown field"));
  CHECK_THAT(at(r.d, "workstreams[1] (types).id"),
             Catch::Contains("duplicate id"));
  CHECK_THAT(at(r.d, "workstreams[2] (jwt).depends_on[0]"),
             Catch::Contains("unknown workstream \"typs\""));
  CHECK_THAT(at(r.d, "workstreams[2] (jwt).retries"),
             Catch::Contains("expected an integer"));
  CHECK_THAT(at(r.d, "workstreams[2] (jwt).executor.kind"),
             Catch::Contains("unknown executor \"foo\""));
  CHECK_THAT(at(r.d, "workstreams[2] (jwt).owns[0]"),
             Catch::Contains("overlaps \"src/**\""));
  CHECK_THAT(at(r.d, "workstreams[3] (scan).agent"),
             Catch::Contains("read-only"));
  CHECK(at(r.d, "gates[0] (g).after[1]") == "unknown workstream \"nope\"");
  CHECK(r.d.error_count() == 9);
}

TEST_CASE("a plan with cycles skips the checks that need an order and does "
          "not hang",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a, owns: [src/**], depends_on: [b]")
                + ws("id: b, owns: [src/x.ts], depends_on: [a]")
                + ws("id: c, owns: [src/y.ts], depends_on: [c]")
                + "gates:\n  - {id: g, after: [a]}\n");
  INFO(all(r.d));
  CHECK(r.d.error_count() == 2);
  CHECK_THAT(at(r.d, "workstreams[0] (a).depends_on"),
             Catch::Contains("a -> b -> a"));
  CHECK(at(r.d, "workstreams[2] (c).depends_on[0]") == "depends on itself");
}

TEST_CASE("a plan built in code is validated too", "[protocol]") {
  troupe::plan p;
  p.settings.max_phase_width = 0;
  troupe::workstream w;
  w.id = "a";
  w.executor.kind = "command";
  p.workstreams.push_back(w);
  p.workstreams.push_back(troupe::workstream{});
  troupe::diagnostics d;
  troupe::validate_plan(p, {}, d);
  INFO(all(d));
  CHECK(at(d, "settings.max_phase_width") == "must be at least 1, got 0");
  CHECK(at(d, "workstreams[0] (a).persona") == "must not be empty");
  CHECK_THAT(at(d, "workstreams[0] (a).executor.run"),
             Catch::Contains("must not be empty"));
  CHECK(at(d, "workstreams[1].id") == "missing");
}

TEST_CASE("numbers that are not finite are refused", "[protocol]") {
  // No plan text spells them; another node's plan may hold them.
  auto inf = std::numeric_limits<double>::infinity();
  troupe::plan p;
  p.settings.default_timeout_s = inf;
  troupe::workstream w;
  w.id = "a";
  w.persona = "qa";
  w.timeout_s = inf;
  w.estimate_s = -inf;
  w.executor.kind = "sleep";
  w.executor.seconds = std::numeric_limits<double>::quiet_NaN();
  p.workstreams.push_back(w);
  troupe::gate g;
  g.id = "g";
  g.after = {"a"};
  g.checks = {troupe::gate_check{"command", "true", "", inf}};
  p.gates.push_back(g);
  troupe::diagnostics d;
  troupe::validate_plan(p, {}, d);
  INFO(all(d));
  CHECK(at(d, "settings.default_timeout_s")
        == "must be a finite number, got inf");
  CHECK(at(d, "workstreams[0] (a).timeout_s")
        == "must be a finite number, got inf");
  CHECK(at(d, "workstreams[0] (a).estimate_s")
        == "must be a finite number, got -inf");
  CHECK(at(d, "workstreams[0] (a).executor.seconds")
        == "must be a finite number, got nan");
  CHECK(at(d, "gates[0] (g).checks[0].timeout_s")
        == "must be a finite number, got inf");
  CHECK(d.error_count() == 5);
}

TEST_CASE("diagnostics name a workstream or gate by index and id",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: left, owns: [src/**]")
                + ws("id: right, owns: [src/a.ts], retries: -1")
                + "gates:\n  - {id: foundation, after: [left, nope]}\n");
  INFO(all(r.d));
  std::vector<std::string> rendered;
  for (auto& x : r.d.items())
    rendered.push_back(troupe::to_string(x));
  CHECK(rendered
        == std::vector<std::string>{
          "workstreams[1] (right).retries: must not be negative, got -1",
          "gates[0] (foundation).after[1]: unknown workstream \"nope\"",
          "workstreams[1] (right).owns[0]: \"src/a.ts\" overlaps \"src/**\" "
          "owned by workstream \"left\", which can run at the same time"});
}

TEST_CASE("a workstream or gate whose id is missing or no string is named by "
          "its index alone",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: a, retries: -1")
                + ws("title: none, retries: -1") + ws("id: 5, retries: -1")
                + ws("id: '', retries: -1") + "gates:\n  - {after: [a, x]}\n");
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[0] (a).retries")
        == "must not be negative, got -1");
  CHECK(at(r.d, "workstreams[1].id") == "missing");
  CHECK(at(r.d, "workstreams[1].retries") == "must not be negative, got -1");
  CHECK(at(r.d, "workstreams[2].id") == "expected a string, got integer 5");
  CHECK(at(r.d, "workstreams[2].retries") == "must not be negative, got -1");
  CHECK(at(r.d, "workstreams[3].id") == "must not be empty");
  CHECK(at(r.d, "workstreams[3].retries") == "must not be negative, got -1");
  CHECK(at(r.d, "gates[0].id") == "missing");
  CHECK(at(r.d, "gates[0].after[1]") == "unknown workstream \"x\"");
  CHECK(r.d.error_count() == 9);
}

TEST_CASE("ids and keys that are not plain words are quoted in paths, "
          "control characters escaped",
          "[protocol]") {
  auto r = load("workstreams:\n" + ws("id: \"a b\"")
                + ws("id: \"x\\e[31m\", \"k\\e\": 1")
                + ws("id: " + std::string(100, 'w') + ", retries: -1"));
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[0] (\"a b\").id"),
             Catch::StartsWith("invalid id \"a b\""));
  CHECK_THAT(at(r.d, "workstreams[1] (\"x\\u001b[31m\").id"),
             Catch::StartsWith("invalid id \"x\\u001b[31m\""));
  CHECK(at(r.d, "workstreams[1] (\"x\\u001b[31m\").\"k\\u001b\"")
        == "unknown field");
  // Long ids are cut.
  CHECK(at(r.d, "workstreams[2] (\"" + std::string(57, 'w') + "...\").retries")
        == "must not be negative, got -1");
  CHECK(r.d.error_count() == 4);
  for (auto& x : r.d.items())
    for (unsigned char c : troupe::to_string(x))
      CHECK(c >= 0x20);
}

TEST_CASE("the built-in executor kinds are the commands' and the LLM APIs'",
          "[protocol]") {
  CHECK(troupe::builtin_executor_kinds()
        == std::set<std::string>{"anthropic", "command", "noop", "openai",
                                 "sleep"});
}

TEST_CASE("a plan that did not come from a file meets the same size bounds",
          "[protocol]") {
  troupe::plan p;
  p.name = "huge";
  p.workstreams.resize(troupe::max_plan_workstreams + 1);
  p.gates.resize(troupe::max_plan_gates + 1);
  troupe::diagnostics d;
  troupe::validate_plan(p, {}, d);
  CHECK_FALSE(d.ok());
  CHECK(at(d, "workstreams") == "too many: 200001 (at most 200000)");
  CHECK(at(d, "gates") == "too many: 1001 (at most 1000)");
  // Nothing else was looked at: 200,001 workstreams without ids would
  // otherwise each have an error.
  CHECK(d.items().size() == 2);
}

TEST_CASE("a synthesis that writes nothing, or whose id a workstream or gate "
          "took, is refused",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: synthesis, executor: {kind: noop}}
gates:
  - {id: g, after: [synthesis]}
synthesis: {executor: {kind: noop}}
)");
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "synthesis.executor.kind"),
             Catch::Contains("executor \"noop\" writes nothing"));
  CHECK(at(r.d, "workstreams[0] (synthesis).id")
        == "id \"synthesis\" is the synthesis agent's (synthesis.executor); "
           "choose another");
  CHECK(r.d.error_count() == 2);

  auto gate = load(R"(
workstreams:
  - {id: a, prompt: Do it., executor: {kind: anthropic}}
gates:
  - {id: synthesis, after: [a]}
synthesis: {executor: {kind: command, run: ./sum.sh}}
)");
  INFO(all(gate.d));
  CHECK(at(gate.d, "gates[0] (synthesis).id")
        == "id \"synthesis\" is the synthesis agent's (synthesis.executor); "
           "choose another");
  CHECK(gate.d.error_count() == 1);

  // Without a synthesis agent the id is free.
  auto free = load(R"(
workstreams:
  - {id: synthesis, executor: {kind: noop}}
)");
  CHECK(free.d.ok());
}

TEST_CASE("a synthesis agent needs a model, and one that is no agent takes "
          "no agent's options",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis: {executor: {kind: openai}}
)");
  INFO(all(r.d));
  CHECK(at(r.d, "synthesis.model")
        == "no model for tier \"deep\" with executor \"openai\": name one in "
           "settings.models.deep or the executor's model");
  auto named = load(R"(
settings: {models: {deep: llama3.1:70b}}
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis: {executor: {kind: openai}}
)");
  CHECK(named.d.ok());

  // A plan built in code (one a peer sent) meets what decoding refuses.
  auto p = load("workstreams: [{id: a, executor: {kind: noop}}]\n").p;
  p.synthesis.prompt = "Sum up.";
  p.synthesis.retries = 2;
  troupe::diagnostics d;
  troupe::validate_plan(p, {}, d);
  INFO(all(d));
  CHECK(at(d, "synthesis.prompt")
        == "applies to the agent that writes the synthesis, and "
           "synthesis.executor names none");
  CHECK(at(d, "synthesis.retries")
        == "applies to the agent that writes the synthesis, and "
           "synthesis.executor names none");
  CHECK(d.error_count() == 2);
}
