#include "troupe/runtime/process.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process_guard.hpp"

namespace troupe {

namespace {

using clock_type = std::chrono::steady_clock;

// Appends to `buf`, keeping only its last `limit` bytes.
void append_tail(std::string& buf, const char* data, size_t n, size_t limit,
                 size_t& dropped) {
  buf.append(data, n);
  if (buf.size() > limit) {
    auto excess = buf.size() - limit;
    buf.erase(0, excess);
    dropped += excess;
  }
}

struct child {
  uint64_t id = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int in_fd = -1;
  int out_fd = -1;
  int err_fd = -1;
  int status_fd = -1;
  /// Bytes of `req.input` written so far.
  size_t input_written = 0;
  /// Stdout not yet handed to `req.on_line`: the line in progress.
  std::string line;
  /// Set while the rest of a line cut at `line_limit` is skipped.
  bool skipping_line = false;
  process_request req;
  process_runner::callback done;
  process_outcome outcome;
  clock_type::time_point started;
  clock_type::time_point deadline = clock_type::time_point::max();
  clock_type::time_point kill_at = clock_type::time_point::max();
  bool exited = false;
};

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

} // namespace

struct process_runner::impl {
  std::mutex mtx;
  std::deque<std::unique_ptr<child>> incoming;
  std::vector<uint64_t> cancels;
  std::unordered_map<uint64_t, std::unique_ptr<child>> children;
  std::atomic<uint64_t> next_id{1};
  std::atomic<size_t> count{0};
  std::atomic<bool> stop{false};
  // Guards alive now, for kill_all() from any thread.
  std::mutex guards_mtx;
  std::set<pid_t> guards;
  int wake_fd = -1;
  std::thread worker;

  impl() {
    wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    worker = std::thread([this] {
      // A command that closes its stdin early makes writing to it raise
      // SIGPIPE, which would end this process: here it only fails the
      // write (see `feed`).
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      ::pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      loop();
    });
  }

  ~impl() {
    stop = true;
    wake();
    worker.join();
    close_fd(wake_fd);
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
  }

  // Starts the command under a guard (process_guard.hpp), so that it never
  // outlives this process; on failure fills `spawn_error` and returns false.
  bool spawn(child& c) {
    detail::guarded_process g;
    if (!detail::start_guarded(c.req.command, c.req.cwd, c.req.env,
                               c.req.input.has_value(), g,
                               c.outcome.spawn_error))
      return false;
    c.pid = g.pid;
    c.pidfd = g.pidfd;
    c.in_fd = g.in;
    c.out_fd = g.out;
    c.err_fd = g.err;
    c.status_fd = g.status;
    {
      std::lock_guard<std::mutex> lock{guards_mtx};
      guards.insert(c.pid);
    }
    c.started = clock_type::now();
    if (c.req.timeout.count() > 0)
      c.deadline = c.started + c.req.timeout;
    return true;
  }

  // Asks the guard to stop the command gently (SIGTERM to its group).
  void terminate(child& c) {
    if (c.pid > 0 && !c.exited)
      ::kill(c.pid, SIGTERM);
  }

  // Asks the guard to kill the command and everything it started.
  void kill_hard(child& c) {
    if (c.pid > 0 && !c.exited)
      ::kill(c.pid, SIGUSR1);
  }

  void stop_child(child& c) {
    terminate(c);
    auto at = clock_type::now() + c.req.kill_grace;
    c.kill_at = std::min(c.kill_at, at);
  }

  // Writes what the pipe takes of the command's input; closes it once all
  // is written, or once the command stopped reading.
  void feed(child& c) {
    auto& input = *c.req.input;
    while (c.in_fd >= 0 && c.input_written < input.size()) {
      auto n = ::write(c.in_fd, input.data() + c.input_written,
                       input.size() - c.input_written);
      if (n > 0) {
        c.input_written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      // EPIPE: the command closed its stdin. This thread blocks SIGPIPE;
      // take the one the write raised, so none is left pending.
      if (n < 0 && errno == EPIPE) {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        timespec zero{0, 0};
        ::sigtimedwait(&pipe_set, nullptr, &zero);
      }
      break;
    }
    close_fd(c.in_fd);
  }

  // Hands the complete lines of `data` to `on_line`, keeping the one in
  // progress, each cut at the line limit.
  void split_lines(child& c, const char* data, size_t n) {
    auto limit = std::max<size_t>(c.req.line_limit, 1);
    for (size_t i = 0; i < n;) {
      auto nl = static_cast<const char*>(std::memchr(data + i, '\n', n - i));
      size_t end = nl ? static_cast<size_t>(nl - data) : n;
      if (!c.skipping_line) {
        auto room = limit - c.line.size();
        c.line.append(data + i, std::min(end - i, room));
        if (end - i > room) {
          c.req.on_line(c.line);
          c.line.clear();
          c.skipping_line = true;
        }
      }
      if (!nl)
        break;
      if (!c.skipping_line)
        c.req.on_line(c.line);
      c.line.clear();
      c.skipping_line = false;
      i = end + 1;
    }
  }

  // Reads what is available; returns false at end of file or error.
  bool drain(child& c, int& fd, std::string& buf) {
    char chunk[16384];
    for (;;) {
      auto n = ::read(fd, chunk, sizeof(chunk));
      if (n > 0) {
        if (c.req.on_line && &buf == &c.outcome.out)
          split_lines(c, chunk, static_cast<size_t>(n));
        append_tail(buf, chunk, static_cast<size_t>(n), c.req.output_limit,
                    c.outcome.dropped);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
      if (n < 0 && errno == EINTR)
        continue;
      close_fd(fd);
      return false;
    }
  }

  void reap(child& c) {
    // The guard has ended, and with it everything the command started.
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(c.pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    read_status(c);
    c.exited = true;
    close_fd(c.pidfd);
  }

  // Reads what the guard reported about the command.
  void read_status(child& c) {
    int record[2];
    bool known = false;
    while (c.status_fd >= 0
           && ::read(c.status_fd, record, sizeof(record))
                == static_cast<ssize_t>(sizeof(record))) {
      switch (record[0]) {
        case detail::exited:
          known = true;
          if (WIFEXITED(record[1])) {
            c.outcome.exit_code = WEXITSTATUS(record[1]);
          } else if (WIFSIGNALED(record[1])) {
            c.outcome.exit_code = -1;
            c.outcome.signal = WTERMSIG(record[1]);
          }
          break;
        case detail::no_cwd:
          c.outcome.spawn_error = "cannot start /bin/sh in " + c.req.cwd
                                  + ": " + std::strerror(record[1]);
          break;
        case detail::no_exec:
          c.outcome.spawn_error = std::string{"cannot start /bin/sh: "}
                                  + std::strerror(record[1]);
          if (record[1] == E2BIG)
            c.outcome.spawn_error += " (the command or its environment is "
                                     "too long)";
          break;
        default:
          break;
      }
    }
    close_fd(c.status_fd);
    if (!known && c.outcome.spawn_error.empty()) {
      // The guard ended without the command's status: it killed the command
      // on this process's word (the hard stop after a timeout's or a
      // cancel's grace), or was killed itself.
      c.outcome.exit_code = -1;
      c.outcome.signal = SIGKILL;
    }
  }

  void finish(std::unique_ptr<child> c) {
    if (c->pid > 0) {
      std::lock_guard<std::mutex> lock{guards_mtx};
      guards.erase(c->pid);
    }
    if (c->out_fd >= 0)
      drain(*c, c->out_fd, c->outcome.out);
    if (c->err_fd >= 0)
      drain(*c, c->err_fd, c->outcome.err);
    if (c->req.on_line && !c->line.empty() && !c->skipping_line)
      c->req.on_line(c->line);
    close_fd(c->in_fd);
    close_fd(c->out_fd);
    close_fd(c->err_fd);
    close_fd(c->status_fd);
    close_fd(c->pidfd);
    c->outcome.wall = clock_type::now() - c->started;
    --count;
    auto done = std::move(c->done);
    if (done)
      done(std::move(c->outcome));
  }

  void take_incoming() {
    std::deque<std::unique_ptr<child>> fresh;
    std::vector<uint64_t> cancel_ids;
    {
      std::lock_guard<std::mutex> guard{mtx};
      fresh.swap(incoming);
      cancel_ids.swap(cancels);
    }
    for (auto& c : fresh) {
      if (!spawn(*c)) {
        c->started = clock_type::now();
        finish(std::move(c));
        continue;
      }
      if (c->in_fd >= 0)
        feed(*c);
      auto id = c->id;
      children.emplace(id, std::move(c));
    }
    for (auto id : cancel_ids) {
      auto i = children.find(id);
      if (i == children.end() || i->second->exited)
        continue;
      i->second->outcome.cancelled = true;
      stop_child(*i->second);
    }
  }

  void loop() {
    std::vector<pollfd> fds;
    std::vector<std::pair<uint64_t, int>> owners; // child id, which fd
    while (!stop) {
      take_incoming();
      auto now = clock_type::now();
      auto next = clock_type::time_point::max();
      for (auto& [id, c] : children) {
        if (!c->exited && now >= c->deadline && !c->outcome.timed_out) {
          c->outcome.timed_out = true;
          stop_child(*c);
        }
        if (!c->exited && now >= c->kill_at) {
          kill_hard(*c);
          c->kill_at = clock_type::time_point::max();
        }
        if (!c->outcome.timed_out)
          next = std::min(next, c->deadline);
        next = std::min(next, c->kill_at);
      }
      fds.clear();
      owners.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      owners.emplace_back(0, -1);
      for (auto& [id, c] : children) {
        if (c->pidfd >= 0) {
          fds.push_back({c->pidfd, POLLIN, 0});
          owners.emplace_back(id, 0);
        }
        if (c->in_fd >= 0) {
          fds.push_back({c->in_fd, POLLOUT, 0});
          owners.emplace_back(id, 3);
        }
        if (c->out_fd >= 0) {
          fds.push_back({c->out_fd, POLLIN, 0});
          owners.emplace_back(id, 1);
        }
        if (c->err_fd >= 0) {
          fds.push_back({c->err_fd, POLLIN, 0});
          owners.emplace_back(id, 2);
        }
      }
      int timeout_ms = -1;
      if (next != clock_type::time_point::max()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - now);
        timeout_ms = static_cast<int>(std::max<int64_t>(left.count() + 1, 0));
      }
      auto n = ::poll(fds.data(), fds.size(), timeout_ms);
      if (n < 0 && errno != EINTR)
        break;
      if (n <= 0)
        continue;
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd, &v, sizeof(v));
      }
      std::vector<uint64_t> ended;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        auto& c = *children[owners[i].first];
        switch (owners[i].second) {
          case 0:
            reap(c);
            ended.push_back(c.id);
            break;
          case 1:
            if (c.out_fd >= 0)
              drain(c, c.out_fd, c.outcome.out);
            break;
          case 3:
            if (c.in_fd >= 0)
              feed(c);
            break;
          default:
            if (c.err_fd >= 0)
              drain(c, c.err_fd, c.outcome.err);
            break;
        }
      }
      for (auto id : ended) {
        auto i = children.find(id);
        if (i == children.end())
          continue;
        auto c = std::move(i->second);
        children.erase(i);
        finish(std::move(c));
      }
    }
    // Shutting down: nothing may outlive the runner.
    for (auto& [id, c] : children) {
      kill_hard(*c);
      if (!c->exited)
        reap(*c);
      c->outcome.cancelled = true;
      auto ptr = std::move(c);
      finish(std::move(ptr));
    }
    children.clear();
  }
};

process_runner::process_runner() : impl_(std::make_unique<impl>()) {
  // nop
}

process_runner::~process_runner() = default;

process_runner& process_runner::shared() {
  static process_runner instance;
  return instance;
}

uint64_t process_runner::start(process_request req, callback done) {
  auto c = std::make_unique<child>();
  c->id = impl_->next_id++;
  c->req = std::move(req);
  c->done = std::move(done);
  auto id = c->id;
  ++impl_->count;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->incoming.push_back(std::move(c));
  }
  impl_->wake();
  return id;
}

void process_runner::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->cancels.push_back(id);
  }
  impl_->wake();
}

void process_runner::kill_all() {
  std::lock_guard<std::mutex> lock{impl_->guards_mtx};
  for (auto guard : impl_->guards)
    ::kill(guard, SIGUSR1);
}

size_t process_runner::running() const {
  return impl_->count;
}

} // namespace troupe
