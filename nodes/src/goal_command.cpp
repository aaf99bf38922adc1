// Plans made on the command line rather than read from a file: from a goal
// (`troupe plan --goal`, `troupe run --goal`) and from tasks
// (`troupe parallel`).

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/llm_planner.hpp"

namespace troupe::cli {

namespace {

// A requirements document longer than this is refused: a goal is read
// whole into every prompt's context.
constexpr size_t max_goal_bytes = 1 << 20;

bool read_goal(const plan_source& src, std::string& text) {
  if (src.goal_file.empty()) {
    text = src.goal;
  } else {
    if (auto why = read_small_file(src.goal_file, max_goal_bytes, text);
        !why.empty()) {
      std::cerr << "--goal-file: cannot read " << src.goal_file << ": " << why
                << '\n';
      return false;
    }
  }
  if (!is_valid_utf8(text)) {
    std::cerr << (src.goal_file.empty() ? std::string{"--goal"} : src.goal_file)
              << ": not UTF-8 text\n";
    return false;
  }
  auto blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) {
    std::cerr << (src.goal_file.empty() ? std::string{"--goal"} : src.goal_file)
              << ": the goal is empty\n";
    return false;
  }
  return true;
}

// What every workstream runs on, from --executor, --run and --model.
bool planner_options(const plan_source& src, goal_options& opts) {
  opts.executor.kind = src.executor.empty() ? "claude-code" : src.executor;
  opts.executor.run = src.run;
  if (!src.run.empty() && opts.executor.kind != "command") {
    std::cerr << "--run: only for --executor command (the command each "
                 "workstream runs)\n";
    return false;
  }
  if (!src.model.empty()) {
    model_tier t;
    if (from_string(src.model, t)) {
      opts.fixed_tier = true;
      opts.tier = t;
    } else if (is_agent_executor(opts.executor.kind)) {
      opts.executor.model = src.model;
    } else {
      std::cerr << "--model: " << src.model
                << " is no tier (fast, balanced, deep), and an exact model "
                   "needs an agent executor, not "
                << opts.executor.kind << '\n';
      return false;
    }
  }
  return true;
}

// The goal's assessment in place of the plan's own, for the map.
plan_assessment shown_assessment(const plan& p, const goal_assessment& g) {
  auto a = assess(p);
  a.level = g.level;
  a.score = g.score;
  a.indicators = g.reasons;
  a.strategy = g.strategy;
  if (!g.strategy_words.empty()) {
    a.strategy += " (";
    for (size_t i = 0; i < g.strategy_words.size(); ++i)
      a.strategy += (i == 0 ? "" : ", ") + g.strategy_words[i];
    a.strategy += ")";
  }
  return a;
}

std::string origin_of(const plan_source& src) {
  if (!src.tasks.empty())
    return "troupe parallel";
  return src.goal_file.empty() ? std::string{"--goal"} : src.goal_file;
}

} // namespace

bool plan_source::given() const {
  return !goal.empty() || !goal_file.empty() || !tasks.empty();
}

std::optional<int> make_plan(const plan_source& src,
                             const validation_options& vopts,
                             planned_plan& out) {
  goal_options opts;
  if (!planner_options(src, opts))
    return exit_bad_input;
  // A config file's narrower phases hold for a planned plan too.
  if (auto& base = vopts.settings_base; base && base->is_object())
    if (auto w = base->find("max_phase_width");
        w != base->end() && w->is_number_integer())
      opts.max_phase_width = static_cast<int32_t>(
        std::clamp<int64_t>(w->get<int64_t>(), 1, opts.max_phase_width));
  plan p;
  if (!src.tasks.empty()) {
    p = plan_from_tasks(src.tasks, opts);
    for (size_t i = 0; i < p.workstreams.size(); ++i)
      if (p.workstreams[i].prompt.empty()) {
        std::cerr << "troupe parallel: task " << i + 1 << " (\"" << src.tasks[i]
                  << "\") is empty\n";
        return exit_bad_input;
      }
    out.shown = assess(p);
  } else {
    std::string goal;
    if (!read_goal(src, goal))
      return exit_bad_input;
    if (src.planner == "llm") {
      llm_planning asked;
      if (!plan_with_llm(goal, opts, vopts, configuration(), asked)) {
        std::cerr << origin_of(src) << ": the LLM planner gave up after "
                  << asked.tries << " tr" << (asked.tries == 1 ? "y" : "ies")
                  << ":\n"
                  << asked.errors;
        return exit_run_failed;
      }
      p = std::move(asked.p);
      out.planning_usage = asked.usage;
      out.shown = assess(p);
      out.note = "Planned by " + asked.model + " in "
                 + std::to_string(asked.tries) + " tr"
                 + (asked.tries == 1 ? "y" : "ies") + "\n";
    } else {
      auto gp = plan_from_goal(goal, opts);
      if (!gp.error.empty()) {
        std::cerr << origin_of(src) << ": " << gp.error << '\n';
        return exit_bad_input;
      }
      p = std::move(gp.p);
      out.shown = shown_assessment(p, gp.assessment);
    }
  }
  // Through its text, as a plan file would be: the configuration's
  // settings go under it, and what a person could not write is refused.
  out.yaml = plan_yaml(p);
  diagnostics d;
  out.p = load_plan_text(out.yaml, "yaml", vopts, d);
  if (!report_diagnostics(origin_of(src), d))
    return exit_bad_input;
  return std::nullopt;
}

std::string planned_view(const planned_plan& pp, int32_t max_parallel) {
  auto shown = pp.p;
  // A requirements document is long: its first line names it.
  auto nl = shown.goal.find('\n');
  if (nl != std::string::npos) {
    auto first = shown.goal.substr(0, nl);
    first.erase(0, first.find_first_not_of("# "));
    shown.goal = first + " [...]";
  }
  shown.settings.max_parallel_agents = max_parallel;
  return pp.note + render_plan(shown, pp.shown, max_parallel);
}

int plan_goal_command(const plan_source& src, const std::string& output,
                      bool json) {
  // A plan is written for later: an executor missing here is worth a
  // warning, not a refusal.
  auto executors = executors_for(configuration());
  auto vopts = plan_loading(*executors);
  auto missing = vopts.unavailable_executors;
  for (auto& [kind, why] : missing)
    vopts.executor_kinds.insert(kind);
  vopts.unavailable_executors.clear();
  planned_plan pp;
  if (auto rc = make_plan(src, vopts, pp))
    return *rc;
  for (auto& [kind, why] : missing)
    for (auto& w : pp.p.workstreams)
      if (w.executor.kind == kind) {
        std::cerr << "warning: " << kind << " cannot run here (" << why
                  << "); `troupe run` refuses the plan until it can, or "
                     "pass --executor\n";
        break;
      }
  if (json) {
    nlohmann::json j{{"assessment", pp.shown},
                     {"plan", nlohmann::json::parse(json_text(pp.p))}};
    if (!pp.planning_usage.empty())
      j["planning_usage"] = pp.planning_usage;
    std::cout << json_text(j, 2) << '\n';
  } else {
    auto view = planned_view(pp, pp.p.settings.max_parallel_agents);
    (output.empty() ? std::cerr : std::cout) << view << '\n';
  }
  if (output.empty()) {
    if (!json)
      std::cout << pp.yaml << std::flush;
    return exit_ok;
  }
  if (auto ec = write_file_atomically(output, pp.yaml)) {
    std::cerr << "-o: cannot write " << output << ": " << ec.message() << '\n';
    return exit_bad_input;
  }
  if (!json)
    std::cout << "Wrote " << output << ": edit it as you like, then `troupe "
              << "run " << output << "`\n";
  return exit_ok;
}

} // namespace troupe::cli
