#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

using nlohmann::json;

namespace {

struct decoded {
  troupe::plan p;
  troupe::diagnostics d;
};

decoded load(const std::string& text, const std::string& format = "yaml") {
  decoded r;
  r.p = troupe::load_plan_text(text, format, {}, r.d);
  return r;
}

std::string all(const troupe::diagnostics& d) {
  std::string s;
  for (auto& x : d.items())
    s += (x.warning ? "warning: " : "error: ") + troupe::to_string(x) + "\n";
  return s;
}

/// The message of the one finding at `path`, or "" if there is none.
std::string at(const troupe::diagnostics& d, const std::string& path) {
  for (auto& x : d.items())
    if (x.path == path)
      return x.message;
  return "";
}

size_t count_at(const troupe::diagnostics& d, const std::string& path) {
  size_t n = 0;
  for (auto& x : d.items())
    n += x.path == path ? 1 : 0;
  return n;
}

const std::string fffd = "\xEF\xBF\xBD"; // U+FFFD

/// `n` bytes of noise, the same each run.
std::string noise(size_t n) {
  std::string s;
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s += static_cast<char>(x >> 24);
  }
  return s;
}

} // namespace

TEST_CASE("a YAML syntax error is reported with its line and column",
          "[protocol]") {
  auto r
    = load("name: x\nworkstreams:\n  - id: a\n    owns: [a.ts\n  - id: b\n");
  INFO(all(r.d));
  REQUIRE(r.d.error_count() == 1);
  auto& d = r.d.items().front();
  CHECK(d.path.empty());
  CHECK_THAT(d.message,
             Catch::Contains("invalid YAML at line")
               && Catch::Contains("column"));
}

TEST_CASE("a YAML syntax error names the line it is on", "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: 1\nb: 2\n  c: 3\n", "yaml", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK_THAT(d.items()[0].message, Catch::Contains("line 3, column"));
}

TEST_CASE("each YAML syntax error names its line, column and likely cause",
          "[protocol]") {
  struct row {
    const char* text;
    const char* message;
  };
  auto table = GENERATE(values<row>({
    {"name: x\nworkstreams:\n  - id: a\n    owns: [a.ts\n  - id: b\n",
     "invalid YAML at line 5, column 7: end of sequence flow not found (a '[' "
     "before it is not closed)"},
    {"a: {b: 1\nc: 2\n",
     "invalid YAML at line 2, column 2: end of map flow not found (a '{' "
     "before it is not closed)"},
    {"a: [1, 2]]\n",
     "invalid YAML at line 1, column 10: illegal flow end (a ']' or '}' here "
     "closes nothing)"},
    {"name: x\nworkstreams:\n  - id: a\n   owns: [a]\n",
     "invalid YAML at line 4, column 4: end of sequence not found (check the "
     "indentation of this line)"},
    {"a:\n  - x\n  y: 1\n",
     "invalid YAML at line 3, column 3: end of map not found (check the "
     "indentation of this line)"},
    {"a: 1\nb: 2\n  c: 3\n",
     "invalid YAML at line 3, column 4: illegal map value (check the "
     "indentation, and quote values that contain ': ')"},
    {"title: a: b\n",
     "invalid YAML at line 1, column 9: illegal map value (check the "
     "indentation, and quote values that contain ': ')"},
    {"name: x\nworkstreams:\n\t- id: a\n",
     "invalid YAML at line 3, column 2: illegal block entry (indent with "
     "spaces, not tabs)"},
    {"name: x\nworkstreams:\n  - id: a\n\towns: [a]\n",
     "invalid YAML at line 4, column 1: illegal tab when looking for "
     "indentation (indent with spaces, not tabs)"},
    {"workstreams:\n  - id: a\n    owns: [*nope]\n",
     "invalid YAML at line 3, column 12: the referenced anchor is not "
     "defined: *nope (quote values that start with '*', such as globs)"},
    {"owns: [**/x.ts, a]\n",
     "invalid YAML at line 1, column 8: the referenced anchor is not "
     "defined: **/x.ts (quote values that start with '*', such as globs)"},
    {"owns: [*]\n",
     "invalid YAML at line 1, column 9: alias not found after * (quote "
     "values that start with '*', such as globs)"},
    {"name: \"abc",
     "invalid YAML at line 1, column 11: illegal EOF in scalar (a quote is "
     "not closed)"},
    {"workstreams:\n  - &a {id: a}\n  - &a {id: b}\n  - *a\n",
     "anchor &a defined again at line 3, column 5 (first at line 2, column "
     "5); give each anchor its own name"},
  }));
  CAPTURE(table.text);
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(table.text, "yaml", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK(d.items()[0].path.empty());
  CHECK(d.items()[0].message == table.message);
}

TEST_CASE("a JSON syntax error is reported with its line and column",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("{\n  \"name\": \"x\",\n  \"goal\": ,\n}",
                                      "json", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK(d.items()[0].path.empty());
  CHECK_THAT(d.items()[0].message,
             Catch::StartsWith("invalid JSON")
               && Catch::Contains("line 3, column 11"));
}

TEST_CASE("invalid UTF-8 in YAML scalars and keys becomes U+FFFD",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("name: a\xFF" "b\n"
                                  "\"k\xFE\": [x\xC3]\n"
                                  "q\xE2\x82: \"t\xED\xA0\x80\"\n",
                                  "yaml", j, d));
  INFO(all(d));
  CHECK(d.items().empty());
  CHECK(j["name"] == "a" + fffd + "b");
  CHECK(j["k" + fffd] == json{"x" + fffd});
  // A surrogate, encoded: each byte is a maximal ill-formed subpart.
  CHECK(j["q" + fffd] == "t" + fffd + fffd + fffd);
  CHECK_NOTHROW(j.dump());
}

TEST_CASE("a YAML plan with invalid UTF-8 decodes to valid strings and "
          "diagnostics",
          "[protocol]") {
  auto r = load("name: \xC0\xAF\nworkstreams:\n"
                "  - {id: a, title: \"T\xF5\", colo\xFFr: x,\n"
                "     executor: {kind: noop}}\n");
  INFO(all(r.d));
  CHECK(r.p.name == fffd + fffd);
  REQUIRE(r.p.workstreams.size() == 1);
  CHECK(r.p.workstreams[0].title == "T" + fffd);
  REQUIRE(r.d.error_count() == 1);
  for (auto& x : r.d.items()) {
    CHECK(troupe::is_valid_utf8(x.path));
    CHECK(troupe::is_valid_utf8(x.message));
  }
}

TEST_CASE("a JSON plan with invalid UTF-8 is refused at its line and column",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(
    "{\"name\": \"x\",\n \"goal\": \"a\xFF\"}", "json", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  // nlohmann's message ends with the bytes it read, U+FFFD in place of the
  // bad one.
  CHECK(d.items()[0].message
        == "invalid JSON: parse error at line 2, column 12: syntax error "
           "while parsing value - invalid string: ill-formed UTF-8 byte; last "
           "read: '\"a"
             + fffd + "'");
  CHECK(troupe::is_valid_utf8(d.items()[0].message));
}

TEST_CASE("a binary file as plan is refused at its first control character",
          "[protocol]") {
  json j;
  troupe::diagnostics elf;
  CHECK_FALSE(troupe::parse_plan_text(
    std::string{"\x7F" "ELF\x02\x01\x01\0", 8}, "yaml", j, elf));
  REQUIRE(elf.items().size() == 1);
  CHECK(elf.items()[0].message
        == "control character U+0002 at line 1, column 5 (plans are text; is "
           "this a binary file?)");
  for (auto format : {"yaml", "json", ""}) {
    INFO(format);
    troupe::diagnostics d;
    CHECK_FALSE(troupe::parse_plan_text("{\n" + noise(4096), format, j, d));
    INFO(all(d));
    REQUIRE(d.items().size() == 1);
    CHECK_THAT(d.items()[0].message, Catch::StartsWith("control character U+"));
  }
  // No control characters, but no UTF-8 either: a string, not a plan.
  std::string high;
  for (int c = 0x80; c < 0x100; ++c)
    high += static_cast<char>(c);
  auto r = load(high);
  INFO(all(r.d));
  REQUIRE(r.d.items().size() == 1);
  CHECK_THAT(r.d.items()[0].message,
             Catch::StartsWith("expected a plan (an object), got string \""
                               + fffd));
  CHECK(troupe::is_valid_utf8(r.d.items()[0].message));
}

TEST_CASE("plan text starting with a brace is read as JSON, other text as "
          "YAML",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("  {\"a\": [1, \"2\"]}", "", j, d));
  CHECK(j == json{{"a", {1, "2"}}});
  REQUIRE(troupe::parse_plan_text("a: [1, '2']", "", j, d));
  CHECK(j == json{{"a", {1, "2"}}});
  CHECK(d.items().empty());
}

TEST_CASE("YAML scalars become JSON types unless quoted", "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("a: true\nb: 'true'\nc: 12\nd: \"12\"\n"
                                  "e: 1.5\nf: ~\ng: null\nh: plain text\n"
                                  "i: |\n  false\nj: -3\nk:\n",
                                  "yaml", j, d));
  CHECK(j["a"] == true);
  CHECK(j["b"] == "true");
  CHECK(j["c"] == 12);
  CHECK(j["c"].is_number_integer());
  CHECK(j["d"] == "12");
  CHECK(j["e"] == 1.5);
  CHECK(j["f"].is_null());
  CHECK(j["g"].is_null());
  CHECK(j["h"] == "plain text");
  CHECK(j["i"] == "false\n");
  CHECK(j["j"] == -3);
  CHECK(j["k"].is_null());
}

TEST_CASE("a YAML integer too large for any number stays text, not infinity",
          "[protocol]") {
  auto huge = "1" + std::string(400, '0');
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("a: " + huge + "\nb: 123456789012345678901\n",
                                  "yaml", j, d));
  CHECK(j["a"] == huge);
  CHECK(j["b"] == 123456789012345678901.0);
  auto r = load("workstreams:\n  - {id: a, timeout_s: " + huge
                + ", executor: {kind: noop}}\n");
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[0] (a).timeout_s"),
             Catch::StartsWith("expected a number, got string \"1000"));
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a duplicate YAML key is refused", "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: 1\nb: 2\na: 3\n", "yaml", j, d));
  INFO(all(d));
  CHECK_THAT(at(d, "a"), Catch::Contains("duplicate key"));
}

TEST_CASE("a self-referencing YAML alias is refused, not followed forever",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: &x [*x]\n", "yaml", j, d));
  CHECK_FALSE(d.ok());
}

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
