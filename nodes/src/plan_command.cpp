// `troupe validate PLAN` and `troupe plan PLAN`: a plan file checked,
// assessed and shown (with --show-prompts, each agent's prompts), nothing
// run.

#include <iostream>
#include <string>
#include <nlohmann/json.hpp>
#include <caf/all.hpp>
#include "commands.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/prompts.hpp"

namespace troupe::cli {

namespace {

validation_options cli_validation() {
  return cli::plan_loading(*executors_for(cli::configuration()));
}

} // namespace

int validate_command(const std::string& file) {
  diagnostics d;
  auto p = load_plan_file(file, cli_validation(), d);
  if (!cli::report_diagnostics(file, d))
    return cli::exit_bad_input;
  std::cout << file << ": valid plan \"" << p.name << "\" ("
            << p.workstreams.size() << " workstreams, " << p.gates.size()
            << " gates)\n";
  return cli::exit_ok;
}

namespace {

// A workstream's system prompt and task as the run would send them, with
// `context` for what it learns at run time.
std::string render_prompt(const plan& p, const workstream& w,
                          const std::string& context) {
  std::string out = "\n=== " + w.id + " (" + w.persona + ", " + w.executor.kind;
  auto model = resolve_model(p.settings, w);
  if (!model.empty())
    out += ", " + model;
  out += ")\n";
  if (is_agent_executor(w.executor.kind))
    out += "--- system prompt (" + persona_prompt_source(p.settings, w.persona)
           + ")\n" + persona_prompt(p.settings, w.persona);
  if (!out.empty() && out.back() != '\n')
    out += '\n';
  out += "--- task\n" + agent_prompt(w.prompt, context);
  if (!out.empty() && out.back() != '\n')
    out += '\n';
  return out;
}

// Each agent's system prompt and task as the run would send them; what
// the work before it answers stands in brackets.
std::string render_prompts(const plan& p) {
  std::string out;
  for (auto& w : p.workstreams) {
    if (!is_agent_executor(w.executor.kind) && w.prompt.empty())
      continue;
    nlohmann::json deps = nlohmann::json::array();
    for (auto& d : w.depends_on)
      deps.push_back({{"id", d},
                      {"status", "at run time"},
                      {"summary", "[what " + d + " answers]"}});
    auto context = deps.empty()
                     ? std::string{}
                     : json_text(nlohmann::json{{"dependencies", deps}});
    out += render_prompt(p, w, context);
  }
  if (p.synthesis.by_agent()) {
    nlohmann::json ctx{{"outcome", "[how the run's work ended]"},
                       {"dependencies",
                        {{{"id", "[each workstream, gate fixer]"},
                          {"status", "at run time"},
                          {"summary", "[what it answered]"}}}}};
    if (!p.gates.empty())
      ctx["gates"] = {{{"id", "[each gate]"}, {"status", "[its verdict]"}}};
    out += render_prompt(p, synthesis_workstream(p), json_text(ctx));
  }
  if (out.empty())
    out = "\nNo workstream of this plan has a prompt.\n";
  return out;
}

} // namespace

int plan_command(const std::string& file, int32_t max_parallel, bool json,
                 bool show_prompts) {
  diagnostics d;
  auto p = load_plan_file(file, cli_validation(), d);
  if (!cli::report_diagnostics(file, d))
    return cli::exit_bad_input;
  if (max_parallel > 0)
    p.settings.max_parallel_agents = max_parallel;
  auto a = assess(p);
  if (json) {
    std::cout << json_text(a, 2) << '\n';
  } else {
    std::cout << cli::render_plan(p, a, p.settings.max_parallel_agents);
    if (show_prompts)
      std::cout << render_prompts(p);
  }
  return cli::exit_ok;
}

} // namespace troupe::cli
