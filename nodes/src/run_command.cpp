#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "troupe/actors/agents.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/log.hpp"

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

/// Turns SIGINT and SIGTERM into a cancel of the run; a second one ends the
/// process at once. Signals are blocked in every thread and taken here.
class signal_watch {
public:
  explicit signal_watch(std::function<void()> on_first) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    thread_ = std::thread([set, on_first = std::move(on_first)] {
      int count = 0;
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
          continue;
        if (sig == SIGUSR1)
          return;
        if (++count == 1) {
          std::fputs("\ntroupe: cancelling the run (again to quit now)\n",
                     stderr);
          on_first();
        } else {
          std::fputs("\ntroupe: quitting\n", stderr);
          std::_Exit(130);
        }
      }
    });
  }

  ~signal_watch() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

  /// Blocks the signals in the calling thread and every thread it starts.
  static void block_in_this_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

private:
  std::thread thread_;
};

} // namespace

int run_command(const run_flags& flags) {
  auto executors = executor_registry::with_builtins();
  validation_options vopts;
  vopts.executor_kinds = executors->kinds();
  diagnostics diags;
  auto p = load_plan_file(flags.plan_file, vopts, diags);
  if (!report_diagnostics(flags.plan_file, diags))
    return exit_bad_input;
  if (flags.max_parallel < 0) {
    std::cerr << "--max-parallel: must be at least 1\n";
    return exit_bad_input;
  }
  auto max_parallel = flags.max_parallel > 0 ? flags.max_parallel
                                             : p.settings.max_parallel_agents;
  if (p.settings.confirm_before_execute && !flags.yes) {
    if (!isatty(STDIN_FILENO)) {
      std::cerr << flags.plan_file
                << ": the plan asks for confirmation (settings."
                   "confirm_before_execute) and there is no terminal to ask "
                   "on; pass --yes to run it\n";
      return exit_bad_input;
    }
    auto shown = p;
    shown.settings.max_parallel_agents = max_parallel;
    if (!confirm(p, render_plan(shown, assess(shown), max_parallel))) {
      std::cerr << "troupe: not confirmed, nothing was run\n";
      return exit_run_failed;
    }
  }
  std::FILE* events = nullptr;
  if (!flags.events_file.empty()) {
    events = std::fopen(flags.events_file.c_str(), "w");
    if (events == nullptr) {
      std::cerr << "--events: cannot write " << flags.events_file << ": "
                << std::strerror(errno) << '\n';
      return exit_bad_input;
    }
  }
  std::string workdir = flags.workdir;
  if (workdir.empty()) {
    char buf[4096];
    workdir = getcwd(buf, sizeof(buf)) ? buf : ".";
  }
  signal_watch::block_in_this_thread();
  run_report report;
  bool got_report = false;
  {
    caf::actor_system_config cfg;
    add_message_types(cfg);
    caf::actor_system sys{cfg};
    auto orch = spawn_orchestrator(sys, {executors});
    pool_config pcfg;
    pcfg.info.name = "local";
    pcfg.info.slots = max_parallel;
    pcfg.info.protocol_version = protocol_version;
    for (auto& k : executors->kinds())
      pcfg.info.executors.push_back(k);
    pcfg.executors = executors;
    auto pool = spawn_agent_pool(sys, pcfg);
    std::promise<run_report> done;
    auto finished = done.get_future();
    progress_config prog;
    prog.p = &p;
    prog.live = isatty(STDERR_FILENO) && !flags.quiet;
    prog.quiet = flags.quiet;
    prog.events = events;
    prog.max_parallel = max_parallel;
    prog.on_report = [&done](run_report r) { done.set_value(std::move(r)); };
    auto observer = spawn_progress(sys, prog);
    caf::scoped_actor self{sys};
    std::string run_id;
    std::string failure;
    self->request(orch, std::chrono::seconds(30), join_atom_v,
                  join_request{{}, pcfg.info}, pool)
      .receive([](const std::string&) {},
               [&](caf::error& err) { failure = sys.render(err); });
    run_options opts;
    opts.max_parallel = max_parallel;
    opts.workdir = workdir;
    if (failure.empty())
      self->request(orch, std::chrono::seconds(30), run_atom_v, p, opts,
                    observer)
        .receive([&](std::string& id) { run_id = std::move(id); },
                 [&](caf::error& err) { failure = sys.render(err); });
    if (failure.empty()) {
      signal_watch watch{[&] { caf::anon_send(orch, cancel_atom_v, run_id); }};
      report = finished.get();
      got_report = true;
    } else {
      std::cerr << "troupe: cannot start the run: " << failure << '\n';
    }
    caf::anon_send_exit(observer, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(orch, caf::exit_reason::user_shutdown);
  }
  if (events)
    std::fclose(events);
  if (!got_report)
    return exit_bad_input;
  std::cout << report.markdown << std::flush;
  if (!flags.report_file.empty()) {
    std::ofstream out{flags.report_file};
    out << nlohmann::json(report).dump(2) << '\n';
    if (!out) {
      std::cerr << "--report: cannot write " << flags.report_file << '\n';
      return exit_run_failed;
    }
  }
  return report.status == run_status::succeeded ? exit_ok : exit_run_failed;
}

} // namespace troupe::cli
