#pragma once

#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

#include <pthread.h>

#include "troupe/runtime/process.hpp"

namespace troupe::cli {

/// Takes SIGINT, SIGTERM and SIGHUP (a closed terminal) on a thread of its
/// own: the first calls `on_first`, a second kills every running command and
/// ends the process at once (exit code 130). The signals must be blocked in
/// every other thread (`block_signals` before any thread starts).
class signal_watch {
public:
  explicit signal_watch(std::function<void(int)> on_first) {
    thread_ = std::thread([on_first = std::move(on_first)] {
      auto set = watched();
      int count = 0;
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
          continue;
        if (sig == SIGUSR1)
          return;
        if (++count == 1) {
          on_first(sig);
        } else {
          std::fputs("\ntroupe: quitting now\n", stderr);
          // Commands run in process groups of their own, out of reach of
          // the terminal's signal: take them along.
          process_runner::shared().kill_all();
          std::_Exit(130);
        }
      }
    });
  }

  ~signal_watch() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  /// The signal's name, for messages.
  static const char* name(int sig) {
    switch (sig) {
      case SIGINT:
        return "SIGINT";
      case SIGTERM:
        return "SIGTERM";
      case SIGHUP:
        return "SIGHUP";
      default:
        return "a signal";
    }
  }

  /// Blocks the watched signals in the calling thread and the threads it
  /// starts afterwards.
  static void block_signals() {
    auto set = watched();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

private:
  static sigset_t watched() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    return set;
  }

  std::thread thread_;
};

} // namespace troupe::cli
