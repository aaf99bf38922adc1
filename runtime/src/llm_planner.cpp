// The LLM planner: a plan asked of a model, checked, and asked again with
// its errors until it is valid or the tries run out.

#include "troupe/runtime/llm_planner.hpp"

#include <chrono>
#include <algorithm>
#include <memory>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/prompts.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// Bytes of a rejected reply quoted back to the model.
constexpr size_t quoted_reply_bytes = 16 * 1024;

} // namespace

std::string plan_text_in(const std::string& reply) {
  auto fence = reply.find("```");
  if (fence != std::string::npos) {
    auto start = reply.find('\n', fence);
    auto end = start == std::string::npos ? start : reply.find("```", start);
    if (start != std::string::npos && end != std::string::npos)
      return reply.substr(start + 1, end - start - 1);
  }
  size_t pos = 0;
  while (pos < reply.size()) {
    auto eol = reply.find('\n', pos);
    auto line = reply.substr(pos, eol == std::string::npos ? eol : eol - pos);
    for (const char* start : {"name:", "goal:", "workstreams:", "{"})
      if (line.rfind(start, 0) == 0)
        return reply.substr(pos);
    if (eol == std::string::npos)
      break;
    pos = eol + 1;
  }
  return reply;
}

namespace {

std::string error_lines(const diagnostics& d) {
  std::string out;
  for (auto& x : d.items())
    if (!x.warning)
      out += "- " + to_string(x) + "\n";
  return out;
}

} // namespace

std::string llm_planner_prompt(const std::string& goal,
                               const std::string& reply,
                               const std::string& errors) {
  std::string p
    = "Plan this goal for a team of AI coding agents that Troupe runs.\n"
      "\n"
      "Reply with the plan alone, as YAML, in this schema:\n"
      "\n"
      "name: short-name          # letters, digits, '-', '_' and '.'\n"
      "goal: the goal in one line\n"
      "workstreams:              # independent ones run in parallel\n"
      "  - id: types             # unique: letters, digits, '-', '_', '.'\n"
      "    title: Create the types\n"
      "    persona: backend      # backend, frontend, data_engineer, agent,\n"
      "                          # analyzer, refactorer, devops, security,\n"
      "                          # performance, qa, docs or debugger\n"
      "    agent: general        # explore (reads only), plan (designs),\n"
      "                          # general (writes files)\n"
      "    owns: [src/types.ts]  # files it may change (globs); none for\n"
      "                          # explore and plan agents\n"
      "    depends_on: []        # ids whose results it needs first\n"
      "    prompt: The task in full; the agent sees only this and the\n"
      "      results of what it depends on.\n"
      "gates:                    # checks once `after` has ended; what\n"
      "  - id: built             # depends on those workstreams waits\n"
      "    after: [types]\n"
      "    checks: [completion, conflicts]\n"
      "\n"
      "Rules: no dependency cycles; two workstreams that can run at the same "
      "time never own the same files; at most 7 workstreams side by side; "
      "tests come after the implementation, behind a gate, and docs last; a "
      "simple goal is one workstream. Leave out `executor`, `model` and "
      "`settings`: Troupe fills them in.\n"
      "\n"
      "Goal:\n"
      + goal + "\n";
  if (!errors.empty())
    p += "\nYour previous reply was not a valid plan:\n" + errors
         + "\nYour previous reply was:\n" + utf8_head(reply, quoted_reply_bytes)
         + "\n\nReply with the whole plan again, corrected.\n";
  return p;
}

plan plan_from_reply(const std::string& reply, const goal_options& opts,
                     const validation_options& vopts, diagnostics& out) {
  json j;
  if (!parse_plan_text(plan_text_in(reply), "", j, out))
    return {};
  if (!j.is_object()) {
    out.error("plan", "must be a mapping with name, goal and workstreams");
    return {};
  }
  json exec = opts.executor;
  j.erase("settings");
  if (auto ws = j.find("workstreams"); ws != j.end() && ws->is_array())
    for (auto& w : *ws)
      if (w.is_object()) {
        w["executor"] = exec;
        if (opts.fixed_tier)
          w["model"] = to_string(opts.tier);
      }
  if (is_agent_executor(opts.executor.kind)) {
    auto& s = j["synthesis"];
    if (!s.is_object())
      s = json::object();
    s["executor"] = exec;
    s["model"] = to_string(opts.fixed_tier ? opts.tier : model_tier::deep);
  } else {
    j.erase("synthesis");
  }
  return load_plan_text(json_text(j), "json", vopts, out);
}

bool plan_with_llm(const std::string& goal, const goal_options& opts,
                   const validation_options& vopts, const troupe_config& cfg,
                   llm_planning& out) {
  diagnostics sd;
  auto settings = cfg.settings
                    ? decode_plan_settings(*cfg.settings, "settings", sd)
                    : plan_settings{};
  if (!sd.ok()) {
    out.errors = error_lines(sd);
    return false;
  }
  workstream w;
  w.id = "planner";
  w.title = "Plan the goal";
  w.persona = "analyzer";
  w.agent = agent_kind::plan;
  w.model = opts.fixed_tier ? opts.tier : model_tier::deep;
  w.executor = opts.executor;
  if (!is_agent_executor(w.executor.kind)) {
    w.executor = executor_spec{};
    w.executor.kind = "anthropic";
  }
  auto registry = executors_for(cfg);
  if (auto why = registry->unavailable().find(w.executor.kind);
      why != registry->unavailable().end()) {
    out.errors = w.executor.kind + " cannot run here: " + why->second + "\n";
    return false;
  }
  auto factory = registry->find(w.executor.kind);
  if (factory == nullptr) {
    out.errors = "no executor " + w.executor.kind + " here\n";
    return false;
  }
  workstream_spec spec;
  spec.run_id = "planning";
  spec.model = resolve_model(settings, w);
  if (!spec.model.empty())
    find_price(settings, spec.model, spec.price);
  spec.system_prompt = persona_prompt(settings, w.persona);
  spec.timeout_s = settings.default_timeout_s;
  spec.workdir = current_dir();
  out.model = spec.model;

  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  caf::scoped_actor self{sys};
  std::string reply;
  for (out.tries = 1; out.tries <= llm_planner_tries; ++out.tries) {
    spec.ws = w;
    spec.ws.prompt = llm_planner_prompt(goal, reply, out.errors);
    spec.attempt = out.tries;
    spec.dispatch = out.tries;
    auto exec = (*factory)(sys);
    workstream_result r;
    std::string failure;
    // The executor keeps its own timeout; this only catches a lost one.
    auto limit = std::chrono::seconds(
      static_cast<int64_t>(std::min(spec.timeout_s, max_timeout_s) + 60));
    self->request(exec, limit, run_atom_v, spec)
      .receive([&](workstream_result& x) { r = std::move(x); },
               [&](caf::error& err) {
                 failure = sys.render(err);
                 // Nothing it started outlives the call.
                 self->send(exec, cancel_atom_v);
               });
    for (auto& u : r.usage)
      add_usage(out.usage, u);
    if (!failure.empty() || r.status != ws_state::succeeded) {
      out.errors = (failure.empty() ? r.summary : failure) + "\n";
      return false;
    }
    reply = r.outputs.count("reply") > 0 ? r.outputs["reply"] : r.output;
    out.reply = reply;
    diagnostics d;
    auto p = plan_from_reply(reply, opts, vopts, d);
    if (d.ok()) {
      out.p = std::move(p);
      out.errors.clear();
      return true;
    }
    out.errors = error_lines(d);
  }
  out.tries = llm_planner_tries;
  return false;
}

} // namespace troupe
