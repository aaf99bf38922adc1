#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/fwd.hpp>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"

struct sqlite3;

namespace troupe {

/// Why the journal cannot be used: names the file and the cause (corrupt,
/// locked by another process, written by a newer Troupe, a full disk).
class journal_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A run as the journal holds it.
struct journaled_run {
  std::string id;
  std::string plan_name;
  /// `running` until its report is in, then how it ended.
  std::string status;
  /// Seconds since the Unix epoch; `finished_at` is 0 while it runs.
  double started_at = 0;
  double finished_at = 0;
  /// The plan's workstreams, and how many of them have ended.
  int64_t workstreams = 0;
  int64_t ended = 0;
  int32_t max_parallel = 0;
  std::string workdir;
  /// The last event's sequence number.
  uint64_t last_seq = 0;
};

/// The durable record of runs: each run's plan, every event (results
/// included) and its report, in SQLite (WAL mode).
///
/// Any number of processes may read a journal. Writers hold `PATH.lock`:
/// shared, so that several `troupe run` can journal side by side, or
/// exclusive for a coordinator, which owns every run in it. A writer also
/// holds a lock per run it runs (`runs/ID.lock` beside the journal), so no
/// two processes ever run one run.
///
/// Every method throws `journal_error` when SQLite fails. Methods may be
/// called from any thread, one at a time (they take a lock).
class journal {
public:
  /// The newest schema this build reads and writes.
  static constexpr int schema_version = 2;

  enum class access { shared, exclusive };

  /// Opens `path` for writing, creating it (and its directory) if need be
  /// and bringing an older schema up to date. Refuses a journal that a
  /// coordinator holds (or, for `exclusive`, any other writer), one that
  /// is not a Troupe journal or is corrupt, and one from a newer Troupe.
  static std::unique_ptr<journal> open(const std::string& path,
                                       access how = access::shared);

  /// Opens an existing journal for reading only; it may be written at the
  /// same time by its owner.
  static std::unique_ptr<journal> open_read_only(const std::string& path);

  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  const std::string& path() const {
    return path_;
  }

  // -- writing ------------------------------------------------------------

  /// Takes the lock of run `run_id`, or says which process holds it.
  void claim_run(const std::string& run_id);

  /// What records a new run: its row, and its plan (read, never changed,
  /// while it is recorded).
  struct new_run {
    std::string run_id;
    std::shared_ptr<const plan> p;
    int32_t max_parallel = 1;
    std::string workdir;
    double started_at = 0;
  };

  /// Records a new run (before any of its work is dispatched); the caller
  /// has claimed it.
  void begin_run(const new_run& run);

  /// Claims and records a new run of `p`.
  void begin_run(const std::string& run_id, const plan& p,
                 int32_t max_parallel, const std::string& workdir,
                 double started_at) {
    claim_run(run_id);
    begin_run(new_run{run_id, std::make_shared<const plan>(p), max_parallel,
                      workdir, started_at});
  }

  /// Appends the `n` events from `first` of run `run_id`, all or none, and
  /// records that `ended` of its plan's workstreams have ended.
  ///
  /// For crash tests, TROUPE_JOURNAL_KILL_AFTER=KIND[:SUBJECT] (an event
  /// kind, and a workstream, gate or node) kills the process with SIGKILL
  /// right after a matching event is journaled.
  void append(const std::string& run_id, const event* first, size_t n,
              int64_t ended);

  void append(const std::string& run_id, const std::vector<event>& events,
              int64_t ended) {
    append(run_id, events.data(), events.size(), ended);
  }

  /// One run's events, as `append` takes them (the caller keeps them).
  struct batch {
    std::string run_id;
    const event* first = nullptr;
    size_t n = 0;
    int64_t ended = 0;
  };

  /// Records `new_runs`, then appends batches of events of several runs,
  /// in one transaction, all or none.
  void append(const std::vector<batch>& batches,
              const std::vector<const new_run*>& new_runs = {});

  /// Records the run's report: the run is finished, and its lock let go.
  void finish_run(const run_report& report, double finished_at);

  friend class journal_writer;

  // -- reading ------------------------------------------------------------

  /// Every run, the latest started first.
  std::vector<journaled_run> runs();

  /// The run with id `run_id`, or a unique one whose id starts with it.
  std::optional<journaled_run> find_run(const std::string& run_id);

  /// The run's plan, as it was submitted.
  plan load_plan(const std::string& run_id);

  /// The run's events after `after_seq`, in order.
  std::vector<event> events(const std::string& run_id,
                            uint64_t after_seq = 0);

  /// The events of `run_id` about `subject` that carry a result
  /// (ws_retrying, ws_ended), in order.
  std::vector<event> results(const std::string& run_id,
                             const std::string& subject);

  /// The report of a finished run.
  std::optional<run_report> report(const std::string& run_id);

  /// The process that runs `run_id` now, if one does.
  std::optional<int> run_owner(const std::string& run_id);

  /// The coordinator that holds this journal to itself, if one does.
  std::optional<int> coordinator();

private:
  journal(std::string path, sqlite3* db, int lock_fd);

  struct statements;

  // The integer key of run `run_id`, which its events carry.
  int64_t key_of(const std::string& run_id);
  /// A stretch of a run's events, in order.
  using event_span = std::pair<const event*, size_t>;

  // Records a new run inside a transaction that the caller holds.
  void insert_run(const new_run& r);
  // Appends one run's events inside a transaction that the caller holds.
  void insert(const std::string& run_id, const std::vector<event_span>& spans,
              int64_t ended);
  void finish_run_locked(const run_report& report, double finished_at);

  std::recursive_mutex mtx_;
  std::string path_;
  sqlite3* db_;
  int lock_fd_;
  /// Runs' keys, by id.
  std::map<std::string, int64_t> keys_;
  /// Locks of the runs this process runs, by id.
  std::map<std::string, int> run_locks_;
  std::unique_ptr<statements> st_;
  /// The text of the batch being appended (kept to reuse its memory).
  std::string body_;
  /// Fault injection for crash tests: `KIND` or `KIND:SUBJECT` from
  /// TROUPE_JOURNAL_KILL_AFTER; the process kills itself (SIGKILL) right
  /// after journaling a matching event.
  std::string kill_after_;
};

/// Writes to a journal on a thread of its own, committing whatever callers
/// queued meanwhile in one transaction (group commit): a caller never waits
/// for the disk, and learns through `on_commit` when what it queued is in.
class journal_writer {
public:
  /// Called on the writer's thread after each transaction with the last
  /// ticket it holds and, if it failed, why (what it held is then lost).
  using commit_fn = std::function<void(uint64_t ticket, std::string error)>;

  journal_writer(std::shared_ptr<journal> j, commit_fn on_commit);

  /// Commits what is queued, then stops.
  ~journal_writer();

  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  /// Queues a new run's record (see `journal::begin_run`): it goes in
  /// before any event queued after it.
  uint64_t begin_run(journal::new_run run);

  /// Queues events of run `run_id` (see `journal::append`): `events`
  /// holds a `std::vector<event>`, shared, not copied, with whoever else
  /// (observers) gets the same message. Returns the ticket `on_commit`
  /// names once they, and all queued before, are in.
  uint64_t append(const std::string& run_id, caf::message events,
                  int64_t ended);

  /// Queues a finished run's report (see `journal::finish_run`): `report`
  /// holds a `run_report`, shared as `events` is.
  uint64_t finish_run(caf::message report, double finished_at);

  /// Waits until everything queued so far is committed (or failed).
  void sync();

private:
  struct item;
  /// Queues `x` under the next ticket, which it returns.
  uint64_t queue(item x);
  void loop();

  std::shared_ptr<journal> journal_;
  commit_fn on_commit_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<item> queue_;
  uint64_t next_ticket_ = 0;
  uint64_t committed_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

/// Where a journal goes unless told: `.troupe/troupe.db` under `dir`.
std::string default_journal_path(const std::string& dir);

} // namespace troupe
