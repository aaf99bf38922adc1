// Events and reports as JSON text, written straight into a string
// (plan_json_out.cpp writes plans).
//
// The journal writes every plan, event and report a run makes, and through
// nlohmann's tree (a node per field, then a dump) that costs several times
// what the orchestrator spends on them otherwise. This writes the JSON the
// `to_json` functions make (the same keys in the same sorted order, strings
// made well-formed UTF-8 as `json_text` makes them), which `from_json` and
// the plan decoder read back; the tests hold the two to each other.

#include <string>
#include <vector>

#include "json_writer.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"

namespace troupe {

// In detail, beside the writer, so that write_all finds each `write`.
namespace detail {

void write(writer& w, const usage& x) {
  w.open('{');
  w.key("cache_read_tokens");
  w.integer(x.cache_read_tokens);
  w.key("cache_write_tokens");
  w.integer(x.cache_write_tokens);
  w.key("cost_usd");
  w.number(x.cost_usd);
  w.key("input_tokens");
  w.integer(x.input_tokens);
  w.key("model");
  w.string(x.model);
  w.key("output_tokens");
  w.integer(x.output_tokens);
  w.close('}');
}

void write(writer& w, const check_result& x) {
  w.open('{');
  w.key("detail");
  w.string(x.detail);
  w.key("name");
  w.string(x.name);
  w.key("passed");
  w.boolean(x.passed);
  w.close('}');
}

void write(writer& w, const workstream_result& x) {
  w.open('{');
  w.key("attempts");
  w.integer(x.attempts);
  // Only an `until` workstream has these.
  if (!x.check.name.empty()) {
    w.key("check");
    write(w, x.check);
  }
  w.key("exit_code");
  w.integer(x.exit_code);
  w.key("files_changed");
  w.strings(x.files_changed);
  w.key("id");
  w.string(x.id);
  if (!x.iterations.empty()) {
    w.key("iterations");
    write_all(w, x.iterations);
  }
  if (x.lines_added != 0 || x.lines_removed != 0) {
    w.key("lines_added");
    w.integer(x.lines_added);
    w.key("lines_removed");
    w.integer(x.lines_removed);
  }
  w.key("node");
  w.string(x.node);
  w.key("output");
  w.string(x.output);
  w.key("outputs");
  w.strings(x.outputs);
  w.key("persona");
  w.string(x.persona);
  w.key("started_s");
  w.number(x.started_s);
  w.key("status");
  w.string(to_string(x.status));
  // Only an agent that ran sub-agents has this.
  if (!x.sub_agent_usage.empty()) {
    w.key("sub_agent_usage");
    write_all(w, x.sub_agent_usage);
  }
  w.key("summary");
  w.string(x.summary);
  w.key("title");
  w.string(x.title);
  w.key("usage");
  write_all(w, x.usage);
  w.key("wall_s");
  w.number(x.wall_s);
  w.close('}');
}

void write(writer& w, const gate_result& x) {
  w.open('{');
  w.key("attempts");
  w.integer(x.attempts);
  w.key("checks");
  write_all(w, x.checks);
  w.key("id");
  w.string(x.id);
  w.key("status");
  w.string(to_string(x.status));
  w.close('}');
}

} // namespace detail

using detail::write_all;
using detail::writer;

std::string json_text(const run_report& x) {
  std::string out;
  out.reserve(1024 + x.markdown.size() + 512 * x.workstreams.size());
  writer w{out};
  w.open('{');
  if (x.max_cost_usd > 0) {
    w.key("budget_stopped");
    w.boolean(x.budget_stopped);
  }
  w.key("cost_usd");
  w.number(x.cost_usd);
  w.key("critical_path");
  w.strings(x.critical_path);
  w.key("critical_path_s");
  w.number(x.critical_path_s);
  w.key("deep_tier_cost_usd");
  w.number(x.deep_tier_cost_usd);
  w.key("gates");
  write_all(w, x.gates);
  w.key("goal");
  w.string(x.goal);
  w.key("markdown");
  w.string(x.markdown);
  if (x.max_cost_usd > 0) {
    w.key("max_cost_usd");
    w.number(x.max_cost_usd);
  }
  // Only a report that is partial says so.
  if (x.partial) {
    w.key("partial");
    w.boolean(true);
  }
  w.key("plan");
  w.string(x.plan);
  if (!x.planning_usage.empty()) {
    w.key("planning_usage");
    write_all(w, x.planning_usage);
  }
  if (!x.run_dir.empty()) {
    w.key("repository");
    w.open('{');
    w.key("approval");
    w.string(x.approval);
    w.key("base");
    w.string(x.base);
    w.key("branch");
    w.string(x.branch);
    w.key("commit_error");
    w.string(x.commit_error);
    w.key("commits");
    w.strings(x.commits);
    w.key("run_dir");
    w.string(x.run_dir);
    w.close('}');
  }
  w.key("rerun");
  w.strings(x.rerun);
  w.key("run_id");
  w.string(x.run_id);
  w.key("sequential_s");
  w.number(x.sequential_s);
  w.key("status");
  w.string(to_string(x.status));
  if (!x.sub_agent_usage.empty()) {
    w.key("sub_agent_usage");
    write_all(w, x.sub_agent_usage);
  }
  if (!x.synthesis.empty()) {
    w.key("synthesis");
    w.string(x.synthesis);
  }
  w.key("synthesized_by");
  w.string(x.synthesized_by);
  w.key("usage");
  write_all(w, x.usage);
  w.key("wall_s");
  w.number(x.wall_s);
  w.key("workstreams");
  write_all(w, x.workstreams);
  w.close('}');
  return out;
}

void append_json(std::string& out, const event& x) {
  writer w{out};
  w.open('{');
  w.key("at");
  w.number(x.at);
  w.key("attempt");
  w.integer(x.attempt);
  if (carries_checks(x.kind)) {
    w.key("checks");
    write_all(w, x.checks);
  }
  w.key("kind");
  w.string(to_string(x.kind));
  w.key("message");
  w.string(x.message);
  w.key("node");
  w.string(x.node);
  if (carries_result(x.kind)) {
    w.key("result");
    write(w, x.result);
  }
  w.key("run_id");
  w.string(x.run_id);
  w.key("seq");
  w.integer(x.seq);
  w.key("state");
  w.string(x.state);
  w.key("subject");
  w.string(x.subject);
  w.key("t_s");
  w.number(x.t_s);
  w.close('}');
}

std::string json_text(const event& x) {
  std::string out;
  out.reserve(256 + (carries_result(x.kind) ? x.result.output.size() : 0));
  append_json(out, x);
  return out;
}

} // namespace troupe
