#include "troupe/runtime/process.hpp"

#include <cstdlib>
#include <fstream>
#include <future>

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "support/reaper.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

process_outcome run(process_runner& runner, process_request req) {
  std::promise<process_outcome> p;
  auto f = p.get_future();
  runner.start(std::move(req), [&p](process_outcome o) {
    p.set_value(std::move(o));
  });
  REQUIRE(f.wait_for(60s) == std::future_status::ready);
  return f.get();
}

} // namespace

TEST_CASE("a command's exit code, stdout and stderr come back separately",
          "[runtime]") {
  process_runner runner;
  process_request req;
  req.command = "echo out; echo err >&2; exit 3";
  auto o = run(runner, req);
  CHECK(o.exit_code == 3);
  CHECK(o.out == "out\n");
  CHECK(o.err == "err\n");
  CHECK_FALSE(o.timed_out);
  CHECK(o.spawn_error.empty());
}

TEST_CASE("a command runs in its directory with the extra environment",
          "[runtime]") {
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  req.command = "pwd; echo \"$TROUPE_X\"";
  req.cwd = dir.str();
  req.env["TROUPE_X"] = "forty two";
  auto o = run(runner, req);
  CHECK(o.exit_code == 0);
  CHECK(o.out == dir.str() + "\nforty two\n");
}

TEST_CASE("output beyond the cap keeps its tail and counts what was dropped",
          "[runtime]") {
  process_runner runner;
  process_request req;
  req.command = "seq 1 100000";
  req.output_limit = 1000;
  auto o = run(runner, req);
  CHECK(o.exit_code == 0);
  CHECK(o.out.size() == 1000);
  CHECK(o.dropped > 0);
  CHECK(o.out.substr(o.out.size() - 7) == "100000\n");
}

TEST_CASE("a timeout kills the command's whole process group", "[runtime]") {
  test::become_subreaper();
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  auto pid_file = dir.str() + "/bg.pid";
  req.command = "sleep 1000 & echo $! > " + pid_file + "; wait";
  req.timeout = 300ms;
  auto o = run(runner, req);
  CHECK(o.timed_out);
  CHECK(o.exit_code == -1);
  auto bg = test::read_pid(pid_file);
  REQUIRE(bg > 0);
  CHECK(test::process_gone(bg));
}

TEST_CASE("a command that ignores SIGTERM is killed after the grace period",
          "[runtime]") {
  test::become_subreaper();
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  auto pid_file = dir.str() + "/bg.pid";
  req.command = "trap '' TERM; sleep 1000 & echo $! > " + pid_file
                + "; while :; do wait; done";
  req.timeout = 200ms;
  req.kill_grace = 200ms;
  auto o = run(runner, req);
  CHECK(o.timed_out);
  CHECK(o.signal == SIGKILL);
  auto bg = test::read_pid(pid_file);
  REQUIRE(bg > 0);
  CHECK(test::process_gone(bg));
}

TEST_CASE("a cancelled command stops and says so", "[runtime]") {
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  req.command = "echo started; exec sleep 1000";
  std::promise<process_outcome> p;
  auto f = p.get_future();
  auto id = runner.start(req, [&p](process_outcome o) {
    p.set_value(std::move(o));
  });
  runner.cancel(id);
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  auto o = f.get();
  CHECK(o.cancelled);
  CHECK(o.exit_code == -1);
}

TEST_CASE("a command that cannot start reports why", "[runtime]") {
  process_runner runner;
  process_request req;
  req.command = "true";
  req.cwd = "/nonexistent/troupe/dir";
  auto o = run(runner, req);
  CHECK_FALSE(o.spawn_error.empty());
  CHECK(o.spawn_error.find("/nonexistent/troupe/dir") != std::string::npos);
}

TEST_CASE("many commands run at once on one runner", "[runtime]") {
  process_runner runner;
  constexpr int n = 50;
  std::vector<std::promise<process_outcome>> ps(n);
  std::vector<std::future<process_outcome>> fs;
  for (int i = 0; i < n; ++i) {
    fs.push_back(ps[i].get_future());
    process_request req;
    req.command = "echo " + std::to_string(i);
    runner.start(req, [&ps, i](process_outcome o) {
      ps[i].set_value(std::move(o));
    });
  }
  for (int i = 0; i < n; ++i) {
    REQUIRE(fs[i].wait_for(60s) == std::future_status::ready);
    CHECK(fs[i].get().out == std::to_string(i) + "\n");
  }
}

TEST_CASE("what a command leaves running dies with it, even outside its "
          "process group",
          "[runtime]") {
  test::become_subreaper();
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  // One background child in a session of its own, and one daemon that
  // forked twice so that its parent is gone.
  req.command = "setsid sleep 1000 & echo $! > " + dir.str()
                + "/own-session.pid; (setsid sh -c 'sleep 1000 & echo $! > "
                + dir.str() + "/daemon.pid' &); sleep 0.2; exit 0";
  auto o = run(runner, req);
  CHECK(o.exit_code == 0);
  for (auto name : {"own-session.pid", "daemon.pid"}) {
    INFO(name);
    auto pid = test::read_pid(dir.str() + "/" + name);
    REQUIRE(pid > 0);
    CHECK(test::process_gone(pid));
  }
}

TEST_CASE("a command's guard obeys only its owner", "[runtime]") {
  test::temp_dir dir;
  process_runner runner;
  process_request req;
  auto fifo = dir.str() + "/guard";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // The command tells its guard's pid (its parent) and waits for a line.
  req.command = "echo $PPID > " + fifo + "; read line < " + fifo
                + "; echo \"$line\"";
  std::promise<process_outcome> p;
  auto f = p.get_future();
  runner.start(req, [&p](process_outcome o) { p.set_value(std::move(o)); });
  auto guard = test::read_pid(fifo);
  REQUIRE(guard > 0);
  // A stranger's orders (here: a shell of the test's, not the owner) are
  // ignored: the command goes on and finishes by itself.
  auto stranger = "kill -USR1 " + std::to_string(guard) + "; kill -TERM "
                  + std::to_string(guard);
  REQUIRE(std::system(stranger.c_str()) == 0);
  {
    std::ofstream out{fifo};
    out << "still here\n";
  }
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  auto o = f.get();
  CHECK(o.exit_code == 0);
  CHECK(o.out == "still here\n");
}

TEST_CASE("a command reads its input on stdin, however big, then end of file",
          "[runtime]") {
  process_runner runner;
  process_request req;
  // 3 MiB: far more than a pipe holds, so it is written as it is read.
  std::string input;
  for (int i = 0; input.size() < (3u << 20); ++i)
    input += "line " + std::to_string(i) + " caf\xC3\xA9\n";
  req.input = input;
  req.command = "wc -c; md5sum";
  auto o = run(runner, req);
  CHECK(o.exit_code == 0);
  // wc read everything up to end of file; md5sum found nothing left.
  CHECK(o.out.rfind(std::to_string(input.size()) + "\n", 0) == 0);
  CHECK(o.out.find("d41d8cd98f00b204e9800998ecf8427e") != std::string::npos);
}

TEST_CASE("a command that never reads its stdin, or stops early, does not "
          "hold anything up",
          "[runtime]") {
  process_runner runner;
  process_request req;
  req.input = std::string(4 << 20, 'x');
  req.command = "head -c 10 >/dev/null; echo done";
  auto o = run(runner, req);
  CHECK(o.exit_code == 0);
  CHECK(o.out == "done\n");
  req.command = "exec 0<&-; echo closed";
  o = run(runner, req);
  CHECK(o.out == "closed\n");
  // And the runner goes on taking commands (no SIGPIPE ended it).
  process_request next;
  next.command = "echo still here";
  CHECK(run(runner, next).out == "still here\n");
}

TEST_CASE("without input, stdin is empty", "[runtime]") {
  process_runner runner;
  process_request req;
  req.command = "cat; echo end";
  CHECK(run(runner, req).out == "end\n");
}

TEST_CASE("stdout comes line by line as it is printed, long lines cut",
          "[runtime]") {
  process_runner runner;
  process_request req;
  std::vector<std::string> lines;
  std::promise<void> first;
  bool first_set = false;
  req.line_limit = 10;
  // The second line waits until the first was seen: lines arrive as they
  // are printed, not at the end.
  test::temp_dir dir;
  auto flag = (dir.path() / "seen").string();
  req.on_line = [&](std::string_view l) {
    lines.emplace_back(l);
    if (!first_set) {
      first_set = true;
      std::ofstream{flag} << "x";
    }
  };
  req.command = "echo one; while [ ! -e '" + flag
                + "' ]; do sleep 0.01; done; printf '%s\\n' "
                  "0123456789abcdef short; printf 'no newline'";
  req.timeout = 30s;
  auto o = run(runner, req);
  CHECK_FALSE(o.timed_out);
  CHECK(lines == std::vector<std::string>{"one", "0123456789", "short",
                                          "no newline"});
  // The tail is kept as before.
  CHECK(o.out == "one\n0123456789abcdef\nshort\nno newline");
}
