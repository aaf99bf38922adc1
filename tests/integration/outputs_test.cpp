// Files a user keeps are written whole or not at all: the JSON report and
// the event log of `troupe run`, on a full disk, a read-only file system, or
// a name taken by a directory.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/mount.h>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using troupe::test::names_in;
using nlohmann::json;
using troupe::test::run_troupe;
namespace fs = std::filesystem;

namespace {


// A small tmpfs of its own, unmounted at the end; mounting needs root (or
// CAP_SYS_ADMIN), so `error` says why when there is none.
class small_tmpfs {
public:
  explicit small_tmpfs(const fs::path& dir) : dir_(dir) {
    fs::create_directory(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") != 0)
      error = std::strerror(errno);
    else
      mounted_ = true;
  }

  ~small_tmpfs() {
    if (mounted_)
      ::umount2(dir_.c_str(), MNT_DETACH);
  }

  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  bool mounted() const {
    return mounted_;
  }

  /// Fills every free byte with `name`.
  void fill(const std::string& name) {
    std::ofstream out{dir_ / name, std::ios::binary};
    std::string chunk(4096, 'x');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())))
      out.flush();
  }

  /// Makes the file system read-only; false if it cannot.
  bool make_read_only() {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY,
                   nullptr)
           == 0;
  }

  std::string error;

private:
  fs::path dir_;
  bool mounted_ = false;
};

// A plan of one quick command, whose report holds a bit of output.
std::string quick_plan(const test::temp_dir& dir) {
  return dir.write("plan.yaml", R"(name: quick
workstreams:
  - {id: a, agent: explore, executor: {kind: command, run: "echo done"}}
)");
}

} // namespace

TEST_CASE("reports and event logs are put in place whole", "[integration]") {
  test::temp_dir dir;
  auto plan = quick_plan(dir);
  auto out = dir.path() / "out";
  fs::create_directory(out);
  auto report = (out / "report.json").string();
  auto events = (out / "events.jsonl").string();
  dir.write("out/report.json", "previous report\n");
  dir.write("out/events.jsonl", "previous events\n");
  auto r = run_troupe({"run", plan, "-q", "--workdir", dir.str(), "--report",
                       report, "--events", events});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(std::ifstream{report}).at("status") == "succeeded");
  std::ifstream in{events};
  std::string line;
  std::vector<json> evs;
  while (std::getline(in, line))
    evs.push_back(json::parse(line));
  REQUIRE_FALSE(evs.empty());
  CHECK(evs.front().at("state") == "started");
  CHECK(evs.back().at("kind") == "run_finished");
  CHECK(names_in(out)
        == std::vector<std::string>{"events.jsonl", "report.json"});
}

TEST_CASE("a report or event log named like a directory is an error that "
          "leaves nothing behind",
          "[integration]") {
  test::temp_dir dir;
  auto plan = quick_plan(dir);
  auto out = dir.path() / "out";
  fs::create_directories(out / "report.json");
  fs::create_directories(out / "events.jsonl");
  auto report = (out / "report.json").string();
  auto events = (out / "events.jsonl").string();
  auto r = run_troupe({"run", plan, "-q", "--workdir", dir.str(), "--report",
                       report, "--events", events});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--report: cannot write " + report + ": Is a directory")
        != std::string::npos);
  CHECK(r.err.find("--events: writing " + events + " failed: Is a directory")
        != std::string::npos);
  // The Markdown report still reaches stdout.
  CHECK(r.out.find("# quick: succeeded") != std::string::npos);
  CHECK(fs::is_directory(report));
  CHECK(fs::is_directory(events));
  CHECK(names_in(out)
        == std::vector<std::string>{"events.jsonl", "report.json"});
}

TEST_CASE("on a full or read-only disk the previous report and event log "
          "stay as they were",
          "[integration]") {
  test::temp_dir dir;
  auto plan = quick_plan(dir);
  small_tmpfs disk{dir.path() / "disk"};
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs to fill (" << disk.error
                                                   << "); needs root");
    return;
  }
  auto out = dir.path() / "disk";
  auto report = (out / "report.json").string();
  auto events = (out / "events.jsonl").string();
  dir.write("disk/report.json", "previous report\n");
  dir.write("disk/events.jsonl", "previous events\n");
  disk.fill("filler");
  auto full = run_troupe({"run", plan, "-q", "--workdir", dir.str(), "--report",
                          report, "--events", events});
  CHECK(full.exit_code == 1);
  CHECK(full.err.find("--report: cannot write " + report
                      + ": No space left on device")
        != std::string::npos);
  CHECK(full.err.find("--events: writing " + events
                      + " failed: No space left on device")
        != std::string::npos);
  CHECK(dir.read("disk/report.json") == "previous report\n");
  CHECK(dir.read("disk/events.jsonl") == "previous events\n");
  CHECK(names_in(out)
        == std::vector<std::string>{"events.jsonl", "filler", "report.json"});

  fs::remove(out / "filler");
  REQUIRE(disk.make_read_only());
  auto read_only = run_troupe(
      {"run", plan, "-q", "--workdir", dir.str(), "--report", report});
  CHECK(read_only.exit_code == 1);
  CHECK(read_only.err.find("--report: cannot write " + report
                           + ": Read-only file system")
        != std::string::npos);
  CHECK(dir.read("disk/report.json") == "previous report\n");
  CHECK(names_in(out)
        == std::vector<std::string>{"events.jsonl", "report.json"});
}
