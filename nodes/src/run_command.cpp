#include <cstdio>
#include <iostream>
#include <optional>

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "signals.hpp"
#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/journal.hpp"

namespace troupe::cli {

namespace {

// Asks on the terminal; true for yes.
bool confirm(const plan& p, const std::string& map) {
  std::cerr << map << "\nRun " << p.workstreams.size()
            << " workstreams now? [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer))
    return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

/// A plan checked and ready to run, with what the flags asked for.
struct prepared_run {
  plan p;
  int32_t max_parallel = 1;
  std::string workdir;
  /// The event log while it is written, put in place when the run ends.
  staged_file events;
  /// Set to resume this run instead of starting one.
  std::string resume_id;
  /// Where the run is journaled, when known here.
  std::string journal_path;
  /// What planning it spent, for the report.
  std::vector<usage> planning_usage;
  /// The git repository it works on, if any.
  repo_options repo;
};

// Everything before a run starts; returns an exit code when it must not.
std::optional<int> prepare(const run_flags& flags,
                           const validation_options& vopts,
                           prepared_run& out) {
  // A plan made from a goal or tasks is shown before it runs, unless
  // --yes: nobody has read it yet.
  bool made = flags.source.given();
  planned_plan pp;
  if (made) {
    if (auto rc = make_plan(flags.source, vopts, pp))
      return rc;
    out.p = pp.p;
    out.planning_usage = pp.planning_usage;
  } else {
    diagnostics diags;
    out.p = load_plan_file(flags.plan_file, vopts, diags);
    if (!report_diagnostics(flags.plan_file, diags))
      return exit_bad_input;
  }
  if (flags.max_parallel < 0) {
    std::cerr << "--max-parallel: must be at least 1\n";
    return exit_bad_input;
  }
  if (!prepare_repository(flags, out.p.repo, out.repo))
    return exit_bad_input;
  auto& p = out.p;
  if (flags.max_cost >= 0)
    p.settings.max_cost_usd = flags.max_cost;
  out.max_parallel = flags.max_parallel > 0 ? flags.max_parallel
                                            : p.settings.max_parallel_agents;
  // `troupe parallel` runs what it was told: there is nothing to review.
  bool asks
    = (made && flags.source.tasks.empty()) || p.settings.confirm_before_execute;
  if (asks && !flags.yes) {
    if (!isatty(STDIN_FILENO)) {
      std::cerr << (made ? std::string{"the plan made from the goal"}
                         : flags.plan_file)
                << (made ? " is shown before it runs"
                         : ": settings.confirm_before_execute (of the plan "
                           "or the config file) asks for confirmation")
                << ", and there is no terminal to ask on; pass --yes to run "
                   "it\n";
      return exit_bad_input;
    }
    auto shown = p;
    shown.settings.max_parallel_agents = out.max_parallel;
    auto map = made ? planned_view(pp, out.max_parallel)
                    : render_plan(shown, assess(shown), out.max_parallel);
    if (!confirm(p, map)) {
      std::cerr << "troupe: not confirmed, nothing was run\n";
      return exit_run_failed;
    }
  } else if (asks && made && !flags.quiet) {
    std::cerr << planned_view(pp, out.max_parallel) << '\n';
  }
  if (!flags.events_file.empty()) {
    if (auto ec = out.events.open(flags.events_file)) {
      std::cerr << "--events: cannot write " << out.events.partial_path()
                << ": " << ec.message() << '\n';
      return exit_bad_input;
    }
  }
  out.workdir = flags.workdir;
  if (out.workdir.empty())
    out.workdir = current_dir();
  return std::nullopt;
}

// Puts the event log in place and writes the JSON report, each whole or
// not at all; false, having said why, when either failed.
bool write_outputs(prepared_run& pr, const run_flags& flags,
                   const run_report& report) {
  bool ok = true;
  if (pr.events.is_open()) {
    if (auto ec = pr.events.commit()) {
      std::cerr << "--events: writing " << flags.events_file
                << " failed: " << ec.message() << "; " << flags.events_file
                << " was not changed\n";
      ok = false;
    }
  }
  if (!flags.report_file.empty()) {
    auto text = json_text(report, 2) + '\n';
    if (auto ec = write_file_atomically(flags.report_file, text)) {
      std::cerr << "--report: cannot write " << flags.report_file << ": "
                << ec.message() << "; " << flags.report_file
                << " was not changed\n";
      ok = false;
    }
  }
  return ok;
}

// Starts the run on `orch`, shows its progress, cancels it on the first
// SIGINT, SIGTERM or SIGHUP, and prints and writes its report: a partial
// one, from the events seen so far, when `orch` is lost before the run ends.
int follow(caf::actor_system& sys, const orchestrator_actor& orch,
           prepared_run& pr, const run_flags& flags, run_options opts) {
  caf::scoped_actor self{sys};
  self->monitor(orch);
  progress_config prog;
  prog.p = &pr.p;
  prog.live = isatty(STDERR_FILENO) && !flags.quiet;
  prog.quiet = flags.quiet;
  prog.events = pr.events.is_open() ? &pr.events : nullptr;
  prog.max_parallel = pr.max_parallel;
  caf::actor inbox = self;
  prog.on_report = [inbox](run_report r) {
    caf::anon_send(inbox, std::move(r));
  };
  auto observer = spawn_progress(sys, prog);
  opts.max_parallel = pr.max_parallel;
  opts.workdir = pr.workdir;
  opts.planning_usage = pr.planning_usage;
  opts.repo = pr.repo;
  opts.cancel_key = make_secret();
  std::string run_id;
  std::string failure;
  auto started = [&](std::string& id) { run_id = std::move(id); };
  auto refused = [&](caf::error& err) { failure = sys.render(err); };
  if (pr.resume_id.empty())
    self->request(orch, std::chrono::seconds(30), run_atom_v, pr.p, opts,
                  observer_actor{observer})
      .receive(started, refused);
  else
    self->request(orch, std::chrono::seconds(60), resume_atom_v,
                  pr.resume_id, opts, observer_actor{observer})
      .receive(started, refused);
  if (!failure.empty()) {
    std::cerr << "troupe: the run was refused: " << failure << '\n';
    caf::anon_send_exit(observer, caf::exit_reason::user_shutdown);
    return exit_bad_input;
  }
  // One write: the progress view is printing on another thread.
  if (!flags.quiet && !pr.journal_path.empty())
    std::cerr << "troupe: run " + run_id + " is journaled in "
                   + pr.journal_path + " (`troupe resume " + run_id
                   + "` continues it should this process die)\n";
  run_report report;
  bool got_report = false;
  bool lost = false;
  caf::error lost_reason;
  auto take_report = [&](run_report& r) {
    report = std::move(r);
    got_report = true;
  };
  {
    signal_watch watch{[&](int) {
      std::fputs("\ntroupe: cancelling the run (again to quit now)\n",
                 stderr);
      caf::anon_send(orch, cancel_atom_v, run_id, opts.cancel_key);
    }};
    bool waiting = true;
    self->receive_while([&] { return waiting; })(
      [&](run_report& r) {
        take_report(r);
        waiting = false;
      },
      [&](caf::down_msg& dm) {
        lost_reason = std::move(dm.reason);
        lost = true;
        waiting = false;
      });
  }
  // The progress view hands the report over and then quits. A coordinator
  // that ends right after sending it can be seen going before the report
  // is taken: the report is then in the mailbox already, and the view,
  // gone, cannot be asked for a partial one. Looking costs no waiting.
  auto take_waiting_report = [&] {
    self->receive(take_report, caf::after(std::chrono::seconds(0)) >> [] {});
  };
  if (lost)
    take_waiting_report();
  // The report will not come: make do with what the progress view saw.
  if (lost && !got_report) {
    std::cerr << "troupe: lost the coordinator before the run ended: "
                   + sys.render(lost_reason) + '\n';
    caf::error no_partial;
    self
      ->request(observer, std::chrono::seconds(10), partial_atom_v,
                std::string{"the coordinator was lost before the run ended"})
      .receive(take_report,
               [&](caf::error& err) { no_partial = std::move(err); });
    // The view may have taken the report and quit since we looked.
    if (!got_report)
      take_waiting_report();
    if (!got_report)
      std::cerr << "troupe: no partial report either: "
                     + sys.render(no_partial) + '\n';
  }
  caf::anon_send_exit(observer, caf::exit_reason::user_shutdown);
  if (!got_report)
    return exit_run_failed;
  std::cout << report.markdown << std::flush;
  bool written = write_outputs(pr, flags, report);
  auto settled = settle_changes(report, flags);
  return written && report.status == run_status::succeeded && settled == exit_ok
           ? exit_ok
           : exit_run_failed;
}

} // namespace

namespace {

// Runs `pr` on an orchestrator of this process, journaled in `journal`.
int run_locally(const run_flags& flags, prepared_run& pr,
                std::shared_ptr<journal> journal,
                const std::shared_ptr<executor_registry>& executors) {
  orchestrator_config ocfg;
  ocfg.journal = std::move(journal);
  if (ocfg.journal)
    pr.journal_path = ocfg.journal->path();
  signal_watch::block_signals();
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto orch = spawn_orchestrator(sys, ocfg);
  pool_config pcfg;
  pcfg.info.name = "local";
  pcfg.info.slots = pr.max_parallel;
  for (auto& k : executors->kinds())
    pcfg.info.executors.push_back(k);
  pcfg.executors = executors;
  auto pool = spawn_agent_pool(sys, pcfg);
  int rc = exit_run_failed;
  {
    caf::scoped_actor self{sys};
    std::string failure;
    self
      ->request(orch, std::chrono::seconds(30), join_atom_v,
                join_request{{}, pcfg.info, {}, {}}, pool)
      .receive([](const std::string&) {},
               [&](caf::error& err) { failure = sys.render(err); });
    if (failure.empty())
      rc = follow(sys, orch, pr, flags, {});
    else
      std::cerr << "troupe: cannot start the agent pool: " << failure << '\n';
  }
  // The orchestrator first: a pool going away before it would be a node
  // lost, with a warning.
  stop_orchestrator(sys, orch);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  return rc;
}

} // namespace

int run_command(const run_flags& flags) {
  auto executors = executors_for(configuration());
  auto vopts = plan_loading(*executors);
  prepared_run pr;
  if (auto rc = prepare(flags, vopts, pr))
    return *rc;
  std::shared_ptr<journal> j;
  if (!open_journal(flags.journal, journal::access::shared, j))
    return exit_bad_input;
  return run_locally(flags, pr, std::move(j), executors);
}

int resume_command(const run_flags& flags) {
  auto executors = executors_for(configuration());
  std::shared_ptr<journal> j;
  if (flags.journal.off) {
    std::cerr << "troupe: resume needs the journal the run is in\n";
    return exit_bad_input;
  }
  if (!open_journal(flags.journal, journal::access::shared, j))
    return exit_bad_input;
  prepared_run pr;
  try {
    auto found = j->find_run(flags.run_id);
    if (!found) {
      std::cerr << "troupe: no run " << flags.run_id << " in " << j->path()
                << '\n';
      return exit_bad_input;
    }
    pr.p = j->load_plan(found->id);
    pr.resume_id = found->id;
    pr.max_parallel = flags.max_parallel > 0 ? flags.max_parallel
                                             : found->max_parallel;
    pr.workdir = found->workdir;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_bad_input;
  }
  if (!flags.events_file.empty()) {
    if (auto ec = pr.events.open(flags.events_file)) {
      std::cerr << "--events: cannot write " << pr.events.partial_path()
                << ": " << ec.message() << '\n';
      return exit_bad_input;
    }
  }
  return run_locally(flags, pr, std::move(j), executors);
}

int submit_command(const run_flags& flags) {
  endpoint at;
  if (!read_endpoint(flags.coordinator, "--coordinator", flags.token_file, at)
      || !transport_allowed(at.host, "--coordinator", flags.tls))
    return exit_bad_input;
  // The coordinator checks the plan again against what its nodes offer:
  // work for the Claude Code CLI runs on workers, which have it or not.
  auto vopts = plan_loading(*executors_for(configuration()));
  vopts.executor_kinds.insert("claude-code");
  vopts.unavailable_executors.erase("claude-code");
  prepared_run pr;
  if (auto rc = prepare(flags, vopts, pr))
    return *rc;
  signal_watch::block_signals();
  caf::actor_system_config cfg;
  add_message_types(cfg);
  if (!configure_network(cfg, flags.tls, network_role::client))
    return exit_bad_input;
  caf::actor_system sys{cfg};
  drop_spawn_server(sys);
  orchestrator_actor orch;
  if (!connect_coordinator(sys, at.host, at.port, flags.tls, orch))
    return exit_run_failed;
  run_options opts;
  opts.token = at.token;
  return follow(sys, orch, pr, flags, opts);
}

} // namespace troupe::cli
