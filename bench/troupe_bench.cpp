// Scheduling overhead of Troupe against the bare-CAF floor.
//
// For each shape (a fan-out of N no-op workstreams with a final gather, and
// a chain of N) it runs the plan through Troupe's orchestrator and agent
// pool, then the same message pattern on bare CAF actors: a coordinator that
// keeps at most `window` requests in flight to a pool actor, which spawns
// one worker per task and delegates the request to it. Then it runs a
// fan-out of 10,000 with the SQLite journal and without, alternately, for
// what journaling costs. Prints JSON.
//
//   troupe_bench [--quick]       (--quick: smaller sizes, for the tests)
//   troupe_bench --fan-out N [--journal-file F]
//                                (one Troupe fan-out alone, for profilers)
//   troupe_bench --journal N     (the journal's cost alone, 5 times each)

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "troupe/actors/agents.hpp"
#include "sink.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/journal.hpp"

using namespace troupe;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int32_t window = 256;

plan fan_out(size_t n) {
  plan p;
  p.name = "fanout-" + std::to_string(n);
  p.settings.max_parallel_agents = window;
  p.settings.max_phase_width = static_cast<int32_t>(n + 1);
  p.workstreams.reserve(n + 1);
  workstream gather;
  gather.id = "gather";
  gather.agent = agent_kind::explore;
  gather.persona = "analyzer";
  gather.depends_on.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    workstream w;
    w.id = "w" + std::to_string(i);
    w.agent = agent_kind::explore;
    w.persona = "analyzer";
    gather.depends_on.push_back(w.id);
    p.workstreams.push_back(std::move(w));
  }
  p.workstreams.push_back(std::move(gather));
  return p;
}

plan chain(size_t n) {
  plan p;
  p.name = "chain-" + std::to_string(n);
  p.settings.max_parallel_agents = window;
  for (size_t i = 0; i < n; ++i) {
    workstream w;
    w.id = "c" + std::to_string(i);
    w.agent = agent_kind::explore;
    w.persona = "analyzer";
    if (i > 0)
      w.depends_on.push_back("c" + std::to_string(i - 1));
    p.workstreams.push_back(std::move(w));
  }
  return p;
}

// Seconds for Troupe to run `p` to its report.
double run_troupe(caf::actor_system& sys, const plan& p,
                  orchestrator_config ocfg = {}) {
  return bench::run_plan(sys, p, window, std::move(ocfg)).wall_s;
}

// The floor: the same spawn-per-task request pattern on bare CAF.
using task_atom = caf::atom_constant<caf::atom("task")>;
constexpr task_atom task_atom_v{};

caf::behavior floor_worker(caf::event_based_actor* self) {
  return {[=](task_atom, uint64_t id) {
    self->quit();
    return id;
  }};
}

caf::behavior floor_pool(caf::event_based_actor* self) {
  return {[=](task_atom, uint64_t id) {
    auto w = self->spawn(floor_worker);
    return self->delegate(w, task_atom_v, id);
  }};
}

struct floor_state {
  uint64_t next = 0;
  uint64_t done = 0;
};

// Runs `n` tasks; `chain` issues each after the previous answered.
caf::behavior floor_coordinator(caf::stateful_actor<floor_state>* self,
                                caf::actor pool, uint64_t n, bool chained,
                                caf::actor inbox) {
  auto issue = std::make_shared<std::function<void()>>();
  *issue = [=] {
    auto id = self->state.next++;
    self->request(pool, std::chrono::minutes(1), task_atom_v, id)
        .then([=](uint64_t) {
          if (++self->state.done == n) {
            caf::anon_send(inbox, true);
            self->quit();
            // `issue` holds itself (and the pool) in its own capture.
            *issue = nullptr;
            return;
          }
          if (self->state.next < n)
            (*issue)();
        });
  };
  auto parallel = chained ? uint64_t{1} : std::min<uint64_t>(window, n);
  for (uint64_t i = 0; i < parallel; ++i)
    (*issue)();
  return {[](caf::unit_t) {}};
}

double run_floor(caf::actor_system& sys, uint64_t n, bool chained) {
  caf::scoped_actor self{sys};
  auto pool = sys.spawn(floor_pool);
  auto start = clock_type::now();
  sys.spawn(floor_coordinator, pool, n, chained, caf::actor{self});
  self->receive([](bool) {}, caf::after(std::chrono::minutes(5)) >> [] {});
  auto elapsed = std::chrono::duration<double>(clock_type::now() - start);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  return elapsed.count();
}

// The cost of the journal: the same fan-out with it and without it,
// alternately, `reps` times each; the medians and their ratio.
nlohmann::json journal_cost(caf::actor_system& sys, size_t n, int reps) {
  char templ[] = "/tmp/troupe-bench-XXXXXX";
  if (::mkdtemp(templ) == nullptr)
    return {{"error", "mkdtemp failed"}};
  std::string dir = templ;
  std::vector<double> off;
  std::vector<double> on;
  for (int i = 0; i < reps; ++i) {
    off.push_back(run_troupe(sys, fan_out(n)));
    orchestrator_config ocfg;
    auto path = dir + "/troupe-" + std::to_string(i) + ".db";
    ocfg.journal = journal::open(path);
    on.push_back(run_troupe(sys, fan_out(n), ocfg));
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto m_off = median(off);
  auto m_on = median(on);
  return {{"shape", "fan_out_gather"},
          {"n", n},
          {"repetitions", reps},
          {"journal_off_s", m_off},
          {"journal_on_s", m_on},
          {"ratio", m_off > 0 ? m_on / m_off : 0},
          {"off_runs_s", off},
          {"on_runs_s", on}};
}

} // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  if (argc > 2 && std::strcmp(argv[1], "--fan-out") == 0) {
    // One Troupe fan-out alone, for profilers.
    auto n = std::stoul(argv[2]);
    orchestrator_config ocfg;
    if (argc > 4 && std::strcmp(argv[3], "--journal-file") == 0)
      ocfg.journal = journal::open(argv[4]);
    std::cout << nlohmann::json{{"n", n},
                                {"troupe_s", run_troupe(sys, fan_out(n), ocfg)}}
              << std::endl;
    return 0;
  }
  if (argc > 2 && std::strcmp(argv[1], "--journal") == 0) {
    std::cout << journal_cost(sys, std::stoul(argv[2]), 5).dump(2)
              << std::endl;
    return 0;
  }
  std::vector<size_t> fan_sizes
      = quick ? std::vector<size_t>{1000}
              : std::vector<size_t>{1000, 10000, 100000};
  size_t chain_len = quick ? 200 : 1000;
  nlohmann::json out;
  out["window"] = window;
  out["cores"] = std::thread::hardware_concurrency();
  auto& results = out["results"];
  auto record
      = [&](std::string shape, size_t n, size_t tasks, double t, double floor) {
          results.push_back({{"shape", shape},
                             {"n", n},
                             {"workstreams", tasks},
                             {"troupe_s", t},
                             {"troupe_us_per_workstream", t * 1e6 / tasks},
                             {"caf_floor_s", floor},
                             {"caf_floor_us_per_task", floor * 1e6 / tasks},
                             {"ratio", floor > 0 ? t / floor : 0}});
        };
  for (auto n : fan_sizes) {
    auto t = run_troupe(sys, fan_out(n));
    auto f = run_floor(sys, n + 1, false);
    record("fan_out_gather", n, n + 1, t, f);
  }
  auto t = run_troupe(sys, chain(chain_len));
  auto f = run_floor(sys, chain_len, true);
  record("chain", chain_len, chain_len, t, f);
  out["journal"] = journal_cost(sys, quick ? 1000 : 10000, quick ? 1 : 5);
  std::cout << out.dump(2) << std::endl;
  return 0;
}
