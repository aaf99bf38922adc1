// Commands that look at runs, or stop one, wherever they run: status,
// abort and logs, against the journal here or a coordinator.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "signals.hpp"
#include "troupe/actors/run_tracker.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/journal.hpp"

namespace troupe::cli {

namespace {

double unix_seconds() {
  return std::chrono::duration<double>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// How often a follower looks for new events in a journal another process
// writes.
constexpr auto journal_poll = std::chrono::milliseconds(200);

void print_snapshot(const run_snapshot& s, bool json) {
  if (json) {
    std::cout << json_text(s, 2) << '\n';
    return;
  }
  std::printf("run %s (plan %s): %s, %lld of %lld workstreams ended, %.1f s\n",
              s.run_id.c_str(), terminal_text(s.plan).c_str(),
              s.status.c_str(), static_cast<long long>(s.ended),
              static_cast<long long>(s.total), s.t_s);
  if (!s.rerun.empty()) {
    std::string list;
    for (auto& id : s.rerun)
      list += (list.empty() ? "" : ", ") + id;
    std::printf("resumed; ran again: %s\n", terminal_text(list).c_str());
  }
  std::printf("\n%-24s %-10s %8s  %-16s %s\n", "WORKSTREAM", "STATUS",
              "ATTEMPTS", "NODE", "SUMMARY");
  for (auto& w : s.workstreams)
    std::printf("%-24s %-10s %8d  %-16s %s\n", terminal_text(w.id).c_str(),
                to_string(w.status).c_str(), w.attempts,
                terminal_text(w.node).c_str(),
                terminal_text(utf8_head(w.summary, 200)).c_str());
  if (s.gates.empty())
    return;
  std::printf("\n%-24s %-12s %8s\n", "GATE", "STATUS", "ATTEMPTS");
  for (auto& g : s.gates)
    std::printf("%-24s %-12s %8d\n", terminal_text(g.id).c_str(),
                to_string(g.status).c_str(), g.attempts);
}

// A finished run's state, from its report.
run_snapshot from_report(const run_report& r, const journaled_run& row) {
  run_snapshot s;
  s.run_id = r.run_id;
  s.plan = r.plan;
  s.goal = r.goal;
  s.status = to_string(r.status);
  s.started_at = row.started_at;
  s.t_s = r.wall_s;
  s.seq = row.last_seq;
  s.total = row.workstreams;
  s.ended = row.ended;
  s.workstreams = r.workstreams;
  s.gates = r.gates;
  s.rerun = r.rerun;
  return s;
}

// -- against the journal here -------------------------------------------------

std::unique_ptr<journal> read_journal(const runs_flags& flags) {
  auto path = flags.journal.path.empty() ? default_journal_path(".")
                                         : flags.journal.path;
  try {
    return journal::open_read_only(path);
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return nullptr;
  }
}

// The run `flags` names in `j`, or nothing, having said so.
std::optional<journaled_run> named_run(journal& j, const runs_flags& flags) {
  auto r = j.find_run(flags.run_id);
  if (!r)
    std::cerr << "troupe: no run " << flags.run_id << " in " << j.path()
              << '\n';
  return r;
}

// The state of a journaled run; `events` gets the events it folded.
run_snapshot journaled_state(journal& j, const journaled_run& row,
                             const plan& p) {
  if (auto report = j.report(row.id))
    return from_report(*report, row);
  run_tracker tracker{p};
  for (auto& ev : j.events(row.id))
    tracker.add(ev);
  auto owner = j.run_owner(row.id);
  auto s = tracker.snapshot(owner ? "running" : "interrupted",
                            unix_seconds() - row.started_at);
  s.run_id = row.id;
  s.started_at = row.started_at;
  return s;
}

// Prints a run's report (as JSON with `json`); returns the exit code it
// calls for.
int print_report(const run_report& rep, bool json) {
  if (json)
    std::cout << json_text(rep, 2) << '\n';
  else
    std::cout << rep.markdown << std::flush;
  return rep.status == run_status::succeeded ? exit_ok : exit_run_failed;
}

// Prints the report that ends a followed run: after the events, as one
// more JSON line with `json`.
int print_followed(const run_report& rep, bool json) {
  if (!json)
    return print_report(rep, false);
  std::cout << json_text(rep) << std::endl;
  return rep.status == run_status::succeeded ? exit_ok : exit_run_failed;
}

int local_status(const runs_flags& flags) {
  auto j = read_journal(flags);
  if (!j)
    return exit_bad_input;
  if (flags.run_id.empty())
    return runs_command(flags);
  auto row = named_run(*j, flags);
  if (!row)
    return exit_bad_input;
  auto p = j->load_plan(row->id);
  if (!flags.follow) {
    print_snapshot(journaled_state(*j, *row, p), flags.json);
    return exit_ok;
  }
  // Follows the events another process journals, until the report is in.
  uint64_t seen = 0;
  for (;;) {
    for (auto& ev : j->events(row->id, seen)) {
      seen = ev.seq;
      if (flags.json)
        std::cout << json_text(ev) << '\n';
      else
        std::cout << event_line(ev);
    }
    std::cout << std::flush;
    if (auto report = j->report(row->id)) {
      if (!flags.json)
        std::cout << '\n';
      return print_followed(*report, flags.json);
    }
    if (!j->run_owner(row->id)) {
      std::cerr << "troupe: run " << row->id
                << " is interrupted: no process runs it (`troupe resume "
                << row->id << "` continues it)\n";
      return exit_run_failed;
    }
    std::this_thread::sleep_for(journal_poll);
  }
}

// -- against a coordinator ----------------------------------------------------

// A connection to the coordinator `flags` name.
struct remote {
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  orchestrator_actor orch;
  std::string token;
};

bool connect(const runs_flags& flags, remote& out) {
  endpoint at;
  if (!read_endpoint(flags.coordinator, "--coordinator", flags.token_file, at)
      || !transport_allowed(at.host, "--coordinator", flags.tls))
    return false;
  // Before any thread starts: a follower takes Ctrl-C on a thread of its
  // own.
  signal_watch::block_signals();
  out.cfg = std::make_unique<caf::actor_system_config>();
  add_message_types(*out.cfg);
  if (!configure_network(*out.cfg, flags.tls, network_role::client))
    return false;
  out.sys = std::make_unique<caf::actor_system>(*out.cfg);
  drop_spawn_server(*out.sys);
  out.token = at.token;
  return connect_coordinator(*out.sys, at.host, at.port, flags.tls, out.orch);
}

int remote_follow(remote& r, const runs_flags& flags) {
  auto& sys = *r.sys;
  caf::scoped_actor self{sys};
  self->monitor(r.orch);
  progress_config prog;
  if (flags.json) {
    // JSON lines: every event, then the report.
    prog.quiet = true;
    prog.on_event = [](const event& ev) {
      std::cout << json_text(ev) << '\n';
    };
  }
  caf::actor inbox = self;
  prog.on_report = [inbox](run_report rep) {
    caf::anon_send(inbox, std::move(rep));
  };
  auto view = spawn_progress(sys, prog);
  int rc = exit_run_failed;
  std::string failure;
  self
    ->request(r.orch, std::chrono::seconds(30), subscribe_atom_v,
              flags.run_id, r.token, observer_actor{view})
    .receive([](const std::string&) {},
             [&](caf::error& err) { failure = sys.render(err); });
  if (!failure.empty()) {
    caf::anon_send_exit(view, caf::exit_reason::user_shutdown);
    // A run that has finished is followed to its end at once: its report.
    std::optional<run_report> rep;
    self
      ->request(r.orch, std::chrono::seconds(30), report_atom_v, flags.run_id,
                r.token)
      .receive([&](run_report& x) { rep = std::move(x); },
               [](caf::error&) {});
    if (!rep) {
      std::cerr << "troupe: " << failure << '\n';
      return exit_bad_input;
    }
    return print_followed(*rep, flags.json);
  }
  std::atomic<bool> waiting{true};
  signal_watch watch{[&](int) { waiting = false; }};
  self->receive_while([&] { return waiting.load(); })(
    [&](run_report& rep) {
      rc = print_followed(rep, flags.json);
      waiting = false;
    },
    [&](caf::down_msg&) {
      std::cerr << "troupe: lost the coordinator\n";
      waiting = false;
    },
    caf::after(std::chrono::milliseconds(500)) >> [] {});
  caf::anon_send_exit(view, caf::exit_reason::user_shutdown);
  return rc;
}

// Asks the coordinator for the state of the run `flags` names; false,
// having said why, when it cannot tell.
bool remote_snapshot(remote& r, const runs_flags& flags, run_snapshot& out) {
  caf::scoped_actor self{*r.sys};
  bool ok = true;
  self
    ->request(r.orch, std::chrono::seconds(30), status_atom_v, flags.run_id,
              r.token)
    .receive([&](run_snapshot& s) { out = std::move(s); },
             [&](caf::error& err) {
               std::cerr << "troupe: " << r.sys->render(err) << '\n';
               ok = false;
             });
  return ok;
}

// Lists the coordinator's runs.
int list_remote(remote& r, const runs_flags& flags) {
  caf::scoped_actor self{*r.sys};
  int rc = exit_ok;
  auto fail = [&](caf::error& err) {
    std::cerr << "troupe: " << r.sys->render(err) << '\n';
    rc = exit_run_failed;
  };
  self->request(r.orch, std::chrono::seconds(30), status_atom_v, r.token)
      .receive(
        [&](std::vector<run_snapshot>& runs) {
          if (flags.json) {
            std::cout << json_text(runs, 2) << '\n';
            return;
          }
          std::printf("%-36s %-11s %9s  %s\n", "RUN", "STATUS", "PROGRESS",
                      "PLAN");
          for (auto& s : runs)
            std::printf("%-36s %-11s %9s  %s\n", s.run_id.c_str(),
                        s.status.c_str(),
                        (std::to_string(s.ended) + "/"
                         + std::to_string(s.total))
                          .c_str(),
                        terminal_text(s.plan).c_str());
        },
        fail);
  return rc;
}

int remote_status(const runs_flags& flags) {
  remote r;
  if (!connect(flags, r))
    return exit_run_failed;
  if (flags.run_id.empty())
    return list_remote(r, flags);
  if (flags.follow)
    return remote_follow(r, flags);
  run_snapshot s;
  if (!remote_snapshot(r, flags, s))
    return exit_run_failed;
  print_snapshot(s, flags.json);
  return exit_ok;
}

} // namespace

int remote_runs(const runs_flags& flags) {
  remote r;
  if (!connect(flags, r))
    return exit_run_failed;
  return list_remote(r, flags);
}

int remote_report(const runs_flags& flags) {
  remote r;
  if (!connect(flags, r))
    return exit_run_failed;
  caf::scoped_actor self{*r.sys};
  int rc = exit_run_failed;
  self
    ->request(r.orch, std::chrono::seconds(30), report_atom_v, flags.run_id,
              r.token)
    .receive(
      [&](run_report& rep) { rc = print_report(rep, flags.json); },
      [&](caf::error& err) {
        std::cerr << "troupe: " << r.sys->render(err) << '\n';
      });
  return rc;
}

int status_command(const runs_flags& flags) {
  try {
    return flags.coordinator.empty() ? local_status(flags)
                                     : remote_status(flags);
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_run_failed;
  }
}

int abort_command(const runs_flags& flags) {
  if (!flags.coordinator.empty()) {
    remote r;
    if (!connect(flags, r))
      return exit_run_failed;
    caf::scoped_actor self{*r.sys};
    int rc = exit_ok;
    self
      ->request(r.orch, std::chrono::seconds(30), abort_atom_v, flags.run_id,
                r.token)
      .receive(
        [&](const std::string& id) {
          std::cerr << "troupe: run " << id << " is being cancelled\n";
        },
        [&](caf::error& err) {
          std::cerr << "troupe: " << r.sys->render(err) << '\n';
          rc = exit_run_failed;
        });
    return rc;
  }
  try {
    auto j = read_journal(flags);
    if (!j)
      return exit_bad_input;
    auto row = named_run(*j, flags);
    if (!row)
      return exit_bad_input;
    // Signalling a coordinator would stop it, and every run on it.
    if (auto c = j->coordinator()) {
      std::cerr << "troupe: journal " << j->path()
                << " belongs to a coordinator (pid " << *c
                << "); abort the run through it: troupe abort " << row->id
                << " --coordinator HOST:PORT\n";
      return exit_bad_input;
    }
    if (row->status != "running") {
      std::cerr << "troupe: run " << row->id << " finished (" << row->status
                << ")\n";
      return exit_run_failed;
    }
    auto owner = j->run_owner(row->id);
    if (!owner) {
      std::cerr << "troupe: run " << row->id
                << " is interrupted: no process runs it\n";
      return exit_run_failed;
    }
    // The process that runs it cancels it cleanly on SIGTERM, as on Ctrl-C.
    if (::kill(*owner, SIGTERM) != 0) {
      std::cerr << "troupe: cannot signal process " << *owner
                << " that runs " << row->id << ": " << std::strerror(errno)
                << '\n';
      return exit_run_failed;
    }
    std::cerr << "troupe: asked process " << *owner << " to cancel run "
              << row->id << '\n';
    return exit_ok;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_run_failed;
  }
}

int logs_command(const runs_flags& flags) {
  auto print = [&](const workstream_result& r, const std::string& what) {
    std::cout << "== " << r.id << " " << what << ": " << to_string(r.status)
              << " (exit " << r.exit_code << ")\n"
              << r.output << (r.output.empty() || r.output.back() == '\n'
                                ? ""
                                : "\n");
  };
  auto wanted = [&](const std::string& id) {
    return flags.workstream.empty() || id == flags.workstream;
  };
  bool any = false;
  if (!flags.coordinator.empty()) {
    remote r;
    if (!connect(flags, r))
      return exit_run_failed;
    run_snapshot s;
    if (!remote_snapshot(r, flags, s))
      return exit_run_failed;
    for (auto& w : s.workstreams)
      if (wanted(w.id) && is_terminal(w.status)) {
        print(w, "attempt " + std::to_string(w.attempts));
        any = true;
      }
    if (!any && !flags.workstream.empty()) {
      std::cerr << "troupe: workstream " << flags.workstream
                << " has no output yet\n";
      return exit_run_failed;
    }
    return exit_ok;
  }
  try {
    auto j = read_journal(flags);
    if (!j)
      return exit_bad_input;
    auto row = named_run(*j, flags);
    if (!row)
      return exit_bad_input;
    for (auto& ev : j->events(row->id)) {
      if (!carries_result(ev.kind) || !wanted(ev.subject))
        continue;
      // An end that no attempt made (blocked, cancelled unrun) has none.
      if (ev.kind == event_kind::ws_ended && ev.result.exit_code < 0
          && ev.result.output.empty())
        continue;
      print(ev.result, "attempt " + std::to_string(ev.attempt));
      any = true;
    }
    if (!any && !flags.workstream.empty()) {
      std::cerr << "troupe: workstream " << flags.workstream << " of run "
                << row->id << " has no output yet\n";
      return exit_run_failed;
    }
    return exit_ok;
  } catch (const journal_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_run_failed;
  }
}

} // namespace troupe::cli
