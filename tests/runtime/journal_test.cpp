#include "troupe/runtime/journal.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/temp_dir.hpp"
#include "troupe/protocol/utf8.hpp"

using namespace troupe;

namespace {

plan two_step_plan() {
  plan p;
  p.name = "journaled ✓";
  p.goal = "remember everything";
  for (auto id : {"a", "b"}) {
    workstream w;
    w.id = id;
    w.title = std::string{"step "} + id;
    w.persona = "backend";
    w.executor.kind = "noop";
    p.workstreams.push_back(w);
  }
  p.workstreams[1].depends_on = {"a"};
  return p;
}

event make_event(uint64_t seq, event_kind kind, std::string subject) {
  event e;
  e.run_id = "run-1";
  e.seq = seq;
  e.t_s = 0.5 * static_cast<double>(seq);
  e.at = 1.7e9;
  e.kind = kind;
  e.subject = std::move(subject);
  e.state = "succeeded";
  if (carries_result(kind)) {
    e.result.id = e.subject;
    e.result.status = ws_state::succeeded;
    e.result.summary = "done \xff";
    e.result.output = std::string(1000, 'x');
  }
  return e;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const journal_error& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("a journal keeps a run's plan, events and report", "[runtime]") {
  test::temp_dir dir;
  auto path = default_journal_path(dir.str());
  auto p = two_step_plan();
  {
    auto j = journal::open(path);
    j->begin_run("run-1", p, 3, "/work", 1.7e9);
    j->append("run-1",
              {make_event(1, event_kind::run_started, "run-1"),
               make_event(2, event_kind::ws_ended, "a")},
              1);
    j->append("run-1", {make_event(3, event_kind::ws_retrying, "b")}, 1);
  }
  // Closed and opened again, as after a crash.
  auto j = journal::open(path);
  auto runs = j->runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].id == "run-1");
  CHECK(runs[0].plan_name == p.name);
  CHECK(runs[0].status == "running");
  CHECK(runs[0].workstreams == 2);
  CHECK(runs[0].ended == 1);
  CHECK(runs[0].max_parallel == 3);
  CHECK(runs[0].workdir == "/work");
  CHECK(runs[0].last_seq == 3);
  CHECK(nlohmann::json(j->load_plan("run-1")) == nlohmann::json(p));
  auto evs = j->events("run-1");
  REQUIRE(evs.size() == 3);
  CHECK(evs[1].kind == event_kind::ws_ended);
  // Text comes back as valid UTF-8, bad bytes replaced.
  CHECK(json_text(evs[1]) == json_text(make_event(2, event_kind::ws_ended, "a")));
  CHECK(evs[1].result.summary == "done \xef\xbf\xbd");
  CHECK(j->events("run-1", 2).size() == 1);
  CHECK(j->results("run-1", "b").size() == 1);
  CHECK(j->results("run-1", "a").size() == 1);
  CHECK_FALSE(j->report("run-1"));
  run_report r;
  r.run_id = "run-1";
  r.plan = p.name;
  r.status = run_status::blocked;
  r.markdown = "# done";
  j->finish_run(r, 1.7e9 + 5);
  auto back = j->report("run-1");
  REQUIRE(back);
  CHECK(back->markdown == "# done");
  CHECK(j->find_run("run-1")->status == "blocked");
  // A unique prefix finds a run; an unknown id finds none.
  CHECK(j->find_run("run-")->id == "run-1");
  CHECK_FALSE(j->find_run("nope"));
}

TEST_CASE("a journal's writers share it, except a coordinator, and never "
          "share a run",
          "[runtime]") {
  test::temp_dir dir;
  auto path = dir.str() + "/j.db";
  auto writer = journal::open(path);
  writer->begin_run("run-1", two_step_plan(), 1, "/", 1.7e9);
  auto other = journal::open(path);
  auto why = error_of([&] { other->claim_run("run-1"); });
  CHECK_THAT(why, Catch::Contains("run run-1 is running in another troupe "
                                  "process (pid "
                                  + std::to_string(::getpid()) + ")"));
  other->begin_run("run-2", two_step_plan(), 1, "/", 1.7e9);
  why = error_of([&] { journal::open(path, journal::access::exclusive); });
  CHECK_THAT(why, Catch::Contains("in use by other troupe processes"));
  auto reader = journal::open_read_only(path);
  CHECK(reader->runs().size() == 2);
  writer->append("run-1", {make_event(1, event_kind::run_started, "run-1")},
                 0);
  CHECK(reader->events("run-1").size() == 1);
  // A finished run is nobody's.
  run_report r;
  r.run_id = "run-1";
  writer->finish_run(r, 1.7e9);
  CHECK_NOTHROW(other->claim_run("run-1"));
  writer.reset();
  other.reset();
  auto coordinator = journal::open(path, journal::access::exclusive);
  why = error_of([&] { journal::open(path); });
  CHECK_THAT(why, Catch::Contains("in use by a troupe coordinator (pid "
                                  + std::to_string(::getpid()) + ")"));
  CHECK_THAT(why, Catch::Contains(path));
}

TEST_CASE("processes that create one journal at once all open it",
          "[runtime]") {
  // Two `troupe run` started side by side in one directory both find no
  // journal and both create it: neither may fail for the other.
  test::temp_dir dir;
  constexpr int rounds = 10;
  constexpr int openers = 6;
  for (int round = 0; round < rounds; ++round) {
    auto path = dir.str() + "/j" + std::to_string(round) + ".db";
    std::vector<pid_t> children;
    int gate[2];
    REQUIRE(::pipe(gate) == 0);
    for (int i = 0; i < openers; ++i) {
      auto pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        ::close(gate[1]);
        char c;
        // All start when the gate closes, as near together as can be.
        while (::read(gate[0], &c, 1) > 0) {
        }
        try {
          auto j = journal::open(path);
          j->begin_run("run-" + std::to_string(i), two_step_plan(), 1, "/",
                       1.7e9);
        } catch (const std::exception& e) {
          ::dprintf(2, "%s\n", e.what());
          ::_exit(1);
        }
        ::_exit(0);
      }
      children.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]);
    for (auto pid : children) {
      int status = 0;
      REQUIRE(::waitpid(pid, &status, 0) == pid);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(journal::open_read_only(path)->runs().size() == openers);
  }
}

TEST_CASE("a journal that is no database, or from a newer Troupe, is refused",
          "[runtime]") {
  test::temp_dir dir;
  auto garbage = dir.write("garbage.db", std::string(8192, 'G'));
  auto why = error_of([&] { journal::open(garbage); });
  CHECK_THAT(why, Catch::Contains("is corrupt or not a Troupe journal"));
  CHECK_THAT(why, Catch::Contains(garbage));
  CHECK_THAT(error_of([&] { journal::open_read_only(garbage); }),
             Catch::Contains("corrupt"));

  auto newer = dir.str() + "/newer.db";
  journal::open(newer);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(newer.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr,
                       nullptr)
          == SQLITE_OK);
  sqlite3_close(db);
  why = error_of([&] { journal::open(newer); });
  CHECK_THAT(why, Catch::Contains("written by a newer Troupe (schema 99"));
  CHECK_THAT(error_of([&] { journal::open_read_only(newer); }),
             Catch::Contains("newer Troupe"));

  CHECK_THAT(error_of([&] { journal::open_read_only(dir.str() + "/none.db"); }),
             Catch::Contains("no journal at"));
}

TEST_CASE("a journal from the first schema is brought up to date, its "
          "events kept",
          "[runtime]") {
  test::temp_dir dir;
  auto path = dir.str() + "/v1.db";
  // As the first schema had it: a row per event.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string sql = R"(
    PRAGMA journal_mode = WAL;
    CREATE TABLE runs(key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
      plan_name TEXT NOT NULL, max_parallel INTEGER NOT NULL,
      workdir TEXT NOT NULL, started_at REAL NOT NULL, status TEXT NOT NULL,
      finished_at REAL NOT NULL DEFAULT 0, workstreams INTEGER NOT NULL,
      ended INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE plans(run INTEGER PRIMARY KEY REFERENCES runs(key),
      body TEXT NOT NULL);
    CREATE TABLE reports(run INTEGER PRIMARY KEY REFERENCES runs(key),
      body TEXT NOT NULL);
    CREATE TABLE events(run INTEGER NOT NULL REFERENCES runs(key),
      seq INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
      body TEXT NOT NULL);
    CREATE UNIQUE INDEX events_in_order ON events(run, seq);
    INSERT INTO runs(id, plan_name, max_parallel, workdir, started_at,
      status, workstreams, last_seq)
      VALUES('run-1', 'old', 2, '/work', 1.7e9, 'running', 2, 3);
    PRAGMA user_version = 1;)";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr)
          == SQLITE_OK);
  std::vector<event> old{make_event(1, event_kind::run_started, "run-1"),
                         make_event(2, event_kind::ws_ended, "a"),
                         make_event(3, event_kind::ws_retrying, "b")};
  for (auto& e : old) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO events VALUES(1, ?1, ?2, ?3, ?4)",
                               -1, &st, nullptr)
            == SQLITE_OK);
    // The first schema's text: nlohmann's.
    auto body = json_text(nlohmann::json(e));
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(e.seq));
    sqlite3_bind_text(st, 2, to_string(e.kind).c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, e.subject.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, body.c_str(), -1, SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  // Reading alone does not change a journal: it says what would.
  CHECK_THAT(error_of([&] { journal::open_read_only(path); }),
             Catch::Contains("older Troupe (schema 1)"));
  auto j = journal::open(path);
  auto events = j->events("run-1");
  REQUIRE(events.size() == 3);
  for (size_t i = 0; i < events.size(); ++i)
    CHECK(json_text(events[i]) == json_text(old[i]));
  CHECK(j->events("run-1", 2).size() == 1);
  CHECK(j->results("run-1", "a").size() == 1);
  // New events go on after the old ones.
  j->append("run-1", {make_event(4, event_kind::ws_ended, "b")}, 2);
  auto after = j->events("run-1", 1);
  REQUIRE(after.size() == 3);
  CHECK(after.back().seq == 4);
  CHECK(j->results("run-1", "b").size() == 2);
}

TEST_CASE("a journal whose pages are damaged says so when read",
          "[runtime]") {
  test::temp_dir dir;
  auto path = dir.str() + "/j.db";
  {
    auto j = journal::open(path);
    j->begin_run("run-1", two_step_plan(), 1, "/", 1.7e9);
    std::vector<event> many;
    for (uint64_t i = 1; i <= 200; ++i)
      many.push_back(make_event(i, event_kind::ws_ended, "a"));
    j->append("run-1", many, 1);
  }
  // Checkpointed into the file on close: overwrite pages past the header.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(16384, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto why = error_of([&] {
    auto j = journal::open(path);
    j->events("run-1");
  });
  CHECK_THAT(why, Catch::Contains("corrupt"));
}

TEST_CASE("a journal that cannot grow fails the write and keeps what it had",
          "[runtime]") {
  test::temp_dir dir;
  auto path = dir.str() + "/j.db";
  {
    auto j = journal::open(path);
    j->begin_run("run-1", two_step_plan(), 1, "/", 1.7e9);
    j->append("run-1", {make_event(1, event_kind::run_started, "run-1")}, 0);
  }
  // A child whose files may not grow past 256 KiB stands in for a full
  // disk: it appends until the journal refuses.
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{256 * 1024, 256 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::string why = "never refused";
    try {
      auto j = journal::open(path);
      for (uint64_t seq = 2; seq < 10000; ++seq)
        j->append("run-1", {make_event(seq, event_kind::ws_ended, "a")}, 1);
    } catch (const journal_error& e) {
      why = e.what();
    }
    auto n = ::write(pipefd[1], why.data(), why.size());
    ::_exit(n > 0 ? 0 : 1);
  }
  ::close(pipefd[1]);
  std::string why;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;)
    why.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK_THAT(why, Catch::Contains("journal " + path));
  CHECK_THAT(why, Catch::Contains("appending events"));
  // Whatever was committed is still there, in order and without gaps.
  auto j = journal::open(path);
  auto evs = j->events("run-1");
  REQUIRE_FALSE(evs.empty());
  for (size_t i = 0; i < evs.size(); ++i)
    CHECK(evs[i].seq == i + 1);
  CHECK(j->runs().front().last_seq == evs.size());
}
