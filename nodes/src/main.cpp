#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "commands.hpp"
#include "troupe/actors/gate.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/runtime/executors.hpp"

using namespace troupe;

namespace {

validation_options cli_validation() {
  validation_options v;
  v.executor_kinds = executor_registry::with_builtins()->kinds();
  return v;
}

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

int plan_command(const std::string& file, int32_t max_parallel, bool json) {
  diagnostics d;
  auto p = load_plan_file(file, cli_validation(), d);
  if (!cli::report_diagnostics(file, d))
    return cli::exit_bad_input;
  if (max_parallel > 0)
    p.settings.max_parallel_agents = max_parallel;
  plan_assessment a;
  {
    caf::actor_system_config cfg;
    add_message_types(cfg);
    caf::actor_system sys{cfg};
    auto planner = spawn_planner(sys);
    caf::scoped_actor self{sys};
    bool ok = true;
    self->request(planner, std::chrono::seconds(60), assess_atom_v, p)
      .receive([&](plan_assessment& x) { a = std::move(x); },
               [&](caf::error& err) {
                 std::cerr << file << ": cannot assess: " << sys.render(err)
                           << '\n';
                 ok = false;
               });
    caf::anon_send_exit(planner, caf::exit_reason::user_shutdown);
    if (!ok)
      return cli::exit_run_failed;
  }
  if (json) {
    nlohmann::json j = a;
    std::cout << j.dump(2) << '\n';
  } else {
    std::cout << cli::render_plan(p, a, p.settings.max_parallel_agents);
  }
  return cli::exit_ok;
}

void set_up_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("troupe");
  logger->set_pattern("%^%l%$: %v");
  logger->set_level(spdlog::level::from_str(level));
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe: runs teams of coding agents as actors"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  std::string file;
  auto validate = app.add_subcommand("validate", "check a plan, run nothing");
  validate->add_option("PLAN", file, "plan file (YAML or JSON)")->required();

  int32_t plan_parallel = 0;
  bool plan_json = false;
  auto plan_cmd = app.add_subcommand(
    "plan", "show the workstream map, estimates and complexity, run nothing");
  plan_cmd->add_option("PLAN", file, "plan file (YAML or JSON)")->required();
  plan_cmd->add_option("--max-parallel", plan_parallel,
                       "parallel agents to estimate with")
    ->check(CLI::PositiveNumber);
  plan_cmd->add_flag("--json", plan_json, "print the assessment as JSON");

  cli::run_flags rf;
  auto run = app.add_subcommand("run", "run a plan on this machine");
  run->add_option("PLAN", rf.plan_file, "plan file (YAML or JSON)")
    ->required();
  run->add_option("--max-parallel", rf.max_parallel,
                  "agents at once (default: the plan's max_parallel_agents)")
    ->check(CLI::PositiveNumber);
  run->add_option("--report", rf.report_file, "write the JSON report here");
  run->add_option("--events", rf.events_file,
                  "write every event here as a JSON line");
  run->add_option("--workdir", rf.workdir,
                  "directory workstreams run in (default: the current one)")
    ->check(CLI::ExistingDirectory);
  run->add_flag("--yes,-y", rf.yes, "run without asking for confirmation");
  run->add_flag("--quiet,-q", rf.quiet, "no progress, only the report");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return cli::exit_bad_input;
  }
  set_up_logging(log_level);
  if (*validate)
    return validate_command(file);
  if (*plan_cmd)
    return plan_command(file, plan_parallel, plan_json);
  if (*run)
    return cli::run_command(rf);
  return cli::exit_bad_input;
}
