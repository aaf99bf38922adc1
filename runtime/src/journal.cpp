// The journal: runs, their events and reports in SQLite; opening it and
// writing (reading is in journal_read.cpp).

#include "troupe/runtime/journal.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

#include "journal_locks.hpp"
#include "sqlite.hpp"

namespace troupe {

using locks::run_lock_path;
using locks::take_lock;
using sqlite::exec;
using sqlite::fail;
using sqlite::in_transaction;
using sqlite::reset_on_exit;
using sqlite::statement;

namespace {

// Schema changes, in order: entry N brings a journal from version N to
// N + 1. A journal's version is its `PRAGMA user_version`.
constexpr const char* migrations[] = {
  R"(CREATE TABLE runs(
       key INTEGER PRIMARY KEY,
       id TEXT NOT NULL UNIQUE,
       plan_name TEXT NOT NULL,
       max_parallel INTEGER NOT NULL,
       workdir TEXT NOT NULL,
       started_at REAL NOT NULL,
       status TEXT NOT NULL,
       finished_at REAL NOT NULL DEFAULT 0,
       workstreams INTEGER NOT NULL,
       ended INTEGER NOT NULL DEFAULT 0,
       last_seq INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE plans(
       run INTEGER PRIMARY KEY REFERENCES runs(key),
       body TEXT NOT NULL);
     CREATE TABLE reports(
       run INTEGER PRIMARY KEY REFERENCES runs(key),
       body TEXT NOT NULL);
     CREATE TABLE events(
       run INTEGER NOT NULL REFERENCES runs(key),
       seq INTEGER NOT NULL,
       kind TEXT NOT NULL,
       subject TEXT NOT NULL,
       body TEXT NOT NULL);
     CREATE UNIQUE INDEX events_in_order ON events(run, seq);)",
  // Events in batches: a row per run per commit, its events as JSON lines.
  // A row per event cost more than the events themselves.
  R"(CREATE TABLE event_batches(
       run INTEGER NOT NULL REFERENCES runs(key),
       first_seq INTEGER NOT NULL,
       last_seq INTEGER NOT NULL,
       body TEXT NOT NULL);
     INSERT INTO event_batches(run, first_seq, last_seq, body)
       SELECT run, seq, seq, body || char(10) FROM events;
     DROP TABLE events;
     CREATE UNIQUE INDEX event_batches_in_order
       ON event_batches(run, first_seq);)",
};
static_assert(std::size(migrations) == journal::schema_version);

// Events past this many bytes of JSON go in a row of their own.
constexpr size_t batch_bytes = 4 << 20;

// How long a statement waits for a checkpoint or a reader's lock.
constexpr int busy_timeout_ms = 5000;

int user_version(sqlite3* db, const std::string& path) {
  statement s{db, path, "PRAGMA user_version"};
  s.step("reading the schema version");
  auto v = static_cast<int>(s.integer(0));
  s.reset();
  return v;
}

sqlite3* open_db(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  auto rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                            nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    throw journal_error("cannot open journal " + path + ": " + why);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return db;
}

void refuse_newer(int version, const std::string& path) {
  if (version > journal::schema_version)
    throw journal_error("journal " + path + " was written by a newer Troupe "
                        "(schema " + std::to_string(version)
                        + "; this one knows up to "
                        + std::to_string(journal::schema_version) + ")");
}

// Brings the schema of a journal opened for writing up to date. Two
// processes may create the same journal at once: the version read before
// the write lock only says whether to take it, the one read under it says
// what is left to do.
void migrate(sqlite3* db, const std::string& path) {
  auto version = user_version(db, path);
  refuse_newer(version, path);
  if (version == journal::schema_version)
    return;
  exec(db, path, "BEGIN IMMEDIATE", "upgrading the schema");
  try {
    version = user_version(db, path);
    refuse_newer(version, path);
    for (auto v = version; v < journal::schema_version; ++v)
      exec(db, path, migrations[v], "upgrading the schema");
    auto set = "PRAGMA user_version = "
               + std::to_string(journal::schema_version);
    exec(db, path, set.c_str(), "upgrading the schema");
    exec(db, path, "COMMIT", "upgrading the schema");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

} // namespace

struct journal::statements {
  statements(sqlite3* db, const std::string& path)
    : begin(db, path, "BEGIN IMMEDIATE"),
      commit(db, path, "COMMIT"),
      rollback(db, path, "ROLLBACK"),
      insert_run(db, path,
                 "INSERT INTO runs(id, plan_name, max_parallel, workdir, "
                 "started_at, status, workstreams) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, 'running', ?6)"),
      insert_plan(db, path, "INSERT INTO plans(run, body) VALUES(?1, ?2)"),
      insert_report(db, path,
                    "INSERT OR REPLACE INTO reports(run, body) "
                    "VALUES(?1, ?2)"),
      insert_batch(db, path,
                   "INSERT INTO event_batches(run, first_seq, last_seq, body) "
                   "VALUES(?1, ?2, ?3, ?4)"),
      run_key(db, path, "SELECT key FROM runs WHERE id = ?1"),
      update_progress(db, path,
                      "UPDATE runs SET ended = ?2, last_seq = ?3 "
                      "WHERE id = ?1"),
      finish(db, path,
             "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1") {
  }

  statement begin;
  statement commit;
  statement rollback;
  statement insert_run;
  statement insert_plan;
  statement insert_report;
  statement insert_batch;
  statement run_key;
  statement update_progress;
  statement finish;
};

journal::journal(std::string path, sqlite3* db, int lock_fd)
  : path_(std::move(path)), db_(db), lock_fd_(lock_fd) {
  if (auto k = std::getenv("TROUPE_JOURNAL_KILL_AFTER"))
    kill_after_ = k;
}

journal::~journal() {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  st_.reset();
  sqlite3_close_v2(db_);
  for (auto& [id, fd] : run_locks_)
    ::close(fd);
  if (lock_fd_ >= 0)
    ::close(lock_fd_);
}

std::unique_ptr<journal> journal::open(const std::string& path,
                                       access how) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty())
    std::filesystem::create_directories(dir, ec);
  if (ec)
    throw journal_error("cannot create the journal's directory "
                        + dir.string() + ": " + ec.message());
  auto fd = take_lock(path, how);
  sqlite3* db = nullptr;
  try {
    locks::setup_guard setting_up{fd, path};
    db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    // A file that is no database fails here, before anything is written.
    user_version(db, path);
    exec(db, path, "PRAGMA journal_mode = WAL", "switching to WAL mode");
    // Durable across a crash of the process; a power cut may lose the last
    // transactions, never the journal's consistency.
    exec(db, path, "PRAGMA synchronous = NORMAL", "setting synchronous");
    exec(db, path, "PRAGMA foreign_keys = ON", "enabling foreign keys");
    // A checkpoint (copying the WAL into the database, with an fsync)
    // every 32 MiB of WAL rather than SQLite's 4: one checkpoint writes a
    // page once however often it changed, and it runs on the thread that
    // commits, which dispatches wait for.
    exec(db, path, "PRAGMA wal_autocheckpoint = 8192",
         "setting the checkpoint interval");
    migrate(db, path);
    std::unique_ptr<journal> j{new journal(path, db, fd)};
    j->st_ = std::make_unique<statements>(db, j->path_);
    return j;
  } catch (...) {
    sqlite3_close_v2(db);
    ::close(fd);
    throw;
  }
}

std::unique_ptr<journal> journal::open_read_only(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0)
    throw journal_error("no journal at " + path + " (runs are journaled in "
                        ".troupe/troupe.db under the directory they ran in; "
                        "--journal names another)");
  auto db = open_db(path, SQLITE_OPEN_READONLY);
  try {
    auto version = user_version(db, path);
    if (version > schema_version)
      throw journal_error("journal " + path + " was written by a newer "
                          "Troupe (schema " + std::to_string(version)
                          + "; this one knows up to "
                          + std::to_string(schema_version) + ")");
    if (version < 1)
      throw journal_error("journal " + path + " holds no runs yet");
    if (version < schema_version)
      throw journal_error("journal " + path + " was written by an older "
                          "Troupe (schema " + std::to_string(version)
                          + "); a `troupe run` or `troupe coordinator` on "
                          "it brings it up to date");
    return std::unique_ptr<journal>{new journal(path, db, -1)};
  } catch (...) {
    sqlite3_close_v2(db);
    throw;
  }
}

namespace {

// The fault injection of TROUPE_JOURNAL_KILL_AFTER.
void kill_after(const std::string& what, const event* first, size_t n) {
  if (what.empty())
    return;
  for (auto ev = first; ev != first + n; ++ev) {
    auto kind = to_string(ev->kind);
    if (what == kind || what == kind + ":" + ev->subject)
      ::kill(::getpid(), SIGKILL);
  }
}

} // namespace

void journal::begin_run(const new_run& r) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  in_transaction(db_, st_->begin, st_->commit, "recording a new run",
                 [&] { insert_run(r); });
}

void journal::insert_run(const new_run& r) {
  auto& s = st_->insert_run;
  reset_on_exit guard{s};
  s.bind(1, r.run_id)
    .bind(2, r.p->name)
    .bind(3, int64_t{r.max_parallel})
    .bind(4, r.workdir)
    .bind(5, r.started_at)
    .bind(6, static_cast<int64_t>(r.p->workstreams.size()));
  s.run("recording a new run");
  int64_t key = sqlite3_last_insert_rowid(db_);
  keys_[r.run_id] = key;
  auto& pl = st_->insert_plan;
  reset_on_exit guard_plan{pl};
  pl.bind(1, key).bind(2, json_text(*r.p));
  pl.run("recording a new run");
}

int64_t journal::key_of(const std::string& run_id) {
  if (auto i = keys_.find(run_id); i != keys_.end())
    return i->second;
  auto& s = st_->run_key;
  reset_on_exit guard{s};
  s.bind(1, run_id);
  if (!s.step("finding a run"))
    throw journal_error("journal " + path_ + " has no run " + run_id);
  return keys_[run_id] = s.integer(0);
}

void journal::insert(const std::string& run_id,
                     const std::vector<event_span>& spans, int64_t ended) {
  auto& ins = st_->insert_batch;
  auto key = key_of(run_id);
  // The spans' events in rows of JSON lines, a row cut where it grows past
  // batch_bytes (SQLite refuses values past a gigabyte, and readers take a
  // row at once).
  body_.clear();
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  auto put = [&] {
    reset_on_exit guard{ins};
    ins.bind(1, key)
      .bind(2, static_cast<int64_t>(first_seq))
      .bind(3, static_cast<int64_t>(last_seq))
      .bind(4, body_);
    ins.run("appending events");
    body_.clear();
  };
  for (auto& [first, n] : spans) {
    for (auto ev = first; ev != first + n; ++ev) {
      if (body_.empty())
        first_seq = ev->seq;
      append_json(body_, *ev);
      body_ += '\n';
      last_seq = ev->seq;
      if (body_.size() >= batch_bytes)
        put();
    }
  }
  if (!body_.empty())
    put();
  auto& up = st_->update_progress;
  reset_on_exit guard{up};
  up.bind(1, run_id).bind(2, ended).bind(3, static_cast<int64_t>(last_seq));
  up.run("appending events");
}

void journal::append(const std::string& run_id, const event* first,
                     size_t n, int64_t ended) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (n == 0)
    return;
  in_transaction(db_, st_->begin, st_->commit, "appending events",
                 [&] { insert(run_id, {{first, n}}, ended); });
  kill_after(kill_after_, first, n);
}

void journal::append(const std::vector<batch>& batches,
                     const std::vector<const new_run*>& new_runs) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  // A run's batches, in the order they came: one run of rows each.
  std::vector<std::pair<const batch*, std::vector<event_span>>> runs;
  for (auto& b : batches) {
    if (b.n == 0)
      continue;
    auto i = std::find_if(runs.begin(), runs.end(), [&](const auto& r) {
      return r.first->run_id == b.run_id;
    });
    if (i == runs.end())
      i = runs.insert(runs.end(), {&b, {}});
    else
      i->first = &b; // the latest says how far the run got
    i->second.emplace_back(b.first, b.n);
  }
  in_transaction(db_, st_->begin, st_->commit, "appending events", [&] {
    for (auto r : new_runs)
      insert_run(*r);
    for (auto& [last, spans] : runs)
      insert(last->run_id, spans, last->ended);
  });
  for (auto& b : batches)
    kill_after(kill_after_, b.first, b.n);
}

void journal::finish_run(const run_report& report, double finished_at) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  in_transaction(db_, st_->begin, st_->commit, "recording a report", [&] {
    auto& s = st_->finish;
    reset_on_exit guard{s};
    s.bind(1, report.run_id)
      .bind(2, to_string(report.status))
      .bind(3, finished_at);
    s.run("recording a report");
    auto& r = st_->insert_report;
    reset_on_exit guard_report{r};
    r.bind(1, key_of(report.run_id)).bind(2, json_text(report));
    r.run("recording a report");
  });
  if (auto i = run_locks_.find(report.run_id); i != run_locks_.end()) {
    ::unlink(run_lock_path(path_, report.run_id).c_str());
    ::close(i->second);
    run_locks_.erase(i);
  }
}

std::string default_journal_path(const std::string& dir) {
  if (dir.empty() || dir == ".")
    return ".troupe/troupe.db";
  return (std::filesystem::path(dir) / ".troupe" / "troupe.db").string();
}

} // namespace troupe
