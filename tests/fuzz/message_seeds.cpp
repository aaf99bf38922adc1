// Writes the seed corpus of the binary fuzz target: for each message type
// a default value and a filled one, and whole messages as nodes send them,
// each behind the byte that selects it.
//
//   fuzz_message_seeds DIR

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "message_types.hpp"
#include "troupe/protocol/interfaces.hpp"
#include "troupe/protocol/message_types.hpp"

namespace fs = std::filesystem;

namespace {

using namespace troupe;

executor_spec sample_executor() {
  return {"command", "make jwt", "auth", 0.5, {{"CI", "1"}, {"LANG", "C"}}};
}

workstream sample_workstream(std::string id, std::vector<std::string> deps) {
  workstream ws;
  ws.id = id;
  ws.title = "Build " + id;
  ws.persona = "backend";
  ws.prompt = "Write " + id + " with tests; caf\xC3\xA9 \xE2\x9C\x93";
  ws.owns = {"src/" + id + "/**", "include/" + id + ".hpp"};
  ws.depends_on = std::move(deps);
  ws.executor = sample_executor();
  ws.timeout_s = 300;
  ws.retries = 2;
  ws.estimate_s = 60;
  return ws;
}

gate_check sample_check() {
  return {"command", "ctest --output-on-failure", "build", 600};
}

remediation sample_remediation() {
  return {"debugger", 2, "Fix what the checks found.", sample_executor()};
}

gate sample_gate() {
  return {"foundation", {"types", "jwt"},
          {gate_check{"completion", "", "", 0}, sample_check()},
          sample_remediation()};
}

plan_settings sample_settings() {
  return {3, 900, failure_policy::continue_run, true, 5};
}

synthesis_spec sample_synthesis() {
  synthesis_spec x;
  x.persona = "docs";
  x.executor.kind = "anthropic";
  x.executor.max_tokens = 3000;
  x.prompt = "Tell the team what was done.";
  x.timeout_s = 600;
  x.retries = 1;
  return x;
}

plan sample_plan() {
  plan p;
  p.name = "auth-feature";
  p.goal = "Implement user authentication with JWT";
  p.settings = sample_settings();
  p.workstreams = {sample_workstream("types", {}),
                   sample_workstream("jwt", {"types"}),
                   sample_workstream("docs", {"types", "jwt"})};
  p.workstreams[2].agent = agent_kind::explore;
  p.workstreams[2].owns.clear();
  p.gates = {sample_gate()};
  p.synthesis = sample_synthesis();
  return p;
}

usage sample_usage() {
  return {"claude-sonnet", 1200, 345, 100, 50, 0.0125};
}

workstream_spec sample_spec() {
  return {"r-1f2e3d4c5b6a7988", sample_workstream("jwt", {"types"}), 2, 3,
          300, "/work/repo", R"({"dependencies": {"types": {}}})",
          0x0123456789abcdefull, "claude-sonnet-4-5", {3, 15, 0.3, 3.75}};
}

workstream_result sample_result() {
  workstream_result r;
  r.id = "jwt";
  r.persona = "backend";
  r.title = "Build jwt";
  r.status = ws_state::succeeded;
  r.attempts = 1;
  r.node = "w1";
  r.wall_s = 12.5;
  r.started_s = 0.25;
  r.exit_code = 0;
  r.summary = "jwt done";
  r.output = "compiling\njwt done\n";
  r.files_changed = {"src/jwt/jwt.cpp", "include/jwt.hpp"};
  r.outputs = {{"token_type", "HS256"}, {"tests", "12"}};
  r.usage = {sample_usage()};
  r.key = 42;
  return r;
}

check_result sample_check_result() {
  return {"command: ctest", false, "1 test failed"};
}

gate_result sample_gate_result() {
  return {"foundation", gate_state::passed, 2, {sample_check_result()}};
}

run_report sample_report() {
  run_report r;
  r.run_id = "r-1f2e3d4c5b6a7988";
  r.plan = "auth-feature";
  r.goal = "Implement user authentication with JWT";
  r.status = run_status::blocked;
  r.partial = true;
  r.wall_s = 20;
  r.sequential_s = 30;
  r.critical_path_s = 18;
  r.critical_path = {"types", "jwt"};
  r.workstreams = {sample_result()};
  r.gates = {sample_gate_result()};
  r.usage = {sample_usage()};
  r.synthesized_by = "docs";
  r.markdown = "# auth-feature\n\n| id | status |\n";
  return r;
}

event sample_event() {
  event e;
  e.run_id = "r-1f2e3d4c5b6a7988";
  e.seq = 7;
  e.t_s = 1.5;
  e.at = 1.7e9;
  e.kind = event_kind::ws_ended;
  e.subject = "jwt";
  e.state = "succeeded";
  e.attempt = 1;
  e.node = "w1";
  e.message = "attempt 1 on w1";
  e.result.id = "jwt";
  e.result.status = ws_state::succeeded;
  e.result.summary = "attempt 1 on w1";
  return e;
}

run_snapshot sample_snapshot() {
  run_snapshot s;
  s.run_id = "r-1f2e3d4c5b6a7988";
  s.plan = "auth-feature";
  s.status = "running";
  s.started_at = 1.7e9;
  s.t_s = 12.5;
  s.seq = 42;
  s.total = 2;
  s.ended = 1;
  s.workstreams = {sample_result()};
  s.gates = {sample_gate_result()};
  s.rerun = {"jwt"};
  return s;
}

node_info sample_node_info() {
  return {"w1", 4, {"backend", "qa"}, {"command", "sleep"}, protocol_version};
}

run_options sample_options() {
  return {3, "/work/repo", "r-1f2e3d4c5b6a7988", "token", "cancel-key"};
}

join_request sample_join() {
  return {"token", sample_node_info(), "node-key"};
}

node_status sample_node_status() {
  return {sample_node_info(), 2, "joined", 17};
}

plan_assessment sample_assessment() {
  return {complexity::complex,
          4,
          {"several distinct deliverables", "cross-cutting concerns"},
          {{"types"}, {"jwt"}, {"docs"}},
          {"types", "jwt", "docs"},
          180,
          180,
          180,
          "security audit"};
}

template <class T>
T sample();

#define TROUPE_SAMPLE(type, expr)                                              \
  template <>                                                                  \
  type sample<type>() {                                                        \
    return expr;                                                               \
  }
TROUPE_SAMPLE(executor_spec, sample_executor())
TROUPE_SAMPLE(workstream, sample_workstream("jwt", {"types"}))
TROUPE_SAMPLE(gate_check, sample_check())
TROUPE_SAMPLE(remediation, sample_remediation())
TROUPE_SAMPLE(gate, sample_gate())
TROUPE_SAMPLE(plan_settings, sample_settings())
TROUPE_SAMPLE(synthesis_spec, sample_synthesis())
TROUPE_SAMPLE(plan, sample_plan())
TROUPE_SAMPLE(usage, sample_usage())
TROUPE_SAMPLE(workstream_spec, sample_spec())
TROUPE_SAMPLE(workstream_result, sample_result())
TROUPE_SAMPLE(check_result, sample_check_result())
TROUPE_SAMPLE(gate_result, sample_gate_result())
TROUPE_SAMPLE(run_report, sample_report())
TROUPE_SAMPLE(event, sample_event())
TROUPE_SAMPLE(node_info, sample_node_info())
TROUPE_SAMPLE(run_options, sample_options())
TROUPE_SAMPLE(join_request, sample_join())
TROUPE_SAMPLE(node_status, sample_node_status())
TROUPE_SAMPLE(plan_assessment, sample_assessment())
TROUPE_SAMPLE(run_snapshot, sample_snapshot())
#undef TROUPE_SAMPLE

class writer {
public:
  writer(fs::path dir, caf::actor_system& sys)
    : dir_(std::move(dir)), sys_(sys) {
    // nop
  }

  /// Writes `x` behind `selector`. With `marker`, the double of that value
  /// is written as CAF 0.17 reads infinity, which its serializer cannot
  /// write.
  template <class T>
  bool write(const std::string& name, uint8_t selector, T& x,
             double marker = 0) {
    std::vector<char> buf{static_cast<char>(selector)};
    caf::binary_serializer sink{sys_, buf};
    if (auto err = sink(x)) {
      std::fprintf(stderr, "cannot serialize %s: %s\n", name.c_str(),
                   sys_.render(err).c_str());
      return false;
    }
    if (marker != 0 && !make_infinite(buf, marker)) {
      std::fprintf(stderr, "no %g in %s\n", marker, name.c_str());
      return false;
    }
    std::ofstream out{dir_ / name, std::ios::binary};
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", (dir_ / name).c_str());
      return false;
    }
    return true;
  }

private:
  // Replaces the big-endian IEEE 754 bytes of `marker` (as CAF writes a
  // normal number) with an exponent of all ones.
  static bool make_infinite(std::vector<char>& buf, double marker) {
    uint64_t bits;
    std::memcpy(&bits, &marker, sizeof(bits));
    std::vector<char> pattern;
    for (int shift = 56; shift >= 0; shift -= 8)
      pattern.push_back(static_cast<char>((bits >> shift) & 0xFF));
    auto i = std::search(buf.begin(), buf.end(), pattern.begin(),
                         pattern.end());
    if (i == buf.end())
      return false;
    const char infinity[8] = {'\x7F', '\xF0', 0, 0, 0, 0, 0, 0};
    std::copy(infinity, infinity + 8, i);
    return true;
  }

  fs::path dir_;
  caf::actor_system& sys_;
};

// Names a type through a value.
template <class T>
struct type_tag {
  using type = T;
};

template <size_t... Is>
bool write_types(writer& out, std::index_sequence<Is...>) {
  bool ok = true;
  auto each = [&](auto tag, size_t index) {
    using type = typename decltype(tag)::type;
    auto selector = static_cast<uint8_t>(index);
    auto prefix = (index < 10 ? "0" : "") + std::to_string(index);
    type empty{};
    auto filled = sample<type>();
    ok = out.write(prefix + "-default", selector, empty) && ok;
    ok = out.write(prefix + "-sample", selector, filled) && ok;
  };
  (each(type_tag<std::tuple_element_t<Is, fuzz::message_types>>{}, Is),
   ...);
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  fs::path dir = argv[1];
  std::error_code ec;
  fs::create_directories(dir, ec);
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.set("scheduler.policy", caf::atom("testing"));
  caf::actor_system sys{cfg};
  writer out{dir, sys};
  bool ok = write_types(out, std::make_index_sequence<fuzz::type_count>{});
  // Whole messages, as a submitter, a worker, a coordinator and a pool send
  // them (with null handles: a seed cannot hold a live actor).
  auto sel = fuzz::message_selector;
  std::vector<std::pair<std::string, caf::message>> messages{
    {"run", caf::make_message(run_atom_v, sample_plan(), sample_options(),
                              observer_actor{})},
    {"join", caf::make_message(join_atom_v, sample_join(), pool_actor{})},
    {"dispatch",
     caf::make_message(dispatch_atom_v, sample_spec(), progress_actor{})},
    {"result", caf::make_message(sample_result())},
    {"events", caf::make_message(std::vector<event>{sample_event(),
                                                    sample_event()})},
    {"report", caf::make_message(sample_report())},
    {"snapshot", caf::make_message(sample_snapshot())},
    {"subscribe", caf::make_message(subscribe_atom_v,
                                    std::string{"r-1f2e3d4c5b6a7988"},
                                    std::string{"token"}, observer_actor{})},
    {"resume", caf::make_message(resume_atom_v,
                                 std::string{"r-1f2e3d4c5b6a7988"},
                                 sample_options(), observer_actor{})},
    {"nodes", caf::make_message(std::vector<node_status>{
                sample_node_status()})},
    {"node-info", caf::make_message(sample_node_info())},
    {"assessment", caf::make_message(sample_assessment())},
    {"gate", caf::make_message(sample_gate(),
                               std::vector<workstream_result>{
                                 sample_result()})},
  };
  for (auto& [name, msg] : messages)
    ok = out.write("msg-" + name, sel, msg) && ok;
  // Infinite numbers, which a peer can send though Troupe never makes them.
  // A value no sample holds, so its bytes are found only where it was put.
  constexpr double marker = 2.718281828459045;
  auto p = sample_plan();
  p.workstreams[1].timeout_s = marker;
  ok = out.write("07-infinite-timeout", 7, p, marker) && ok;
  auto r = sample_result();
  r.wall_s = marker;
  ok = out.write("10-infinite-wall", 10, r, marker) && ok;
  auto run_msg = caf::make_message(run_atom_v, p, sample_options(),
                                   observer_actor{});
  ok = out.write("msg-run-infinite-timeout", sel, run_msg, marker) && ok;
  return ok ? 0 : 1;
}
