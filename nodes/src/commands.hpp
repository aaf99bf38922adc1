#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/result.hpp"
#include "troupe/runtime/journal.hpp"

namespace troupe {
class executor_registry;
struct troupe_config;
} // namespace troupe

namespace troupe::cli {

/// Exit codes: the run succeeded, it finished otherwise, bad input.
constexpr int exit_ok = 0;
constexpr int exit_run_failed = 1;
constexpr int exit_bad_input = 2;

/// Reads the configuration this process runs with (`--config`, else
/// TROUPE_CONFIG, else the default path); false, having said what is
/// wrong, when it cannot be used. Until then, `configuration()` is the
/// environment's alone.
bool load_configuration(const std::string& explicit_path);

const troupe_config& configuration();

/// What loading a plan to run with `executors` takes: its validation, and
/// the configuration's settings under the plan's own.
validation_options plan_loading(const executor_registry& executors);

/// `troupe config show [PLAN]`: the settings a plan runs with, where each
/// came from, and how providers are reached (never a key).
int config_show_command(const std::string& plan_file, bool as_json);

/// Prints diagnostics about `origin` to stderr; returns true if none is an
/// error.
bool report_diagnostics(const std::string& origin, const diagnostics& d);

/// The workstream map by phase, gates, critical path, estimates and
/// complexity, as `troupe plan` prints it.
std::string render_plan(const plan& p, const plan_assessment& a,
                        int32_t max_parallel);

/// Certificates for talking TLS between nodes; all three or none.
struct tls_flags {
  std::string cert;
  std::string key;
  std::string ca;
  /// Talk plaintext to (or listen on) an address other than loopback.
  bool insecure_plaintext = false;

  bool enabled() const {
    return !cert.empty() || !key.empty() || !ca.empty();
  }
};

/// Where runs are journaled: `--journal F`, or `.troupe/troupe.db` under
/// the current directory, or nowhere with `--no-journal`.
struct journal_flags {
  std::string path;
  bool off = false;

  /// The journal's path; empty when off.
  std::string resolve() const;
};

/// Opens the journal `flags` name for writing into `out` (leaving it empty
/// with --no-journal); false, having said why, when it cannot be.
bool open_journal(const journal_flags& flags, journal::access how,
                  std::shared_ptr<journal>& out);

/// Where a plan made on the command line comes from: a goal (`--goal`,
/// `--goal-file`) or tasks (`troupe parallel`), and what its workstreams
/// run on.
struct plan_source {
  std::string goal;
  std::string goal_file;
  /// `heuristic` or `llm`.
  std::string planner = "heuristic";
  std::vector<std::string> tasks;
  /// `--executor` (default claude-code), `--run` for a command executor,
  /// `--model`: a tier for every workstream, or an exact model.
  std::string executor;
  std::string run;
  std::string model;

  /// True when the plan comes from here rather than from a file.
  bool given() const;
};

/// A plan made from a `plan_source`: valid, with the configuration's
/// settings under it.
struct planned_plan {
  plan p;
  /// Its text as a plan file.
  std::string yaml;
  /// What the map shows: the goal's assessment (complexity, reasons,
  /// strategy) over the plan's phases and estimates.
  plan_assessment shown;
  /// What the LLM planner spent, and a line about it.
  std::vector<usage> planning_usage;
  std::string note;
};

/// Makes the plan `src` asks for, validated with `vopts`; returns an exit
/// code when it cannot, having said why.
std::optional<int> make_plan(const plan_source& src,
                             const validation_options& vopts,
                             planned_plan& out);

/// The map of a planned plan, as `troupe plan` prints it.
std::string planned_view(const planned_plan& pp, int32_t max_parallel);

/// `troupe validate PLAN`: checks a plan, runs nothing.
int validate_command(const std::string& file);

/// `troupe plan PLAN`: the workstream map, estimates and complexity (with
/// `json`, the assessment as JSON; with `show_prompts`, each agent's
/// prompts), nothing run.
int plan_command(const std::string& file, int32_t max_parallel, bool json,
                 bool show_prompts);

/// `troupe plan --goal`: prints (or with `output` writes) the plan a goal
/// becomes, with its assessment.
int plan_goal_command(const plan_source& src, const std::string& output,
                      bool json);

struct run_flags {
  std::string plan_file;
  /// Instead of `plan_file`: a goal or tasks.
  plan_source source;
  int32_t max_parallel = 0;
  /// `--max-cost`: the run's budget in US dollars over the plan's; 0 for
  /// none, negative when not given.
  double max_cost = -1;
  std::string report_file;
  std::string events_file;
  std::string workdir;
  bool yes = false;
  bool quiet = false;
  /// For `run` and `resume`.
  journal_flags journal;
  /// For `resume`: the run to resume.
  std::string run_id;
  /// For `submit`: where the coordinator listens, and how to talk to it.
  std::string coordinator;
  std::string token_file;
  tls_flags tls;
  /// The git repository the run works on, the commit it starts from and
  /// the branch its commits land on.
  std::string repo;
  std::string base;
  std::string branch;
};

/// Checks `--repo`, `--base` and `--branch` (else the plan's `repo`) and
/// fills `out` from them; false, having said what is wrong, when they
/// cannot be used.
bool prepare_repository(const run_flags& flags, const repo_spec& planned,
                        repo_options& out);

/// After a run on a repository: says what became of its changes, and when
/// they await approval, asks on the terminal (if there is one); returns the
/// exit code.
int settle_changes(const run_report& report, const run_flags& flags);

/// `troupe approve RUN` and `troupe reject RUN`.
struct approve_flags {
  std::string run_id;
  std::string repo;
  bool approve = true;
};

int approve_command(const approve_flags& flags);

/// `troupe run`: runs a plan on this machine; returns the exit code.
int run_command(const run_flags& flags);

/// `troupe resume`: continues an interrupted run of the journal on this
/// machine.
int resume_command(const run_flags& flags);

/// `troupe submit`: runs a plan on a coordinator and follows it.
int submit_command(const run_flags& flags);

struct coordinator_flags {
  std::string listen = "127.0.0.1:0";
  journal_flags journal;
  int32_t slots = 0;
  std::string token_file;
  std::string name = "coordinator";
  tls_flags tls;
};

/// `troupe coordinator`: serves until SIGTERM, SIGINT or SIGHUP.
int coordinator_command(const coordinator_flags& flags);

struct worker_flags {
  std::string join;
  int32_t slots = 1;
  std::vector<std::string> personas;
  std::vector<std::string> executors;
  std::vector<std::string> models;
  std::string name;
  std::string token_file;
  std::string workdir;
  /// For runs on a git repository: the worker's worktrees and its cache of
  /// the repositories.
  std::string workspaces;
  int32_t protocol_version = 0;
  tls_flags tls;
};

/// `troupe worker`: lends agent slots to a coordinator until drained.
int worker_command(const worker_flags& flags);

struct nodes_flags {
  std::string coordinator;
  std::string token_file;
  bool json = false;
  tls_flags tls;
};

/// `troupe nodes`: lists a coordinator's nodes.
int nodes_command(const nodes_flags& flags);

/// Flags of the commands on journaled runs: against the journal here, or
/// a coordinator's runs with `coordinator` set.
struct runs_flags {
  journal_flags journal;
  std::string run_id;
  std::string workstream;
  bool json = false;
  bool follow = false;
  std::string coordinator;
  std::string token_file;
  tls_flags tls;
};

/// `troupe runs --coordinator` and `troupe report RUN --coordinator`.
int remote_runs(const runs_flags& flags);
int remote_report(const runs_flags& flags);

/// `troupe status [RUN]`: a run's state (every run's without RUN), live
/// with --follow.
int status_command(const runs_flags& flags);

/// `troupe abort RUN`: cancels a run, wherever it runs.
int abort_command(const runs_flags& flags);

/// `troupe logs RUN [WS]`: the output of a run's workstreams.
int logs_command(const runs_flags& flags);

/// `troupe runs`: lists the journal's runs.
int runs_command(const runs_flags& flags);

/// `troupe report RUN`: prints a finished run's report again.
int report_command(const runs_flags& flags);

} // namespace troupe::cli
