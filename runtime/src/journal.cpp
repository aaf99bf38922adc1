// The journal: runs, their events and reports in SQLite.

#include "troupe/runtime/journal.hpp"

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

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

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
};
static_assert(std::size(migrations) == journal::schema_version);

// How long a statement waits for a checkpoint or a reader's lock.
constexpr int busy_timeout_ms = 5000;

[[noreturn]] void fail(const std::string& path, sqlite3* db,
                       const std::string& doing, int rc) {
  std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      throw journal_error("journal " + path + " is corrupt or not a Troupe "
                          "journal (" + why + ") while " + doing
                          + "; move it aside to start a new one");
    case SQLITE_FULL:
      throw journal_error("cannot write journal " + path + " while " + doing
                          + ": the disk is full (" + why + ")");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw journal_error("journal " + path + " is locked by another process "
                          "while " + doing + " (" + why + ")");
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      throw journal_error("cannot open journal " + path + " while " + doing
                          + ": " + why);
    default:
      throw journal_error("journal " + path + ": " + doing + " failed: "
                          + why);
  }
}

// A prepared statement, reset after each use.
class statement {
public:
  statement(sqlite3* db, const std::string& path, const char* sql)
    : db_(db), path_(&path) {
    auto rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &stmt_, nullptr);
    if (rc != SQLITE_OK)
      fail(path, db, "preparing a statement", rc);
  }

  ~statement() {
    sqlite3_finalize(stmt_);
  }

  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, std::string_view text) {
    check(sqlite3_bind_text(stmt_, i, text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT),
          "binding");
    return *this;
  }

  statement& bind(int i, int64_t x) {
    check(sqlite3_bind_int64(stmt_, i, x), "binding");
    return *this;
  }

  statement& bind(int i, double x) {
    check(sqlite3_bind_double(stmt_, i, x), "binding");
    return *this;
  }

  /// Steps once: true while there is a row.
  bool step(const char* doing) {
    auto rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    auto saved = rc;
    sqlite3_reset(stmt_);
    fail(*path_, db_, doing, saved);
  }

  /// Runs a statement that returns no rows.
  void run(const char* doing) {
    while (step(doing)) {
    }
    reset();
  }

  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::string text(int col) const {
    auto p = sqlite3_column_text(stmt_, col);
    auto n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(n))
             : std::string{};
  }

  int64_t integer(int col) const {
    return sqlite3_column_int64(stmt_, col);
  }

  double real(int col) const {
    return sqlite3_column_double(stmt_, col);
  }

  bool is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

private:
  void check(int rc, const char* doing) {
    if (rc != SQLITE_OK)
      fail(*path_, db_, doing, rc);
  }

  sqlite3* db_;
  const std::string* path_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement however the scope is left.
struct reset_on_exit {
  statement& s;
  ~reset_on_exit() {
    s.reset();
  }
};

void exec(sqlite3* db, const std::string& path, const char* sql,
          const char* doing) {
  char* msg = nullptr;
  auto rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK)
    fail(path, db, doing, rc);
}

int user_version(sqlite3* db, const std::string& path) {
  statement s{db, path, "PRAGMA user_version"};
  s.step("reading the schema version");
  auto v = static_cast<int>(s.integer(0));
  s.reset();
  return v;
}

// The first line of a lock file: the pid of a process that held it.
std::string holder_of(int fd) {
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  holder = holder.substr(0, holder.find('\n'));
  return holder.empty() ? "unknown" : holder;
}

// Writes this process's pid into a lock file it holds, as a hint for
// whoever finds the lock taken; the lock itself holds regardless.
void sign(int fd) {
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    // Nothing to do: the hint is missing.
  }
}

// Takes `path`.lock, shared or exclusive, or says who holds it.
int take_lock(const std::string& path, journal::access how) {
  auto lock_path = path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw journal_error("cannot open journal " + path + ": cannot create "
                        + lock_path + ": " + std::strerror(errno));
  bool exclusive = how == journal::access::exclusive;
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
    if (exclusive)
      sign(fd);
    return fd;
  }
  auto err = errno;
  // Held exclusively, by a coordinator, if a shared lock is refused.
  auto holder = exclusive ? std::string{} : holder_of(fd);
  ::close(fd);
  if (err != EWOULDBLOCK)
    throw journal_error("cannot lock journal " + path + ": "
                        + std::strerror(err));
  if (!exclusive)
    throw journal_error("journal " + path
                        + " is in use by a troupe coordinator (pid " + holder
                        + "); stop it, or give this process another "
                          "--journal (or --no-journal)");
  throw journal_error("journal " + path
                      + " is in use by other troupe processes; a coordinator "
                        "needs a journal of its own: give it another "
                        "--journal (or --no-journal)");
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

// Brings the schema of a journal opened for writing up to date.
void migrate(sqlite3* db, const std::string& path) {
  auto version = user_version(db, path);
  if (version > journal::schema_version)
    throw journal_error("journal " + path + " was written by a newer Troupe "
                        "(schema " + std::to_string(version)
                        + "; this one knows up to "
                        + std::to_string(journal::schema_version) + ")");
  if (version == journal::schema_version)
    return;
  exec(db, path, "BEGIN IMMEDIATE", "upgrading the schema");
  try {
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

journaled_run read_run(statement& s) {
  journaled_run r;
  r.id = s.text(0);
  r.plan_name = s.text(1);
  r.status = s.text(2);
  r.started_at = s.real(3);
  r.finished_at = s.real(4);
  r.workstreams = s.integer(5);
  r.ended = s.integer(6);
  r.max_parallel = static_cast<int32_t>(s.integer(7));
  r.workdir = s.text(8);
  r.last_seq = static_cast<uint64_t>(s.integer(9));
  return r;
}

constexpr const char* run_columns
  = "id, plan_name, status, started_at, finished_at, workstreams, ended, "
    "max_parallel, workdir, last_seq";

event read_event(const std::string& path, const std::string& body) {
  try {
    return json::parse(body).get<event>();
  } catch (const json::exception& e) {
    throw journal_error("journal " + path + " holds an event it cannot read ("
                        + e.what() + ")");
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
      insert_event(db, path,
                   "INSERT INTO events(run, seq, kind, subject, body) "
                   "VALUES(?1, ?2, ?3, ?4, ?5)"),
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
  statement insert_event;
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

namespace {

std::string run_lock_path(const std::string& journal_path,
                          const std::string& run_id) {
  auto dir = std::filesystem::path(journal_path).parent_path();
  return (dir / "runs" / (run_id + ".lock")).string();
}

} // namespace

void journal::claim_run(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (run_locks_.count(run_id) > 0)
    return;
  // Run ids name files here: nothing that could leave the directory.
  if (run_id.empty() || run_id.find('/') != std::string::npos
      || run_id[0] == '.')
    throw journal_error("run id " + run_id + " cannot be journaled");
  auto lock_path = run_lock_path(path_, run_id);
  std::error_code ec;
  std::filesystem::create_directories(
    std::filesystem::path(lock_path).parent_path(), ec);
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw journal_error("cannot lock run " + run_id + ": cannot create "
                        + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = holder_of(fd);
    ::close(fd);
    throw journal_error("run " + run_id
                        + " is running in another troupe process (pid "
                        + holder + ")");
  }
  sign(fd);
  run_locks_.emplace(run_id, fd);
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
    db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    // A file that is no database fails here, before anything is written.
    user_version(db, path);
    exec(db, path, "PRAGMA journal_mode = WAL", "switching to WAL mode");
    // Durable across a crash of the process; a power cut may lose the last
    // transactions, never the journal's consistency.
    exec(db, path, "PRAGMA synchronous = NORMAL", "setting synchronous");
    exec(db, path, "PRAGMA foreign_keys = ON", "enabling foreign keys");
    migrate(db, path);
    std::unique_ptr<journal> j{new journal(path, db, fd)};
    j->st_ = std::make_unique<statements>(db, path);
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
    return std::unique_ptr<journal>{new journal(path, db, -1)};
  } catch (...) {
    sqlite3_close_v2(db);
    throw;
  }
}

namespace {

// Runs `f` in a transaction: committed if it returns, rolled back if it
// throws.
template <class F>
void in_transaction(sqlite3* db, statement& begin, statement& commit,
                    const char* doing, F f) {
  begin.run(doing);
  try {
    f();
    commit.run(doing);
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

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

void journal::begin_run(const std::string& run_id, const plan& p,
                        int32_t max_parallel, const std::string& workdir,
                        double started_at) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  claim_run(run_id);
  in_transaction(db_, st_->begin, st_->commit, "recording a new run", [&] {
    auto& s = st_->insert_run;
    reset_on_exit guard{s};
    s.bind(1, run_id)
      .bind(2, p.name)
      .bind(3, int64_t{max_parallel})
      .bind(4, workdir)
      .bind(5, started_at)
      .bind(6, static_cast<int64_t>(p.workstreams.size()));
    s.run("recording a new run");
    int64_t key = sqlite3_last_insert_rowid(db_);
    keys_[run_id] = key;
    auto& pl = st_->insert_plan;
    reset_on_exit guard_plan{pl};
    pl.bind(1, key).bind(2, json_text(p));
    pl.run("recording a new run");
  });
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

void journal::insert(const std::string& run_id, const event* first,
                     size_t n, int64_t ended) {
  auto& ins = st_->insert_event;
  auto key = key_of(run_id);
  for (auto ev = first; ev != first + n; ++ev) {
    reset_on_exit guard{ins};
    ins.bind(1, key)
      .bind(2, static_cast<int64_t>(ev->seq))
      .bind(3, to_string(ev->kind))
      .bind(4, ev->subject)
      .bind(5, json_text(*ev));
    ins.run("appending events");
  }
  auto& up = st_->update_progress;
  reset_on_exit guard{up};
  up.bind(1, run_id).bind(2, ended).bind(
    3, static_cast<int64_t>(first[n - 1].seq));
  up.run("appending events");
}


void journal::append(const std::string& run_id, const event* first,
                     size_t n, int64_t ended) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (n == 0)
    return;
  in_transaction(db_, st_->begin, st_->commit, "appending events",
                 [&] { insert(run_id, first, n, ended); });
  kill_after(kill_after_, first, n);
}

void journal::append(const std::vector<batch>& batches) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  in_transaction(db_, st_->begin, st_->commit, "appending events", [&] {
    for (auto& b : batches)
      if (!b.events.empty())
        insert(b.run_id, b.events.data(), b.events.size(), b.ended);
  });
  for (auto& b : batches)
    kill_after(kill_after_, b.events.data(), b.events.size());
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

std::vector<journaled_run> journal::runs() {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  auto sql = std::string{"SELECT "} + run_columns
             + " FROM runs ORDER BY started_at DESC, id";
  statement s{db_, path_, sql.c_str()};
  std::vector<journaled_run> out;
  while (s.step("listing runs"))
    out.push_back(read_run(s));
  return out;
}

std::optional<journaled_run> journal::find_run(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  auto sql = std::string{"SELECT "} + run_columns
             + " FROM runs WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 "
               "ORDER BY id = ?1 DESC LIMIT 2";
  statement s{db_, path_, sql.c_str()};
  s.bind(1, run_id);
  std::vector<journaled_run> found;
  while (s.step("finding a run"))
    found.push_back(read_run(s));
  if (found.empty() || run_id.empty())
    return std::nullopt;
  // An exact id wins; a prefix must name one run only.
  if (found.front().id == run_id || found.size() == 1)
    return found.front();
  throw journal_error("run id " + run_id + " is ambiguous in journal " + path_
                      + ": more than one run starts with it");
}

plan journal::load_plan(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_, "SELECT body FROM plans WHERE run = (SELECT key FROM runs "
                          "WHERE id = ?1)"};
  s.bind(1, run_id);
  if (!s.step("reading a plan"))
    throw journal_error("journal " + path_ + " has no run " + run_id);
  auto text = s.text(0);
  diagnostics diags;
  nlohmann::json j;
  plan p;
  if (parse_plan_text(text, "json", j, diags))
    p = decode_plan(j, diags);
  if (!diags.ok()) {
    std::string why;
    for (auto& d : diags.items())
      if (!d.warning)
        why += (why.empty() ? "" : "; ") + to_string(d);
    throw journal_error("journal " + path_ + " holds a plan for run " + run_id
                        + " that does not decode: " + why);
  }
  return p;
}

std::vector<event> journal::events(const std::string& run_id,
                                   uint64_t after_seq) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_,
              "SELECT body FROM events WHERE run = (SELECT key FROM runs "
              "WHERE id = ?1) AND seq > ?2 "
              "ORDER BY seq"};
  s.bind(1, run_id).bind(2, static_cast<int64_t>(after_seq));
  std::vector<event> out;
  while (s.step("reading events"))
    out.push_back(read_event(path_, s.text(0)));
  return out;
}

std::vector<event> journal::results(const std::string& run_id,
                                    const std::string& subject) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_,
              "SELECT body FROM events WHERE run = (SELECT key FROM runs "
              "WHERE id = ?1) AND subject = ?2 "
              "AND kind IN ('ws_retrying', 'ws_ended') ORDER BY seq"};
  s.bind(1, run_id).bind(2, subject);
  std::vector<event> out;
  while (s.step("reading results"))
    out.push_back(read_event(path_, s.text(0)));
  return out;
}

std::optional<run_report> journal::report(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_, "SELECT body FROM reports WHERE run = (SELECT key FROM "
                          "runs WHERE id = ?1)"};
  s.bind(1, run_id);
  if (!s.step("reading a report") || s.is_null(0))
    return std::nullopt;
  try {
    return json::parse(s.text(0)).get<run_report>();
  } catch (const json::exception& e) {
    throw journal_error("journal " + path_ + " holds a report for run "
                        + run_id + " it cannot read (" + e.what() + ")");
  }
}

std::optional<int> journal::run_owner(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  if (run_locks_.count(run_id) > 0)
    return ::getpid();
  int fd = ::open(run_lock_path(path_, run_id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::optional<int> owner;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    auto holder = holder_of(fd);
    char* end = nullptr;
    auto pid = std::strtol(holder.c_str(), &end, 10);
    if (end != holder.c_str() && pid > 0)
      owner = static_cast<int>(pid);
  }
  ::close(fd);
  return owner;
}

struct journal_writer::item {
  uint64_t ticket = 0;
  journal::batch events;
  /// Set for a report.
  bool is_report = false;
  run_report report;
  double finished_at = 0;
};

journal_writer::journal_writer(std::shared_ptr<journal> j,
                               commit_fn on_commit)
  : journal_(std::move(j)), on_commit_(std::move(on_commit)) {
  thread_ = std::thread([this] { loop(); });
}

journal_writer::~journal_writer() {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t journal_writer::append(const std::string& run_id,
                                std::vector<event> events, int64_t ended) {
  std::lock_guard<std::mutex> lock{mtx_};
  auto& x = queue_.emplace_back();
  x.ticket = ++next_ticket_;
  x.events.run_id = run_id;
  x.events.events = std::move(events);
  x.events.ended = ended;
  cv_.notify_all();
  return x.ticket;
}

uint64_t journal_writer::finish_run(run_report report, double finished_at) {
  std::lock_guard<std::mutex> lock{mtx_};
  auto& x = queue_.emplace_back();
  x.ticket = ++next_ticket_;
  x.is_report = true;
  x.report = std::move(report);
  x.finished_at = finished_at;
  cv_.notify_all();
  return x.ticket;
}

void journal_writer::sync() {
  std::unique_lock<std::mutex> lock{mtx_};
  auto target = next_ticket_;
  cv_.wait(lock, [&] { return committed_ >= target; });
}

void journal_writer::loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty())
      return; // stopping, and everything is in
    auto items = std::move(queue_);
    queue_ = {};
    lock.unlock();
    std::string error;
    std::vector<journal::batch> batches;
    try {
      for (auto& x : items)
        if (!x.is_report)
          batches.push_back(std::move(x.events));
      if (!batches.empty())
        journal_->append(batches);
      for (auto& x : items)
        if (x.is_report)
          journal_->finish_run(x.report, x.finished_at);
    } catch (const std::exception& e) {
      error = e.what();
    }
    auto last = items.back().ticket;
    if (on_commit_)
      on_commit_(last, error);
    lock.lock();
    committed_ = last;
    cv_.notify_all();
  }
}

std::optional<int> journal::coordinator() {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  int fd = ::open((path_ + ".lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::optional<int> holder;
  // Only an exclusive holder refuses a shared lock.
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    auto text = holder_of(fd);
    char* end = nullptr;
    auto pid = std::strtol(text.c_str(), &end, 10);
    holder = end != text.c_str() && pid > 0 ? static_cast<int>(pid) : -1;
  }
  ::close(fd);
  return holder;
}

std::string default_journal_path(const std::string& dir) {
  if (dir.empty() || dir == ".")
    return ".troupe/troupe.db";
  return (std::filesystem::path(dir) / ".troupe" / "troupe.db").string();
}

} // namespace troupe
