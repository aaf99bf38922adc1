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

// A usage error CLI11 cannot see: said as CLI11 says its own.
int usage_error(CLI::App* cmd, const std::string& what) {
  std::cerr << what << "\nRun with --help for more information.\n";
  (void)cmd;
  return cli::exit_bad_input;
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
  auto plan_file
    = plan_cmd->add_option("PLAN", file, "plan file (YAML or JSON)");
  cli::plan_source plan_src;
  std::string plan_output;
  auto add_goal = [](CLI::App* cmd, cli::plan_source& src, CLI::Option* file) {
    auto goal = cmd
                  ->add_option("--goal", src.goal,
                               "plan this goal instead of reading a plan")
                  ->group("Planning");
    auto goal_file = cmd
                       ->add_option("--goal-file", src.goal_file,
                                    "plan the goal (a requirements "
                                    "document) in this file")
                       ->group("Planning");
    goal->excludes(goal_file)->excludes(file);
    goal_file->excludes(file);
    cmd
      ->add_option("--planner", src.planner,
                   "heuristic (no model asked) or llm (the deep tier)")
      ->check(CLI::IsMember({"heuristic", "llm"}))
      ->capture_default_str()
      ->group("Planning");
  };
  auto add_agents = [](CLI::App* cmd, cli::plan_source& src) {
    cmd
      ->add_option("--executor", src.executor,
                   "what every workstream runs on (default: claude-code)")
      ->group("Planning");
    cmd
      ->add_option("--run", src.run,
                   "with --executor command: the command each workstream "
                   "runs (its task in TROUPE_PROMPT)")
      ->group("Planning");
    cmd
      ->add_option("--model", src.model,
                   "a tier (fast, balanced, deep) or an exact model for "
                   "every workstream")
      ->group("Planning");
  };
  add_goal(plan_cmd, plan_src, plan_file);
  add_agents(plan_cmd, plan_src);
  plan_cmd->add_option("-o,--output", plan_output,
                       "with --goal: write the plan here (default: print it)");
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

  auto add_repo = [](CLI::App* cmd, cli::run_flags& f) {
    cmd
      ->add_option("--repo", f.repo,
                   "work on this git repository: a worktree per workstream, "
                   "one commit per workstream once approved")
      ->group("Repository");
    cmd
      ->add_option("--base", f.base,
                   "the commit the run starts from (default: HEAD)")
      ->group("Repository");
    cmd
      ->add_option("--branch", f.branch,
                   "the branch the commits land on (default: troupe/RUN_ID)")
      ->group("Repository");
  };

  cli::run_flags rf;
  auto run = app.add_subcommand("run", "run a plan on this machine");
  auto run_file
    = run->add_option("PLAN", rf.plan_file, "plan file (YAML or JSON)");
  add_goal(run, rf.source, run_file);
  add_agents(run, rf.source);
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
  run->add_flag("--yes,-y", rf.yes,
                "run without asking for confirmation, and commit a run's "
                "changes without asking for approval");
  run->add_flag("--quiet,-q", rf.quiet, "no progress, only the report");
  add_repo(run, rf);
  add_journal(run, rf.journal);

  // `troupe approve` and `troupe reject`.
  auto add_decision = [&](const char* name, const char* help,
                          cli::approve_flags& f) {
    auto cmd = app.add_subcommand(name, help);
    cmd->add_option("RUN", f.run_id, "the run's id (or its start)")->required();
    cmd->add_option("--repo", f.repo,
                    "the repository (default: the current directory's)");
    return cmd;
  };
  cli::approve_flags af;
  auto approve = add_decision(
    "approve",
    "commit the changes of a run on a repository that await approval: one "
    "commit per workstream, all or none",
    af);
  cli::approve_flags xf;
  xf.approve = false;
  auto reject = add_decision("reject",
                             "drop the changes of a run on a repository that "
                             "await approval: no branch changes, the diffs "
                             "stay",
                             xf);

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
  submit->add_flag("--yes,-y", rf.yes,
                   "run without asking for confirmation, and commit a run's "
                   "changes without asking for approval");
  submit->add_flag("--quiet,-q", rf.quiet, "no progress, only the report");
  add_repo(submit, rf);
  add_tls(submit, rf.tls);

  cli::run_flags pf;
  auto parallel = app.add_subcommand(
    "parallel", "run each task as one workstream, all at once, and print "
                "the synthesized report");
  parallel
    ->add_option("TASKS", pf.source.tasks,
                 "tasks; a prefix explore:, plan: or general: picks the "
                 "agent kind (default general)")
    ->required();
  add_agents(parallel, pf.source);
  parallel->add_option("--coordinator", pf.coordinator,
                       "run on the coordinator at HOST:PORT instead of here");
  parallel
    ->add_option("--max-parallel", pf.max_parallel,
                 "agents at once (default: every task)")
    ->check(CLI::PositiveNumber);
  add_max_cost(parallel, pf.max_cost);
  parallel->add_option("--report", pf.report_file,
                       "write the JSON report here");
  parallel->add_option("--events", pf.events_file,
                       "write every event here as a JSON line");
  parallel->add_option("--workdir", pf.workdir,
                       "directory workstreams run in (default: the current "
                       "one)");
  parallel->add_option("--token-file", pf.token_file,
                       "with --coordinator: file holding the cluster's token");
  parallel->add_flag("--yes,-y", pf.yes, "run without asking for confirmation");
  parallel->add_flag("--quiet,-q", pf.quiet, "no progress, only the report");
  add_journal(parallel, pf.journal);
  add_tls(parallel, pf.tls);

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
  worker->add_option("--workspaces", wf.workspaces,
                     "where worktrees of runs on a git repository are made, "
                     "and the repositories fetched (default: "
                     ".troupe/workspaces here)");
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
  for (auto* cmd : {validate, plan_cmd, run, resume, submit, parallel,
                    coordinator, worker, config})
    if (*cmd && !cli::load_configuration(config_file))
      return cli::exit_bad_input;
  if (*config_show)
    return cli::config_show_command(config_plan, config_json);
  if (*validate)
    return cli::validate_command(file);
  if (*plan_cmd) {
    if (plan_src.given())
      return cli::plan_goal_command(plan_src, plan_output, plan_json);
    if (file.empty())
      return usage_error(plan_cmd, "PLAN, --goal or --goal-file is required");
    if (!plan_output.empty() || plan_src.planner != "heuristic")
      return usage_error(plan_cmd, "-o and --planner go with --goal");
    return cli::plan_command(file, plan_parallel, plan_json, plan_prompts);
  }
  if (*run) {
    if (!rf.source.given() && rf.plan_file.empty())
      return usage_error(run, "PLAN, --goal or --goal-file is required");
    return cli::run_command(rf);
  }
  if (*parallel)
    return pf.coordinator.empty() ? cli::run_command(pf)
                                  : cli::submit_command(pf);
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
  if (*approve)
    return cli::approve_command(af);
  if (*reject)
    return cli::approve_command(xf);
  return cli::exit_bad_input;
}
