#include <limits>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"
#include "troupe/protocol/utf8.hpp"

using nlohmann::json;

namespace {

const char* sample_plan = R"(
name: auth-feature
goal: Implement user authentication with JWT
settings: {max_parallel_agents: 3, default_timeout_s: 900, on_failure: continue,
           confirm_before_execute: true, max_phase_width: 5}
workstreams:
  - id: types
    owns: [auth/types.ts]
    prompt: Define the types.
    executor: {kind: command, run: ./gen.sh, cwd: scripts, env: {A: "1"}}
    estimate_s: 60
  - id: jwt
    persona: security
    agent: plan
    model: fast
    owns: [auth/jwt.ts]
    depends_on: [types]
    retries: 2
    timeout_s: 300
    executor: {kind: sleep, seconds: 0.5}
gates:
  - id: foundation
    after: [types, jwt]
    checks: [completion, conflicts, {run: "ctest", cwd: build, timeout_s: 60}]
    remediate: {persona: debugger, max_attempts: 2, prompt: Fix it.,
                executor: {kind: noop}}
synthesis: {persona: docs}
)";

troupe::plan load_sample() {
  troupe::diagnostics d;
  auto p = troupe::load_plan_text(sample_plan, "yaml", {}, d);
  REQUIRE(d.items().empty());
  return p;
}

troupe::workstream_result sample_result() {
  troupe::workstream_result r;
  r.id = "jwt";
  r.persona = "security";
  r.title = "JWT";
  r.status = troupe::ws_state::timed_out;
  r.attempts = 3;
  r.node = "worker-1";
  r.wall_s = 12.5;
  r.started_s = 1.25;
  r.exit_code = 137;
  r.summary = "ran out of time";
  r.output = "line 1\nline 2";
  r.files_changed = {"auth/jwt.ts"};
  r.outputs = {{"token_type", "JWT"}};
  r.usage = {{"claude", 100, 20, 7, 9, 0.01}, {"local", 5, 6, 0, 0, 0}};
  r.sub_agent_usage = {{"local", 5, 6, 0, 0, 0}};
  return r;
}

troupe::run_report sample_report() {
  troupe::run_report r;
  r.run_id = "run-1";
  r.plan = "auth-feature";
  r.goal = "auth";
  r.status = troupe::run_status::blocked;
  r.wall_s = 30;
  r.sequential_s = 50;
  r.critical_path_s = 25;
  r.critical_path = {"types", "jwt"};
  r.cost_usd = 0.25;
  r.deep_tier_cost_usd = 1.5;
  r.max_cost_usd = 2;
  r.budget_stopped = true;
  r.workstreams = {sample_result()};
  r.gates = {{"foundation",
              troupe::gate_state::failed,
              2,
              {{"completion", true, ""}, {"ctest", false, "1 test failed"}}}};
  r.usage = {{"claude", 100, 20, 3, 4, 0.01}};
  r.synthesized_by = "docs";
  r.markdown = "# Report\n";
  return r;
}

template <class T>
json as_json(const T& x) {
  return json(x);
}

struct system_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    troupe::add_message_types(cfg);
    return cfg;
  }

  system_fixture() : sys(configure(cfg)) {
    // nop
  }

  template <class T>
  T binary_round_trip(T x) {
    caf::binary_serializer::container_type buf;
    caf::binary_serializer bs{sys, buf};
    auto e = bs(x);
    REQUIRE(!e);
    T y;
    caf::binary_deserializer bd{sys, buf};
    e = bd(y);
    REQUIRE(!e);
    return y;
  }
};

} // namespace

TEST_CASE("every enum spelling reads back as the value it names",
          "[protocol]") {
  using namespace troupe;
  for (auto x : {agent_kind::explore, agent_kind::plan, agent_kind::general}) {
    agent_kind y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (auto x : {model_tier::fast, model_tier::balanced, model_tier::deep}) {
    model_tier y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (auto x : {failure_policy::block_dependents, failure_policy::fail_fast,
                 failure_policy::continue_run}) {
    failure_policy y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (int i = 0; i <= static_cast<int>(ws_state::blocked); ++i) {
    auto x = static_cast<ws_state>(i);
    ws_state y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (int i = 0; i <= static_cast<int>(run_status::cancelled); ++i) {
    auto x = static_cast<run_status>(i);
    run_status y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  for (int i = 0; i <= static_cast<int>(gate_state::failed); ++i) {
    auto x = static_cast<gate_state>(i);
    gate_state y{};
    CHECK((from_string(to_string(x), y) && y == x));
  }
  CHECK(to_string(failure_policy::continue_run) == "continue");
  CHECK(to_string(ws_state::timed_out) == "timed_out");
  CHECK(to_string(complexity::epic) == "EPIC");
  CHECK(to_string(errc::unknown_persona) == "unknown_persona");
  CHECK(to_string(errc::executor_failed) == "executor_failed");
  agent_kind k = agent_kind::plan;
  CHECK_FALSE(from_string("General", k));
  CHECK(k == agent_kind::plan);
  ws_state s{};
  CHECK_FALSE(from_string("done", s));
}

TEST_CASE("only ends of the workstream state machine are terminal",
          "[protocol]") {
  using troupe::ws_state;
  CHECK_FALSE(troupe::is_terminal(ws_state::pending));
  CHECK_FALSE(troupe::is_terminal(ws_state::ready));
  CHECK_FALSE(troupe::is_terminal(ws_state::dispatched));
  CHECK_FALSE(troupe::is_terminal(ws_state::running));
  CHECK(troupe::is_terminal(ws_state::succeeded));
  CHECK(troupe::is_terminal(ws_state::failed));
  CHECK(troupe::is_terminal(ws_state::timed_out));
  CHECK(troupe::is_terminal(ws_state::cancelled));
  CHECK(troupe::is_terminal(ws_state::blocked));
}

TEST_CASE("a diagnostic renders as path and message", "[protocol]") {
  CHECK(troupe::to_string(troupe::diagnostic{"workstreams[0].id", "missing"})
        == "workstreams[0].id: missing");
  CHECK(troupe::to_string(troupe::diagnostic{"", "invalid JSON"})
        == "invalid JSON");
}

TEST_CASE("a plan survives a JSON round trip through the plan decoder",
          "[protocol]") {
  auto p = load_sample();
  auto j = as_json(p);
  troupe::diagnostics d;
  auto q = troupe::decode_plan(j, d);
  CHECK(d.items().empty());
  CHECK(as_json(q) == j);
  CHECK(j["settings"]["on_failure"] == "continue");
  CHECK(j["workstreams"][1]["agent"] == "plan");
  CHECK(j["gates"][0]["checks"][0] == "completion");
  CHECK(j["gates"][0]["checks"][2]["run"] == "ctest");
  // And through text, as a plan file would be.
  troupe::diagnostics d2;
  auto r = troupe::load_plan_text(j.dump(2), "", {}, d2);
  CHECK(d2.items().empty());
  CHECK(as_json(r) == j);
}

TEST_CASE("a run report survives a JSON round trip, with the report's key "
          "names",
          "[protocol]") {
  auto r = sample_report();
  auto j = as_json(r);
  for (auto key : {"run_id", "plan", "status", "wall_s", "sequential_s",
                   "critical_path_s", "workstreams", "gates", "usage"})
    CHECK(j.contains(key));
  auto& w = j["workstreams"][0];
  for (auto key : {"id", "persona", "status", "attempts", "node", "wall_s",
                   "exit_code", "summary", "usage"})
    CHECK(w.contains(key));
  CHECK(j["status"] == "blocked");
  CHECK(w["status"] == "timed_out");
  CHECK(w["usage"][0]["input_tokens"] == 100);
  CHECK(j["gates"][0]["status"] == "failed");
  CHECK(as_json(j.get<troupe::run_report>()) == j);
  CHECK(as_json(w.get<troupe::workstream_result>()) == w);
}

TEST_CASE("only a partial report says so, and says it back", "[protocol]") {
  auto complete = as_json(sample_report());
  CHECK_FALSE(complete.contains("partial"));
  CHECK_FALSE(complete.get<troupe::run_report>().partial);
  auto r = sample_report();
  r.partial = true;
  auto j = as_json(r);
  CHECK(j.at("partial") == true);
  CHECK(j.get<troupe::run_report>().partial);
  CHECK(as_json(j.get<troupe::run_report>()) == j);
}

TEST_CASE("only a result with sub-agents' usage has the field", "[protocol]") {
  auto with = sample_result();
  auto j = as_json(with);
  CHECK(j.at("sub_agent_usage")[0]["model"] == "local");
  CHECK(as_json(j.get<troupe::workstream_result>()) == j);
  auto without = sample_result();
  without.sub_agent_usage.clear();
  CHECK_FALSE(as_json(without).contains("sub_agent_usage"));
  // Results written before the field read back without it.
  j.erase("sub_agent_usage");
  CHECK(j.get<troupe::workstream_result>().sub_agent_usage.empty());
}

// One event of each kind, with the payload its kind carries.
std::vector<troupe::event> every_kind_of_event() {
  std::vector<troupe::event> out;
  for (uint8_t k = 0; k <= static_cast<uint8_t>(troupe::event_kind::node_lost);
       ++k) {
    troupe::event e;
    e.run_id = "run-1";
    e.seq = k + 1u;
    e.t_s = 0.25 * k;
    e.at = 1.7e9 + k;
    e.kind = static_cast<troupe::event_kind>(k);
    e.subject = "jwt";
    e.state = "running";
    e.attempt = 2;
    e.node = "worker-1";
    e.message = "started ✓";
    if (troupe::carries_result(e.kind))
      e.result = sample_result();
    if (troupe::carries_checks(e.kind))
      e.checks = {{"completion", true, ""}, {"check1", false, "exit 1"}};
    out.push_back(std::move(e));
  }
  return out;
}

TEST_CASE("every kind of event survives a JSON round trip", "[protocol]") {
  std::set<std::string> names;
  for (auto& e : every_kind_of_event()) {
    auto j = as_json(e);
    names.insert(j.at("kind").get<std::string>());
    CHECK(j.at("seq") == e.seq);
    CHECK(j.contains("result") == troupe::carries_result(e.kind));
    CHECK(j.contains("checks") == troupe::carries_checks(e.kind));
    CHECK(as_json(j.get<troupe::event>()) == j);
  }
  // Each kind has a name of its own.
  CHECK(names.size() == every_kind_of_event().size());
  CHECK(names.count("ws_ended") == 1);
  auto bad = as_json(every_kind_of_event().front());
  bad["kind"] = "workstream";
  CHECK_THROWS_AS(bad.get<troupe::event>(), json::exception);
}

TEST_CASE("events written as text directly read back as nlohmann writes "
          "them",
          "[protocol]") {
  // Strings that need escaping or repair, and doubles of every shape.
  static const char control_chars[] = "nul \0 bell \x07 esc \x1b del \x7f";
  std::vector<std::string> texts{
    "", "plain", "quote \" and backslash \\", "tab\tnew\nline\r",
    std::string{control_chars, sizeof(control_chars) - 1},
    "non-ASCII: \u00e9t\u00e9 \u2713 \U0001F600",
    "bad UTF-8: \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80"};
  std::vector<double> numbers{0.0,    -0.0,  1.0,     0.1,  1.0 / 3,
                              1e-300, 1e300, 123456789012.5, -2.5e-7};
  size_t n = 0;
  for (auto& e : every_kind_of_event()) {
    for (size_t i = 0; i < texts.size(); ++i, ++n) {
      auto& t = texts[i];
      auto x = e;
      x.subject = t;
      x.message = t + t;
      x.node = t;
      x.t_s = numbers[n % numbers.size()];
      x.at = numbers[(n + 1) % numbers.size()];
      x.seq = n % 2 ? UINT64_MAX : n;
      x.attempt = n % 2 ? INT32_MIN : INT32_MAX;
      x.result.output = t;
      x.result.outputs = {{t, t}, {"k", t}};
      x.result.files_changed = {t, "b"};
      x.result.usage = {{t, INT64_MAX, INT64_MIN, INT64_MAX, 0, numbers[n % numbers.size()]}};
      x.result.sub_agent_usage.clear();
      if (n % 2)
        x.result.sub_agent_usage = {{t, 1, 2, 3, 4, numbers[n % numbers.size()]}};
      x.result.wall_s = numbers[(n + 2) % numbers.size()];
      for (auto& c : x.checks)
        c.detail = t;
      auto direct = troupe::json_text(x);
      INFO(direct);
      // One line, valid JSON, the same value as nlohmann's text...
      CHECK(direct.find('\n') == std::string::npos);
      auto parsed = json::parse(direct);
      CHECK(parsed == json::parse(troupe::json_text(as_json(x))));
      // ...and read back, the same event.
      CHECK(as_json(parsed.get<troupe::event>()) == parsed);
    }
  }
  // Not finite numbers are null, as nlohmann writes them.
  auto e = every_kind_of_event().front();
  e.t_s = std::numeric_limits<double>::infinity();
  e.at = std::numeric_limits<double>::quiet_NaN();
  auto j = json::parse(troupe::json_text(e));
  CHECK(j.at("t_s").is_null());
  CHECK(j.at("at").is_null());
  // Doubles stay doubles.
  e.t_s = 3;
  CHECK(json::parse(troupe::json_text(e)).at("t_s").is_number_float());
  // Keys in nlohmann's (sorted) order: the same text, number spelling
  // aside, so a journal holds one spelling either way.
  auto plain = every_kind_of_event().back();
  plain.t_s = 0.5;
  plain.at = 2.5;
  CHECK(troupe::json_text(plain) == troupe::json_text(as_json(plain)));
}

TEST_CASE("plans and reports written as text directly read back as "
          "nlohmann writes them",
          "[protocol]") {
  auto p = load_sample();
  p.goal = "quote \" tab \t \u00e9t\u00e9 \U0001F600";
  p.workstreams[0].executor.env = {{"K\u2713", "v\n"}, {"A", ""}};
  p.workstreams[0].timeout_s = 2.5;
  p.gates[0].checks.push_back({"completion", "", "", 3});
  p.settings.personas = {{"qa", "You test \u00e9 \"twice\".\n"}};
  p.settings.max_cost_usd = 2.5;
  p.settings.cost_estimates = {{"fast", {0.01, 0.5}}};
  p.workstreams[0].estimate_usd = {0.125, 0.25};
  p.synthesis.executor.kind = "anthropic";
  p.synthesis.executor.model = "claude-opus-4-1";
  p.synthesis.prompt = "Sum it up \u00e9.";
  p.synthesis.model = troupe::model_tier::balanced;
  p.synthesis.timeout_s = 90;
  p.synthesis.retries = 1;
  auto j = json::parse(troupe::json_text(p));
  CHECK(j == json::parse(troupe::json_text(as_json(p))));
  // The plan decoder takes it, and gets the plan back.
  troupe::diagnostics d;
  auto q = troupe::decode_plan(j, d);
  CHECK(d.ok());
  CHECK(as_json(q) == as_json(p));
  // Ill-formed UTF-8 is mended as nlohmann mends it.
  p.name = "bad \xff\xfe";
  p.workstreams[0].executor.env = {{"K\xfe", "v\xc3"}};
  CHECK(json::parse(troupe::json_text(p))
        == json::parse(troupe::json_text(as_json(p))));
  for (bool partial : {false, true}) {
    auto r = sample_report();
    r.partial = partial;
    r.rerun = {"jwt", "\x80"};
    if (partial) {
      r.sub_agent_usage = {{"\xff haiku", 1, 2, 3, 4, 0.5}};
      r.synthesis = "## Done \u2713\n\xff";
    }
    r.markdown = "# Report\n\n| a | b |\n\u2713 \x01";
    auto text = troupe::json_text(r);
    auto k = json::parse(text);
    CHECK(k == json::parse(troupe::json_text(as_json(r))));
    CHECK(as_json(k.get<troupe::run_report>()) == k);
    CHECK(k.contains("partial") == partial);
    CHECK(k.contains("synthesis") == partial);
  }
  // The same text as nlohmann's where numbers are spelled alike.
  auto plain = sample_report();
  plain.wall_s = 30.5;
  plain.sequential_s = 50.5;
  plain.critical_path_s = 25.5;
  plain.workstreams[0].wall_s = 12.5;
  plain.workstreams[0].started_s = 1.25;
  plain.usage = {};
  plain.workstreams[0].usage = {};
  plain.workstreams[0].sub_agent_usage = {};
  CHECK(troupe::json_text(plain) == troupe::json_text(as_json(plain)));
}

TEST_CASE("reading a result refuses an unknown status rather than guess",
          "[protocol]") {
  auto j = as_json(sample_report());
  j["status"] = "exploded";
  CHECK_THROWS_AS(j.get<troupe::run_report>(), json::exception);
  auto w = as_json(sample_result());
  w["status"] = 3;
  CHECK_THROWS_AS(w.get<troupe::workstream_result>(), json::exception);
  auto g = j["gates"][0];
  g["status"] = "open";
  CHECK_THROWS_AS(g.get<troupe::gate_result>(), json::exception);
}

TEST_CASE_METHOD(system_fixture,
                 "plans, results and reports survive CAF's binary "
                 "serialization",
                 "[protocol]") {
  auto p = load_sample();
  CHECK(as_json(binary_round_trip(p)) == as_json(p));
  auto r = sample_result();
  CHECK(as_json(binary_round_trip(r)) == as_json(r));
  auto report = sample_report();
  CHECK(as_json(binary_round_trip(report)) == as_json(report));
  for (auto& e : every_kind_of_event())
    CHECK(as_json(binary_round_trip(e)) == as_json(e));
  report.partial = true;
  CHECK(binary_round_trip(report).partial);
}

TEST_CASE_METHOD(system_fixture,
                 "registered message types can travel in messages",
                 "[protocol]") {
  auto msg = caf::make_message(load_sample(), sample_result());
  caf::binary_serializer::container_type buf;
  caf::binary_serializer bs{sys, buf};
  REQUIRE(!bs(msg));
  caf::message copy;
  caf::binary_deserializer bd{sys, buf};
  REQUIRE(!bd(copy));
  REQUIRE(copy.match_elements<troupe::plan, troupe::workstream_result>());
  CHECK(as_json(copy.get_as<troupe::workstream_result>(1))
        == as_json(sample_result()));
}

TEST_CASE_METHOD(system_fixture,
                 "troupe errors render with their code name and context",
                 "[protocol]") {
  auto err = caf::make_error(troupe::errc::unknown_persona, "nope");
  CHECK(err == troupe::errc::unknown_persona);
  CHECK(sys.render(err) == "troupe: unknown_persona (\"nope\")");
  CHECK(sys.render(caf::make_error(troupe::errc::node_lost))
        == "troupe: node_lost");
}
