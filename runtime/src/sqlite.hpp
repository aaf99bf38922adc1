#pragma once

// SQLite for the journal: prepared statements that name the journal and
// what was being done when they fail, and transactions.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "troupe/runtime/journal.hpp"

namespace troupe::sqlite {

/// The journal_error that `rc` (from `db`, if open) means while `doing`
/// something to the journal at `path`: corrupt, full, locked...
inline journal_error failure(const std::string& path, sqlite3* db,
                             const std::string& doing, int rc) {
  std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // What the system said, when a system call failed underneath.
  auto sys = db != nullptr ? sqlite3_system_errno(db) : 0;
  if ((rc & 0xff) == SQLITE_IOERR && sys != 0)
    why += std::string{": "} + std::strerror(sys);
  if ((rc & 0xff) == SQLITE_IOERR
      && (sys == ENOSPC || sys == EFBIG || sys == EDQUOT))
    rc = SQLITE_FULL;
  // SQLite keeps no errno for a failed write: most often the disk is full.
  if (rc == SQLITE_IOERR_WRITE && sys == 0)
    return journal_error("cannot write journal " + path + " while " + doing
                         + ": a write failed (" + why
                         + "); is the disk full?");
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return journal_error("journal " + path + " is corrupt or not a Troupe "
                           "journal (" + why + ") while " + doing
                           + "; move it aside to start a new one");
    case SQLITE_FULL:
      return journal_error("cannot write journal " + path + " while " + doing
                           + ": it cannot grow (" + why + ")");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return journal_error("journal " + path + " is locked by another process "
                           "while " + doing + " (" + why + ")");
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return journal_error("cannot open journal " + path + " while " + doing
                           + ": " + why);
    default:
      return journal_error("journal " + path + ": " + doing + " failed: "
                           + why);
  }
}

/// Throws `failure(path, db, doing, rc)`.
[[noreturn]] inline void fail(const std::string& path, sqlite3* db,
                              const std::string& doing, int rc) {
  throw failure(path, db, doing, rc);
}

// A prepared statement, reset after each use.
class statement {
public:
  statement(sqlite3* db, const std::string& path, const char* sql)
    : db_(db), path_(path) {
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
    // Described before the reset, which forgets what the system said.
    auto err = failure(path_, db_, doing, rc);
    sqlite3_reset(stmt_);
    throw err;
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
      fail(path_, db_, doing, rc);
  }

  sqlite3* db_;
  /// The journal's file, for errors (a copy: the statement may outlive
  /// the string it was made with).
  std::string path_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement however the scope is left.
struct reset_on_exit {
  statement& s;
  ~reset_on_exit() {
    s.reset();
  }
};

inline void exec(sqlite3* db, const std::string& path, const char* sql,
          const char* doing) {
  char* msg = nullptr;
  auto rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK)
    fail(path, db, doing, rc);
}


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


} // namespace troupe::sqlite
