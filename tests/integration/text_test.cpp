// Any bytes in, valid output out: commands that print ill-formed UTF-8,
// characters cut at every size limit, CJK, emoji, binary and terminal
// escapes, through `troupe run` and a cluster, with retries and gates.

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/cluster.hpp"
#include "support/temp_dir.hpp"
#include "troupe/protocol/utf8.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

const std::string e_acute = "\xC3\xA9";        // 2 bytes
const std::string han = "\xE6\xBC\xA2";        // 3 bytes
const std::string grin = "\xF0\x9F\x98\x80";   // 4 bytes

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += s;
  return out;
}

std::string read_file(const std::string& file) {
  std::ifstream in{file, std::ios::binary};
  return {std::istreambuf_iterator<char>(in),
          std::istreambuf_iterator<char>()};
}

// Writes the fixtures the commands print and returns the plan: workstreams
// whose output crosses every limit Troupe cuts text at (summaries at 200
// bytes, output tails at 64 KiB, retry context at 8,000, gate output at
// 4,000) at every offset within a character, plus a reader that receives
// all of them as context.
std::string hostile_plan(const temp_dir& dir, const std::string& name) {
  std::string ws;
  std::string all;
  int n = 0;
  auto add = [&](const std::string& body, const std::string& extra = {}) {
    auto id = "t" + std::to_string(n++);
    ws += "  - id: " + id + "\n    executor: {kind: command, run: "
          + json(body).dump() + "}\n" + extra;
    all += (all.empty() ? "" : ", ") + id;
  };
  // Characters of 2, 3 and 4 bytes, cut at the summary's 200 bytes at
  // every offset.
  for (auto& ch : {e_acute, han, grin})
    for (size_t pad = 0; pad < ch.size(); ++pad) {
      auto file = "sum" + std::to_string(n) + ".txt";
      dir.write(file, std::string(pad, 'x') + repeat(ch, 300 / ch.size())
                        + "\n");
      add("cat " + file);
    }
  // Output tails of 64 KiB that begin at every offset within a character,
  // and end inside one.
  for (size_t extra = 0; extra < 3; ++extra) {
    auto file = "big" + std::to_string(n) + ".txt";
    dir.write(file, repeat(han, 70000 / 3) + std::string(extra + 1, 'y')
                      + han.substr(0, 2));
    add("cat " + file);
  }
  // Ill-formed sequences, NUL bytes, binary, terminal escapes.
  dir.write("bad.txt", "ok \xFF\xFE bad \xC3 \xED\xA0\x80 \xC0\xAF end\n");
  add("cat bad.txt");
  std::string binary;
  for (int round = 0; round < 4; ++round)
    for (int b = 0; b < 256; ++b)
      binary += static_cast<char>(b);
  dir.write("binary.dat", binary);
  add("cat binary.dat; cat binary.dat >&2");
  dir.write("escapes.txt", "\x1b[2J\x1b[31mred\x1b]0;title\x07 \r\n");
  add("cat escapes.txt");
  // Result files: ill-formed JSON text, a huge summary, a FIFO, /dev/zero.
  dir.write("bad-result.json", "{\"summary\": \"\xFF\xFE\"}");
  add("cp bad-result.json \"$TROUPE_RESULT\"");
  dir.write("huge-result.json",
            "{\"summary\": \"" + repeat(e_acute, 50000) + "x\", "
              + "\"outputs\": {\"k\": \"" + repeat(grin, 1000) + "\"}}");
  add("cp huge-result.json \"$TROUPE_RESULT\"");
  add("mkfifo \"$TROUPE_RESULT\"");
  add("ln -s /dev/zero \"$TROUPE_RESULT\"");
  // A retry whose first attempt fails with 9,000 bytes of CJK text, so the
  // retry context cuts it; the second attempt keeps the context it got.
  dir.write("retry.txt", "z" + repeat(han, 3000));
  add("if [ \"$TROUPE_ATTEMPT\" = 1 ]; then cat retry.txt; exit 1; fi; "
      "cp \"$TROUPE_CONTEXT\" retry-context.json",
      "    retries: 1\n");
  std::string gate_after = all;
  // The reader gets every result above as its context.
  ws += "  - id: reader\n    depends_on: [" + all
        + "]\n    executor: {kind: command, run: \"cp \\\"$TROUPE_CONTEXT\\\" "
          "reader-context.json\"}\n";
  // A gate whose check prints 5,000 bytes of emoji and fails, with a fixer
  // that keeps its context; what the gate guards is blocked.
  dir.write("gate.txt", "ab" + repeat(grin, 1250) + "\n");
  ws += "  - id: guarded\n    depends_on: [reader]\n    executor: {kind: noop}\n";
  return "name: " + name + "\nsettings: {max_parallel_agents: 4, "
         "on_failure: continue}\nworkstreams:\n" + ws
         + "gates:\n  - id: g\n    after: [reader]\n    checks: [{run: \"cat "
           "gate.txt; exit 1\"}]\n    remediate: {persona: debugger, "
           "max_attempts: 1, executor: {kind: command, run: \"cp "
           "\\\"$TROUPE_CONTEXT\\\" fix-context.json\"}}\n";
}

// Every text Troupe wrote for the run is well-formed UTF-8 and JSON where
// it should be, and what the terminal got has no escape sequences.
void check_outputs(const temp_dir& dir, const cli_result& r) {
  CHECK(is_valid_utf8(r.out));
  CHECK(is_valid_utf8(r.err));
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.err.find('\x1b') == std::string::npos);
  auto report_text = read_file(dir.str() + "/report.json");
  REQUIRE(is_valid_utf8(report_text));
  auto report = json::parse(report_text); // throws on ill-formed UTF-8
  CHECK(report.at("status") == "blocked");
  std::map<std::string, json> by_id;
  for (auto& w : report.at("workstreams"))
    by_id[w.at("id").get<std::string>()] = w;
  for (auto& [id, w] : by_id) {
    INFO(id << ": " << w.dump());
    if (id == "guarded")
      CHECK(w.at("status") == "blocked");
    else
      CHECK(w.at("status") == "succeeded");
  }
  CHECK(by_id.at("t19").at("attempts") == 2);
  // Summaries cut at 200 bytes keep whole characters.
  for (int i = 0; i < 9; ++i) {
    auto summary = by_id.at("t" + std::to_string(i)).at("summary")
                     .get<std::string>();
    CHECK(summary.size() <= 200);
    CHECK(summary.find("\xEF\xBF\xBD") == std::string::npos);
  }
  // Ill-formed input became U+FFFD.
  CHECK(by_id.at("t12").at("summary").get<std::string>().find(
          "\xEF\xBF\xBD")
        != std::string::npos);
  // The result file with a huge summary was cut; the unreadable ones were
  // ignored, saying why.
  CHECK(by_id.at("t15").at("output").get<std::string>().find(
          "ignored TROUPE_RESULT: not a JSON object")
        != std::string::npos);
  CHECK(by_id.at("t16").at("output").get<std::string>().find(
          "ignored TROUPE_RESULT")
        == std::string::npos);
  CHECK(by_id.at("t16").at("summary").get<std::string>().size() <= 4000);
  CHECK(by_id.at("t16").at("outputs").at("k").get<std::string>().size()
        == 4000);
  for (auto id : {"t17", "t18"})
    CHECK(by_id.at(id).at("output").get<std::string>().find(
            "ignored TROUPE_RESULT: not a regular file")
          != std::string::npos);
  auto gate = report.at("gates").at(0);
  CHECK(gate.at("status") == "failed");
  auto events = read_file(dir.str() + "/events.jsonl");
  CHECK(is_valid_utf8(events));
  std::istringstream lines{events};
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    CHECK_NOTHROW(json::parse(line));
    ++n;
  }
  CHECK(n > 40);
  for (auto file : {"reader-context.json", "retry-context.json",
                    "fix-context.json"}) {
    INFO(file);
    auto text = read_file(dir.str() + "/" + file);
    CHECK(is_valid_utf8(text));
    CHECK_NOTHROW(json::parse(text));
  }
  auto retry = json::parse(read_file(dir.str() + "/retry-context.json"));
  auto prev = retry.at("previous_attempts").at(0).at("output")
                .get<std::string>();
  CHECK(prev.size() <= 8000);
  CHECK(prev.size() > 7990);
  auto fix = json::parse(read_file(dir.str() + "/fix-context.json"));
  auto detail = fix.at("gate").at("checks").at(0).at("detail")
                  .get<std::string>();
  CHECK(detail.find(grin) != std::string::npos);
  CHECK(detail.find("\xEF\xBF\xBD") == std::string::npos);
}

} // namespace

TEST_CASE("whatever bytes commands print, run writes valid UTF-8 everywhere",
          "[integration]") {
  temp_dir dir;
  auto plan = dir.write("plan.yaml", hostile_plan(dir, "hostile"));
  auto r = run_troupe({"run", plan, "--report", dir.str() + "/report.json",
                       "--events", dir.str() + "/events.jsonl"},
                      dir.str());
  INFO(r.err);
  CHECK(r.exit_code == 1); // the gate blocked `guarded`
  check_outputs(dir, r);
}

TEST_CASE("a hostile run on a coordinator leaves a run beside it untouched",
          "[integration][cluster]") {
  temp_dir dir;
  temp_dir calm;
  coordinator c{{"--slots", "0"}};
  auto w1 = start_worker(c, "w1", 3);
  auto w2 = start_worker(c, "w2", 3);
  auto plan = dir.write("plan.yaml", hostile_plan(dir, "hostile"));
  std::string innocent = "name: innocent\nworkstreams:\n";
  for (int i = 0; i < 20; ++i)
    innocent += "  - id: w" + std::to_string(i)
                + "\n    executor: {kind: command, run: \"echo fine "
                + std::to_string(i) + "\"}\n";
  auto calm_plan = calm.write("plan.yaml", innocent);
  submission hostile{{"submit", plan, "--coordinator", c.address(),
                      "--report", dir.str() + "/report.json", "--events",
                      dir.str() + "/events.jsonl"},
                     dir.str()};
  submission quiet{{"submit", calm_plan, "--coordinator", c.address(),
                    "--report", calm.str() + "/report.json"},
                   calm.str()};
  auto r = hostile.get();
  auto q = quiet.get();
  INFO(r.err);
  CHECK(r.exit_code == 1);
  check_outputs(dir, r);
  INFO(q.err);
  CHECK(q.exit_code == 0);
  auto calm_report = read_json(calm.str() + "/report.json");
  CHECK(calm_report.at("status") == "succeeded");
  CHECK(calm_report.at("workstreams").size() == 20);
  // The coordinator still takes work.
  auto again = run_troupe({"submit", calm_plan, "--coordinator", c.address()},
                          calm.str());
  CHECK(again.exit_code == 0);
}
