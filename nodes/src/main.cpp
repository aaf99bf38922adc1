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
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/prompts.hpp"

using namespace troupe;

namespace {

validation_options cli_validation() {
  return cli::plan_loading(*executors_for(cli::configuration()));
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
    auto context = deps.empty() ? std::string{}
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

int plan_command(const std::string& file, int32_t max_parallel, bool json,
                 bool show_prompts) {
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
    std::cout << json_text(a, 2) << '\n';
  } else {
    std::cout << cli::render_plan(p, a, p.settings.max_parallel_agents);
    if (show_prompts)
      std::cout << render_prompts(p);
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

  std::string config_file;
  app.add_option("--config", config_file,
                 "the config file (default: TROUPE_CONFIG, else "
                 "~/.config/troupe/config.yaml if it exists)");
  // Options of the whole program may come after the command too.
  app.fallthrough();

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
  bool plan_prompts = false;
  plan_cmd->add_flag("--show-prompts", plan_prompts,
                     "print each agent's system prompt and task as the run "
                     "sends them")
    ->excludes(plan_cmd->add_flag("--json", plan_json,
                                  "print the assessment as JSON"));

  auto add_journal = [](CLI::App* cmd, cli::journal_flags& j,
                        bool writes = true) {
    auto path = cmd->add_option(
      "--journal", j.path,
      "the journal of runs (default: .troupe/troupe.db here)");
    if (writes)
      cmd->add_flag("--no-journal", j.off, "journal nothing")->excludes(path);
  };

  cli::run_flags rf;
  auto run = app.add_subcommand("run", "run a plan on this machine");
  run->add_option("PLAN", rf.plan_file, "plan file (YAML or JSON)")
    ->required();
  run->add_option("--max-parallel", rf.max_parallel,
                  "agents at once (default: the plan's max_parallel_agents)")
    ->check(CLI::PositiveNumber);
  auto add_max_cost = [](CLI::App* cmd, double& x) {
    cmd->add_option("--max-cost", x,
                    "US dollars the agents may spend (default: the plan's "
                    "max_cost_usd; 0 for no limit)")
      ->check(CLI::NonNegativeNumber);
  };
  add_max_cost(run, rf.max_cost);
  run->add_option("--report", rf.report_file, "write the JSON report here");
  run->add_option("--events", rf.events_file,
                  "write every event here as a JSON line");
  run->add_option("--workdir", rf.workdir,
                  "directory workstreams run in (default: the current one)")
    ->check(CLI::ExistingDirectory);
  run->add_flag("--yes,-y", rf.yes, "run without asking for confirmation");
  run->add_flag("--quiet,-q", rf.quiet, "no progress, only the report");
  add_journal(run, rf.journal);

  cli::run_flags resume_flags;
  auto resume = app.add_subcommand(
    "resume", "continue an interrupted run of the journal on this machine: "
              "what succeeded is not run again");
  resume->add_option("RUN", resume_flags.run_id, "the run's id (or its start)")
    ->required();
  resume->add_option("--max-parallel", resume_flags.max_parallel,
                     "agents at once (default: as the run had)")
    ->check(CLI::PositiveNumber);
  resume->add_option("--report", resume_flags.report_file,
                     "write the JSON report here");
  resume->add_option("--events", resume_flags.events_file,
                     "write every event from here on as a JSON line");
  resume->add_flag("--quiet,-q", resume_flags.quiet,
                   "no progress, only the report");
  add_journal(resume, resume_flags.journal, false);

  auto add_tls = [](CLI::App* cmd, cli::tls_flags& tls) {
    cmd->add_option("--tls-cert", tls.cert, "this node's certificate (PEM)")
      ->group("TLS");
    cmd->add_option("--tls-key", tls.key, "this node's private key (PEM)")
      ->group("TLS");
    cmd->add_option("--tls-ca", tls.ca,
                    "the CA that signs every node's certificate (PEM)")
      ->group("TLS");
    cmd->add_flag("--insecure-plaintext", tls.insecure_plaintext,
                  "talk without TLS to an address other than loopback "
                  "(unauthenticated peers can then exhaust memory and "
                  "impersonate nodes)")
      ->group("TLS");
  };

  auto submit = app.add_subcommand(
    "submit", "run a plan on a coordinator and follow it to the end");
  submit->add_option("PLAN", rf.plan_file, "plan file (YAML or JSON)")
    ->required();
  submit->add_option("--coordinator", rf.coordinator,
                     "where the coordinator listens (HOST:PORT)")
    ->required();
  submit->add_option("--max-parallel", rf.max_parallel,
                     "agents at once (default: the plan's "
                     "max_parallel_agents)")
    ->check(CLI::PositiveNumber);
  add_max_cost(submit, rf.max_cost);
  submit->add_option("--report", rf.report_file, "write the JSON report here");
  submit->add_option("--events", rf.events_file,
                     "write every event here as a JSON line");
  submit->add_option("--workdir", rf.workdir,
                     "directory workstreams run in on the workers (default: "
                     "the current one)");
  submit->add_option("--token-file", rf.token_file,
                     "file holding the cluster's token");
  submit->add_flag("--yes,-y", rf.yes, "run without asking for confirmation");
  submit->add_flag("--quiet,-q", rf.quiet, "no progress, only the report");
  add_tls(submit, rf.tls);

  cli::coordinator_flags cf;
  auto coordinator = app.add_subcommand(
    "coordinator", "accept workers and runs until stopped (SIGTERM, SIGHUP)");
  coordinator->add_option("--listen", cf.listen,
                          "HOST:PORT to listen on; port 0 picks a free one")
    ->capture_default_str();
  coordinator->add_option("--slots", cf.slots,
                          "agent slots on the coordinator itself")
    ->capture_default_str();
  coordinator->add_option("--token-file", cf.token_file,
                          "file holding the token workers and submitters "
                          "must present");
  coordinator->add_option("--name", cf.name, "how the coordinator is named")
    ->capture_default_str();
  add_tls(coordinator, cf.tls);
  add_journal(coordinator, cf.journal);

  cli::worker_flags wf;
  auto worker = app.add_subcommand(
    "worker", "lend agent slots to a coordinator until stopped (SIGTERM or "
              "SIGHUP drains)");
  worker->add_option("--join", wf.join, "the coordinator's HOST:PORT")
    ->required();
  worker->add_option("--slots", wf.slots, "agent slots to lend")
    ->capture_default_str();
  worker->add_option("--personas", wf.personas,
                     "personas served, comma-separated (default: any)")
    ->delimiter(',');
  worker->add_option("--executors", wf.executors,
                     "executors offered, comma-separated (default: all "
                     "available)")
    ->delimiter(',');
  worker->add_option("--models", wf.models,
                     "models its agents may ask for, comma-separated "
                     "(default: any)")
    ->delimiter(',');
  worker->add_option("--name", wf.name,
                     "node name (default: HOSTNAME-PID)");
  worker->add_option("--token-file", wf.token_file,
                     "file holding the cluster's token");
  worker->add_option("--workdir", wf.workdir,
                     "run every workstream here instead of the directory "
                     "the run names")
    ->check(CLI::ExistingDirectory);
  worker->add_option("--protocol-version", wf.protocol_version,
                     "claim another protocol version (for testing)")
    ->group("");
  add_tls(worker, wf.tls);

  auto config = app.add_subcommand("config", "the configuration");
  config->require_subcommand(1);
  std::string config_plan;
  bool config_json = false;
  auto config_show = config->add_subcommand(
    "show", "the settings a plan runs with and where each came from, and "
            "how providers are reached (keys are never shown)");
  config_show->add_option("PLAN", config_plan,
                          "show this plan's settings over the config's");
  config_show->add_flag("--json", config_json, "print JSON");

  cli::nodes_flags nf;
  auto nodes = app.add_subcommand("nodes", "list a coordinator's nodes");
  nodes->add_option("--coordinator", nf.coordinator,
                    "where the coordinator listens (HOST:PORT)")
    ->required();
  nodes->add_option("--token-file", nf.token_file,
                    "file holding the cluster's token");
  nodes->add_flag("--json", nf.json, "print the nodes as JSON");
  add_tls(nodes, nf.tls);


  auto add_run_query = [&](CLI::App* cmd, cli::runs_flags& q) {
    add_journal(cmd, q.journal, false);
    cmd->add_option("--coordinator", q.coordinator,
                    "ask the coordinator at HOST:PORT instead of the "
                    "journal here");
    cmd->add_option("--token-file", q.token_file,
                    "file holding the cluster's token");
    add_tls(cmd, q.tls);
  };
  cli::runs_flags lf;
  auto runs = app.add_subcommand("runs", "list the runs");
  runs->add_flag("--json", lf.json, "print the runs as JSON");
  add_run_query(runs, lf);
  auto report = app.add_subcommand(
    "report", "print the report of a finished run again");
  report->add_option("RUN", lf.run_id, "the run's id (or its start)")
    ->required();
  report->add_flag("--json", lf.json, "print the report as JSON");
  add_run_query(report, lf);

  cli::runs_flags sf;
  auto status = app.add_subcommand(
    "status", "a run's state (every run's without RUN), live with --follow");
  status->add_option("RUN", sf.run_id, "the run's id (or its start)");
  status->add_flag("--follow,-f", sf.follow,
                   "follow the run until it ends, then print its report");
  status->add_flag("--json", sf.json, "print JSON");
  add_run_query(status, sf);
  auto abort = app.add_subcommand(
    "abort", "cancel a run, wherever it runs (its report is still written)");
  abort->add_option("RUN", sf.run_id, "the run's id (or its start)")
    ->required();
  add_run_query(abort, sf);
  auto logs = app.add_subcommand(
    "logs", "the output of a run's workstreams, attempt by attempt");
  logs->add_option("RUN", sf.run_id, "the run's id (or its start)")
    ->required();
  logs->add_option("WS", sf.workstream, "only this workstream");
  add_run_query(logs, sf);

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
  for (auto* cmd : {validate, plan_cmd, run, resume, submit, coordinator,
                    worker, config})
    if (*cmd && !cli::load_configuration(config_file))
      return cli::exit_bad_input;
  if (*config_show)
    return cli::config_show_command(config_plan, config_json);
  if (*validate)
    return validate_command(file);
  if (*plan_cmd)
    return plan_command(file, plan_parallel, plan_json, plan_prompts);
  if (*run)
    return cli::run_command(rf);
  if (*submit)
    return cli::submit_command(rf);
  if (*coordinator)
    return cli::coordinator_command(cf);
  if (*worker)
    return cli::worker_command(wf);
  if (*nodes)
    return cli::nodes_command(nf);
  if (*resume)
    return cli::resume_command(resume_flags);
  if (*runs)
    return cli::runs_command(lf);
  if (*status)
    return cli::status_command(sf);
  if (*abort)
    return cli::abort_command(sf);
  if (*logs)
    return cli::logs_command(sf);
  if (*report)
    return cli::report_command(lf);
  return cli::exit_bad_input;
}
