// Troupe across processes on loopback, against the bare-CAF floor.
//
// The bench process is the coordinator: it publishes an orchestrator and
// starts real `troupe worker` processes that join it. It measures
//   1. throughput: 10,000 no-op workstreams scattered over 2 workers and
//      gathered (workstreams per second);
//   2. scaling: 64 workstreams sleeping 100 ms each on 1, 2, 4 and 8
//      workers of one slot (wall time against the ideal 6.4 s / workers);
//   3. latency: one remote workstream from dispatch to accepted result,
//      against a bare CAF request/response to an actor in another process.
// and prints JSON.
//
//   cluster_bench [--troupe PATH] [--quick]
//   cluster_bench --echo-server       (the floor's remote side; internal)

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "sink.hpp"
#include "troupe/actors/orchestrator.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/runtime/executors.hpp"

extern char** environ;

using namespace troupe;
using clock_type = std::chrono::steady_clock;

namespace {

using echo_atom = caf::atom_constant<caf::atom("echo")>;
constexpr echo_atom echo_atom_v{};
using echo_actor
  = caf::typed_actor<caf::replies_to<echo_atom, uint64_t>::with<uint64_t>>;

echo_actor::behavior_type echo_impl() {
  return {[](echo_atom, uint64_t x) { return x; }};
}

/// A child process, stopped (SIGTERM) and reaped at the end.
class child {
public:
  explicit child(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 0, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 0, 0);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }

  ~child() {
    if (pid_ > 0) {
      // An idle worker drains at once and leaves.
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }

  child(const child&) = delete;
  child& operator=(const child&) = delete;

private:
  pid_t pid_ = -1;
};

/// The coordinator side: an orchestrator published on a loopback port.
struct cluster {
  caf::actor_system& sys;
  orchestrator_actor orch;
  uint16_t port = 0;
  std::string troupe;
  std::vector<std::unique_ptr<child>> workers;
  int generation = 0;

  cluster(caf::actor_system& sys, std::string troupe)
    : sys(sys), troupe(std::move(troupe)) {
    orch = spawn_orchestrator(sys, {});
    auto bound = sys.middleman().publish(orch, 0, "127.0.0.1", true);
    if (!bound)
      throw std::runtime_error("cannot publish: " + sys.render(bound.error()));
    port = *bound;
  }

  ~cluster() {
    workers.clear();
    stop_orchestrator(sys, orch);
  }

  int32_t joined() {
    caf::scoped_actor self{sys};
    int32_t n = 0;
    self->request(orch, std::chrono::seconds(5), nodes_atom_v, std::string{})
      .receive(
        [&](const std::vector<node_status>& nodes) {
          for (auto& x : nodes)
            n += x.state == "joined" ? 1 : 0;
        },
        [](const caf::error&) {});
    return n;
  }

  /// Starts `n` workers of `slots` each and waits until all joined.
  void start_workers(int n, int slots) {
    workers.clear();
    ++generation;
    auto before = joined(); // lost ones no longer count
    for (int i = 0; i < n; ++i)
      workers.push_back(std::make_unique<child>(std::vector<std::string>{
        troupe, "worker", "--join", "127.0.0.1:" + std::to_string(port),
        "--slots", std::to_string(slots), "--name",
        "g" + std::to_string(generation) + "w" + std::to_string(i)}));
    // Joining is asynchronous; ask until they are all in.
    auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (joined() < n && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (joined() < n)
      throw std::runtime_error("workers did not join");
    (void) before;
  }

  void stop_workers() {
    workers.clear();
    auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (joined() > 0 && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  /// Seconds from submitting `p` to its report.
  double run(const plan& p) {
    caf::scoped_actor self{sys};
    auto observer = sys.spawn(troupe::bench::sink, caf::actor{self});
    auto start = clock_type::now();
    bool ok = false;
    self->request(orch, std::chrono::seconds(30), run_atom_v, p,
                  run_options{}, observer)
      .receive([](const std::string&) {},
               [&](const caf::error& err) {
                 std::cerr << "run refused: " << sys.render(err) << "\n";
               });
    self->receive([&](bool succeeded) { ok = succeeded; },
                  caf::after(std::chrono::minutes(5)) >> [] {});
    if (!ok)
      std::cerr << p.name << ": did not succeed\n";
    return std::chrono::duration<double>(clock_type::now() - start).count();
  }
};

plan fan_out(size_t n, const std::string& kind, double seconds,
             int32_t parallel) {
  plan p;
  p.name = "fan-" + std::to_string(n);
  p.settings.max_parallel_agents = parallel;
  p.settings.max_phase_width = static_cast<int32_t>(n + 1);
  workstream gather;
  gather.id = "gather";
  gather.agent = agent_kind::explore;
  gather.persona = "analyzer";
  for (size_t i = 0; i < n; ++i) {
    workstream w;
    w.id = "w" + std::to_string(i);
    w.agent = agent_kind::explore;
    w.persona = "analyzer";
    w.executor.kind = kind;
    w.executor.seconds = seconds;
    gather.depends_on.push_back(w.id);
    p.workstreams.push_back(std::move(w));
  }
  if (kind == "noop")
    p.workstreams.push_back(std::move(gather));
  return p;
}

int echo_server() {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto echo = sys.spawn(echo_impl);
  auto port = sys.middleman().publish(echo, 0, "127.0.0.1");
  if (!port)
    return 1;
  std::cout << *port << std::endl;
  // Serves until the bench kills it.
  pause();
  return 0;
}

// Median of `n` round trips to the echo actor in another process, in µs.
double caf_round_trip_us(caf::actor_system& sys, const std::string& self_path,
                         int n) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  std::string path = self_path;
  std::string flag = "--echo-server";
  char* argv[] = {path.data(), flag.data(), nullptr};
  pid_t pid;
  posix_spawn(&pid, argv[0], &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n')
    line += c;
  close(fds[0]);
  auto echo = sys.middleman().remote_actor<echo_actor>(
    "127.0.0.1", static_cast<uint16_t>(std::stoi(line)));
  std::vector<double> samples;
  if (echo) {
    caf::scoped_actor self{sys};
    for (int i = 0; i < n; ++i) {
      auto t0 = clock_type::now();
      self->request(*echo, std::chrono::seconds(5), echo_atom_v, uint64_t(i))
        .receive([](uint64_t) {}, [](const caf::error&) {});
      samples.push_back(
        std::chrono::duration<double, std::micro>(clock_type::now() - t0)
          .count());
    }
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  if (samples.empty())
    return -1;
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  std::string troupe = TROUPE_BINARY;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--echo-server") == 0)
      return echo_server();
    if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (std::strcmp(argv[i], "--troupe") == 0 && i + 1 < argc)
      troupe = argv[++i];
  }
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  nlohmann::json out;
  cluster c{sys, troupe};

  // 1. Throughput over two workers.
  auto n = quick ? size_t{1000} : size_t{10000};
  c.start_workers(2, 64);
  auto t = c.run(fan_out(n, "noop", 0, 128));
  out["throughput"] = {{"workers", 2},
                       {"workstreams", n + 1},
                       {"seconds", t},
                       {"workstreams_per_s", (n + 1) / t}};

  // 3. Latency of one remote workstream, median of many.
  int samples = quick ? 20 : 200;
  std::vector<double> rtt;
  plan one = fan_out(1, "noop", 0, 1);
  one.workstreams.resize(1);
  for (int i = 0; i < samples; ++i)
    rtt.push_back(c.run(one) * 1e6);
  std::sort(rtt.begin(), rtt.end());
  auto floor = caf_round_trip_us(sys, argv[0], samples);
  out["latency"] = {{"troupe_run_us_median", rtt[rtt.size() / 2]},
                    {"caf_request_us_median", floor},
                    {"ratio", floor > 0 ? rtt[rtt.size() / 2] / floor : 0},
                    {"samples", samples}};
  c.stop_workers();

  // 2. Scaling of 64 x 100 ms over 1, 2, 4, 8 one-slot workers.
  auto& scaling = out["scaling"];
  auto count = quick ? size_t{16} : size_t{64};
  for (int workers : quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4, 8}) {
    c.start_workers(workers, 1);
    auto wall = c.run(fan_out(count, "sleep", 0.1, 64));
    auto ideal = count * 0.1 / workers;
    scaling.push_back({{"workers", workers},
                       {"workstreams", count},
                       {"wall_s", wall},
                       {"ideal_s", ideal},
                       {"efficiency", ideal / wall}});
    c.stop_workers();
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
