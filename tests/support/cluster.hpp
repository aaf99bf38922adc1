#pragma once

#include <algorithm>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/background.hpp"
#include "support/cli.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

using nlohmann::json;

/// A coordinator on a free loopback port, journaling in a directory of
/// its own unless `extra` names a journal.
struct coordinator {
  temp_dir home;
  std::unique_ptr<background> proc;
  uint16_t port = 0;

  explicit coordinator(std::vector<std::string> extra = {},
                       std::string listen = "127.0.0.1:0") {
    std::vector<std::string> args{TROUPE_BINARY, "--log-level", "info",
                                  "coordinator", "--listen", listen};
    args.insert(args.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--journal") == extra.end()
        && std::find(extra.begin(), extra.end(), "--no-journal")
             == extra.end()) {
      args.push_back("--journal");
      args.push_back(journal());
    }
    proc = std::make_unique<background>(args);
    auto line = proc->line();
    INFO("coordinator said: " << line << proc->err_text());
    REQUIRE(line.find("troupe coordinator listening on 127.0.0.1:") == 0);
    port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
    REQUIRE(port > 0);
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(port);
  }

  /// Its journal, unless `extra` named another.
  std::string journal() const {
    return home.str() + "/troupe.db";
  }
};

/// A worker that has joined (or, with `expect_join` false, was started).
inline std::unique_ptr<background> start_worker(const coordinator& c,
                                         const std::string& name,
                                         int slots = 2,
                                         std::vector<std::string> extra = {},
                                         bool expect_join = true) {
  std::vector<std::string> args{TROUPE_BINARY, "--log-level", "info",
                                "worker", "--join", c.address(), "--name",
                                name, "--slots", std::to_string(slots)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto w = std::make_unique<background>(args);
  if (expect_join) {
    INFO("worker " << name << ": " << w->err_text());
    REQUIRE(w->wait_for_err("joined coordinator"));
  }
  return w;
}

inline json read_json(const std::string& file) {
  std::ifstream in{file};
  REQUIRE(in);
  return json::parse(in);
}

inline std::vector<json> read_events(const std::string& file) {
  std::ifstream in{file};
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    out.push_back(json::parse(line));
  return out;
}

inline std::map<std::string, int> succeeded_events(const std::vector<json>& evs) {
  std::map<std::string, int> n;
  for (auto& e : evs)
    if (e.at("kind") == "ws_ended" && e.at("state") == "succeeded")
      ++n[e.at("subject").get<std::string>()];
  return n;
}

/// Runs `troupe submit` in the background of the test.
struct submission {
  std::promise<test::cli_result> result;
  std::future<test::cli_result> future = result.get_future();
  std::thread thread;

  submission(std::vector<std::string> args, std::string cwd) {
    thread = std::thread([this, args, cwd] {
      result.set_value(run_troupe(args, cwd));
    });
  }

  test::cli_result get() {
    auto r = future.get();
    thread.join();
    return r;
  }

  ~submission() {
    if (thread.joinable())
      thread.join();
  }
};

} // namespace troupe::test
