// Decoding a plan's fields: unknown keys, types, required fields, ranges,
// defaults, executors and gate checks (plan_syntax_test.cpp reads the
// text itself).

#include <cstdio>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "support/diagnostics.hpp"
#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/plan_io.hpp"

using troupe::test::all;
using troupe::test::at;
using troupe::test::count_at;
using troupe::test::load;

TEST_CASE("an unknown key is refused with a suggestion of the key meant",
          "[protocol]") {
  auto r = load("workstreams:\n  - id: a\n    titel: A\n    executor: "
                "{kind: noop}\n");
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[0] (a).titel")
        == "unknown field (did you mean \"title\"?)");
  auto far = load("workstreams:\n  - id: a\n    colour: red\n");
  CHECK(at(far.d, "workstreams[0] (a).colour") == "unknown field");
  auto top = load("nmae: x\nworkstreams: [{id: a}]\n");
  CHECK(at(top.d, "nmae") == "unknown field (did you mean \"name\"?)");
}

TEST_CASE("a field of the wrong type is refused naming what was expected "
          "and what was found",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
  - {id: b, executor: {kind: noop}}
  - {id: c, retries: two, executor: {kind: noop}}
  - {id: d, owns: src/x.ts, timeout_s: "5", executor: {kind: noop}}
settings: {max_parallel_agents: 2.5, confirm_before_execute: "yes"}
)");
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[2] (c).retries")
        == "expected an integer, got string \"two\"");
  CHECK(at(r.d, "workstreams[3] (d).owns")
        == "expected an array of strings, got string \"src/x.ts\"");
  CHECK(at(r.d, "workstreams[3] (d).timeout_s")
        == "expected a number, got string \"5\"");
  CHECK(at(r.d, "settings.max_parallel_agents")
        == "expected an integer, got number 2.5");
  CHECK(at(r.d, "settings.confirm_before_execute")
        == "expected a boolean, got string \"yes\"");
  CHECK(r.d.error_count() == 5);
}

TEST_CASE("a missing required field is reported by its path", "[protocol]") {
  auto r = load("workstreams:\n  - {id: a}\n  - {title: no id}\n"
                "gates:\n  - {after: [a]}\n  - {id: g}\n");
  INFO(all(r.d));
  CHECK(at(r.d, "workstreams[1].id") == "missing");
  CHECK(at(r.d, "gates[0].id") == "missing");
  CHECK(at(r.d, "gates[1] (g).after") == "missing");
  CHECK(at(load("name: x\n").d, "workstreams") == "missing");
  CHECK(at(load("workstreams: []\n").d, "workstreams") == "must not be empty");
}

TEST_CASE("out-of-range values and unknown enum spellings are refused",
          "[protocol]") {
  auto r = load(R"(
settings: {max_parallel_agents: 0, default_timeout_s: -1, on_failure: fail-fast}
workstreams:
  - {id: "a b", retries: -1, estimate_s: -2, agent: writer, model: huge,
     executor: {kind: sleep, seconds: -3}}
)");
  INFO(all(r.d));
  CHECK(at(r.d, "settings.max_parallel_agents") == "must be at least 1, got 0");
  CHECK(at(r.d, "settings.default_timeout_s") == "must be positive, got -1");
  CHECK(at(r.d, "settings.on_failure")
        == "unknown value \"fail-fast\" (expected block_dependents, "
           "fail_fast or continue) (did you mean \"fail_fast\"?)");
  CHECK_THAT(at(r.d, "workstreams[0] (\"a b\").id"),
             Catch::Contains("invalid id"));
  CHECK(at(r.d, "workstreams[0] (\"a b\").retries")
        == "must not be negative, got -1");
  CHECK(at(r.d, "workstreams[0] (\"a b\").estimate_s")
        == "must not be negative, got -2");
  CHECK_THAT(at(r.d, "workstreams[0] (\"a b\").agent"),
             Catch::Contains("unknown value \"writer\""));
  CHECK_THAT(at(r.d, "workstreams[0] (\"a b\").model"),
             Catch::Contains("unknown tier \"huge\""));
  CHECK(at(r.d, "workstreams[0] (\"a b\").executor.seconds")
        == "must not be negative, got -3");
}

TEST_CASE("decoding fills defaults for persona, agent, model and title",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: types, owns: [src/auth/types.ts], executor: {kind: noop}}
  - {id: tests, owns: [tests/**], executor: {kind: noop}}
  - {id: unit, owns: [src/auth/jwt_test.cpp], executor: {kind: noop}}
  - {id: spec, owns: [web/login.test.ts], executor: {kind: noop}}
  - {id: docs, owns: [docs/auth.md], executor: {kind: noop}}
  - {id: readme, owns: [README.md], executor: {kind: noop}}
  - {id: ci, owns: [.github/workflows/ci.yml], executor: {kind: noop}}
  - {id: image, owns: [Dockerfile], executor: {kind: noop}}
  - {id: look, executor: {kind: noop}}
  - {id: design, agent: plan, executor: {kind: noop}}
  - {id: own, persona: security, title: Audit, agent: explore, model: deep,
     executor: {kind: noop}}
)");
  INFO(all(r.d));
  REQUIRE(r.d.ok());
  auto& w = r.p.workstreams;
  REQUIRE(w.size() == 11);
  CHECK(r.p.name == "plan");
  CHECK(w[0].persona == "backend");
  CHECK(w[0].agent == troupe::agent_kind::general);
  CHECK(w[0].model == troupe::model_tier::balanced);
  CHECK(w[0].title == "types");
  CHECK(w[1].persona == "qa");
  CHECK(w[2].persona == "qa");
  CHECK(w[3].persona == "qa");
  CHECK(w[4].persona == "docs");
  CHECK(w[5].persona == "docs");
  CHECK(w[6].persona == "devops");
  CHECK(w[7].persona == "devops");
  CHECK(w[8].persona == "analyzer");
  CHECK(w[8].agent == troupe::agent_kind::explore);
  CHECK(w[8].model == troupe::model_tier::fast);
  CHECK(w[9].agent == troupe::agent_kind::plan);
  CHECK(w[9].model == troupe::model_tier::deep);
  CHECK(w[9].persona == "backend");
  CHECK(w[10].persona == "security");
  CHECK(w[10].title == "Audit");
  CHECK(w[10].model == troupe::model_tier::deep);
}

TEST_CASE("a workstream without an executor runs as noop, with a warning",
          "[protocol]") {
  auto r = load("workstreams: [{id: a}]\n");
  INFO(all(r.d));
  CHECK(r.d.ok());
  REQUIRE(r.d.items().size() == 1);
  CHECK(r.d.items()[0].warning);
  CHECK(troupe::to_string(r.d.items()[0])
        == "workstreams[0] (a).executor: none given; runs as noop");
  CHECK(r.p.workstreams[0].executor.kind == "noop");
}

TEST_CASE("a command executor needs a command, reported once", "[protocol]") {
  auto r = load("workstreams:\n  - {id: a, executor: {kind: command}}\n"
                "  - {id: b, executor: {kind: command, run: ''}}\n"
                "  - {id: c, executor: {run: x}}\n");
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[0] (a).executor.run"),
             Catch::Contains("missing"));
  CHECK(count_at(r.d, "workstreams[0] (a).executor.run") == 1);
  CHECK_THAT(at(r.d, "workstreams[1] (b).executor.run"),
             Catch::Contains("must not be empty"));
  CHECK(count_at(r.d, "workstreams[1] (b).executor.run") == 1);
  CHECK(at(r.d, "workstreams[2] (c).executor.kind") == "missing");
  CHECK(count_at(r.d, "workstreams[2] (c).executor.kind") == 1);
}

TEST_CASE("gate checks are words or commands and default to completion",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
gates:
  - id: g
    after: [a]
    checks: [completion, conflicts, {run: "ctest", name: unit, timeout_s: 60}]
    remediate: {persona: debugger, max_attempts: 2}
  - {id: h, after: [a]}
  - {id: i, after: [a], checks: [completon, {cwd: x}, 3]}
)");
  INFO(all(r.d));
  REQUIRE(r.p.gates.size() == 3);
  auto& g = r.p.gates[0];
  REQUIRE(g.checks.size() == 3);
  CHECK(g.checks[0].kind == "completion");
  CHECK(g.checks[1].kind == "conflicts");
  CHECK(g.checks[2].kind == "command");
  CHECK(g.checks[2].run == "ctest");
  CHECK(g.checks[2].timeout_s == 60);
  CHECK(g.remediate.persona == "debugger");
  CHECK(g.remediate.max_attempts == 2);
  REQUIRE(r.p.gates[1].checks.size() == 1);
  CHECK(r.p.gates[1].checks[0].kind == "completion");
  CHECK_THAT(at(r.d, "gates[2] (i).checks[0]"),
             Catch::Contains("unknown check \"completon\"")
               && Catch::Contains("did you mean \"completion\"?"));
  CHECK(at(r.d, "gates[2] (i).checks[1].run") == "missing");
  CHECK_THAT(at(r.d, "gates[2] (i).checks[2]"),
             Catch::Contains("got integer 3"));
  CHECK(r.d.error_count() == 3);
}

TEST_CASE("a plan that is not an object is refused at its root", "[protocol]") {
  auto r = load("- a\n- b\n");
  REQUIRE(r.d.items().size() == 1);
  CHECK(r.d.items()[0].path.empty());
  CHECK_THAT(r.d.items()[0].message, Catch::Contains("got an array"));
}

TEST_CASE("a plan file is read by its extension; an unreadable one is named",
          "[protocol]") {
  troupe::diagnostics missing;
  troupe::load_plan_file("/nonexistent/plan.yaml", {}, missing);
  REQUIRE(missing.error_count() == 1);
  CHECK_THAT(missing.items()[0].message,
             Catch::Contains("/nonexistent/plan.yaml"));

  auto path = std::string{"/tmp/troupe_plan_decode_test.json"};
  {
    std::ofstream f{path};
    f << R"({"name": "file", "workstreams": [{"id": "a", "executor": {"kind": "noop"}}]})";
  }
  troupe::diagnostics d;
  auto p = troupe::load_plan_file(path, {}, d);
  std::remove(path.c_str());
  INFO(all(d));
  CHECK(d.items().empty());
  CHECK(p.name == "file");
  REQUIRE(p.workstreams.size() == 1);
  CHECK(p.workstreams[0].id == "a");
}

TEST_CASE("the example plan of the design loads", "[protocol]") {
  auto r = load(R"(
name: auth-feature
goal: Implement user authentication with JWT, password hashing, and tests
settings: {max_parallel_agents: 3, default_timeout_s: 1800, confirm_before_execute: false,
           on_failure: block_dependents}   # or fail_fast | continue
workstreams:
  - id: types
    title: Create authentication types
    persona: backend
    agent: general
    model: fast
    owns: [auth/types.ts]
    prompt: Define the User, Credentials and Token types.
    executor: {kind: command, run: "./scripts/gen-types.sh"}
  - id: jwt
    persona: backend
    owns: [auth/jwt.ts]
    depends_on: [types]
    retries: 2
    timeout_s: 300
gates:
  - id: foundation
    after: [types, jwt]
    checks: [completion, conflicts, {run: "ctest --output-on-failure"}]
    remediate: {persona: analyzer, max_attempts: 2}
synthesis: {persona: analyzer}
)");
  INFO(all(r.d));
  CHECK(r.d.ok());
  CHECK(r.d.items().size() == 1); // jwt has no executor
  CHECK(r.p.settings.max_parallel_agents == 3);
  CHECK(r.p.workstreams[1].retries == 2);
  CHECK(r.p.workstreams[1].timeout_s == 300);
  CHECK(r.p.workstreams[0].model == troupe::model_tier::fast);
  CHECK(r.p.gates[0].checks.size() == 3);
}

TEST_CASE("a synthesis agent takes an executor, a prompt, a tier or model, "
          "a timeout and retries",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis:
  persona: docs
  executor: {kind: anthropic, max_tokens: 3000}
  prompt: Tell the team.
  model: claude-opus-4-1
  timeout_s: 120
  retries: 2
)");
  INFO(all(r.d));
  CHECK(r.d.ok());
  auto& s = r.p.synthesis;
  CHECK(s.by_agent());
  CHECK(s.persona == "docs");
  CHECK(s.executor.kind == "anthropic");
  CHECK(s.executor.max_tokens == 3000);
  // An exact model is the executor's; the tier stays the synthesis's own.
  CHECK(s.executor.model == "claude-opus-4-1");
  CHECK(s.model == troupe::model_tier::deep);
  CHECK(s.prompt == "Tell the team.");
  CHECK(s.timeout_s == 120);
  CHECK(s.retries == 2);

  // Without an executor, Troupe writes the report alone.
  auto plain = load("workstreams: [{id: a, executor: {kind: noop}}]\n");
  CHECK_FALSE(plain.p.synthesis.by_agent());
  CHECK(plain.p.synthesis.persona == "analyzer");
}

TEST_CASE("a synthesis's agent options without an agent, or out of range, "
          "are refused",
          "[protocol]") {
  auto r = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis: {persona: docs, prompt: Tell them., model: deep, retries: 1,
            timeout_s: 5}
)");
  INFO(all(r.d));
  for (auto key : {"prompt", "model", "retries", "timeout_s"})
    CHECK(at(r.d, std::string{"synthesis."} + key)
          == "applies to the agent that writes the synthesis, and "
             "synthesis.executor names none");
  CHECK(r.d.error_count() == 4);

  auto bad = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis: {executor: {kind: anthropic}, model: dep, retries: -1,
            timeout_s: 0, persona: "", colour: red}
)");
  INFO(all(bad.d));
  CHECK(at(bad.d, "synthesis.model")
        == "unknown tier \"dep\" (did you mean \"deep\"?)");
  CHECK(at(bad.d, "synthesis.retries") == "must not be negative, got -1");
  CHECK_THAT(at(bad.d, "synthesis.timeout_s"), Catch::Contains("positive"));
  CHECK(at(bad.d, "synthesis.persona") == "must not be empty");
  CHECK(at(bad.d, "synthesis.colour") == "unknown field");

  auto command = load(R"(
workstreams:
  - {id: a, executor: {kind: noop}}
synthesis: {executor: {kind: command, run: ./sum.sh}, model: gpt-5}
)");
  CHECK_THAT(at(command.d, "synthesis.model"),
             Catch::Contains("an exact model name needs an agent's executor, "
                             "not \"command\""));
}

TEST_CASE("a plan names its repository as a path or with base, branch and "
          "url, and says what is wrong with it",
          "[protocol][repo]") {
  auto plain = load("repo: ../calc\nworkstreams: [{id: a}]\n");
  INFO(all(plain.d));
  CHECK(plain.d.ok());
  CHECK(plain.p.repo.path == "../calc");
  auto full = load("repo: {path: ., base: v1, branch: feature/x, url: "
                   "'https://example.com/r.git'}\nworkstreams: [{id: a}]\n");
  CHECK(full.d.ok());
  CHECK(full.p.repo.base == "v1");
  CHECK(full.p.repo.branch == "feature/x");
  CHECK(full.p.repo.url == "https://example.com/r.git");
  // It reads back as itself, in both of the forms plans are written in.
  auto back = troupe::test::load(troupe::plan_yaml(full.p), "yaml");
  CHECK(troupe::json_text(back.p) == troupe::json_text(full.p));
  CHECK(troupe::json_text(full.p).find("\"repo\":{\"base\":\"v1\"")
        != std::string::npos);

  auto bad = load("repo: {base: v1, brnch: x}\nworkstreams: [{id: a}]\n");
  CHECK(at(bad.d, "repo.path") == "missing");
  CHECK(at(bad.d, "repo.brnch") == "unknown field (did you mean \"branch\"?)");
  CHECK(at(load("repo: ''\nworkstreams: [{id: a}]\n").d, "repo")
        == "must not be empty");
  CHECK_THAT(at(load("repo: [a]\nworkstreams: [{id: a}]\n").d, "repo"),
             Catch::StartsWith("expected an object"));
}
