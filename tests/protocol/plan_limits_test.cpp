// Hostile plans: whatever the input, decoding ends soon with a bounded
// amount of memory and an error that says what is wrong and where.

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "support/diagnostics.hpp"
#include "support/temp_dir.hpp"
#include "troupe/protocol/plan_io.hpp"

using nlohmann::json;

namespace {

using troupe::test::all;

/// The one error in `d`, rendered; fails unless there is exactly one.
std::string only_error(const troupe::diagnostics& d) {
  INFO(all(d));
  REQUIRE(d.error_count() == 1);
  for (auto& x : d.items())
    if (!x.warning)
      return troupe::to_string(x);
  return "";
}

/// Nine-fold YAML aliases `levels` deep: 9^levels values once expanded.
std::string alias_bomb(int levels) {
  std::string text = "l0: &l0 [x,x,x,x,x,x,x,x,x]\n";
  for (int i = 1; i < levels; ++i) {
    auto prev = "*l" + std::to_string(i - 1);
    auto name = "l" + std::to_string(i);
    text += name + ": &" + name + " [";
    for (int k = 0; k < 9; ++k)
      text += (k == 0 ? "" : ",") + prev;
    text += "]\n";
  }
  return text;
}

/// Arrays nested so that the innermost value is `depth` levels down.
std::string nested(size_t depth, const std::string& innermost) {
  return std::string(depth, '[') + innermost + std::string(depth, ']');
}

/// A flow sequence of `n` values, as JSON and YAML read it: n + 1 values.
std::string flat(size_t n) {
  std::string text = "[";
  for (size_t i = 0; i < n; ++i)
    text += i == 0 ? "0" : ",0";
  return text + "]";
}

/// A JSON plan of `n` empty workstreams and `gates` empty gates.
std::string empty_elements(size_t n, size_t gates) {
  std::string text = R"({"workstreams": [)";
  for (size_t i = 0; i < n; ++i)
    text += i == 0 ? "{}" : ",{}";
  text += R"(], "gates": [)";
  for (size_t i = 0; i < gates; ++i)
    text += i == 0 ? "{}" : ",{}";
  return text + "]}";
}

} // namespace

TEST_CASE("a YAML alias bomb is refused before it is expanded", "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(alias_bomb(9), "yaml", j, d));
  CHECK(only_error(d)
        == "plan is too large: more than 1000000 values after expanding YAML "
           "aliases");
  // Nothing half-built comes out.
  CHECK(j.is_null());
}

TEST_CASE("YAML aliases expanding to fewer values than the limit still load",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  // 9^6 = 531,441 values.
  REQUIRE(troupe::parse_plan_text(alias_bomb(6), "yaml", j, d));
  INFO(all(d));
  CHECK(d.items().empty());
  CHECK(j["l5"].size() == 9);
  CHECK(j["l5"][8][8][8][8][8][8] == "x");
}

TEST_CASE("plans with more values than the limit as written are refused",
          "[protocol]") {
  for (auto format : {"yaml", "json"}) {
    INFO(format);
    json j;
    troupe::diagnostics d;
    CHECK_FALSE(troupe::parse_plan_text(flat(1'000'000), format, j, d));
    CHECK(only_error(d) == "plan is too large: more than 1000000 values");
  }
  json j;
  troupe::diagnostics fits;
  CHECK(troupe::parse_plan_text(flat(999'999), "json", j, fits));
}

TEST_CASE("YAML nested deeper than 64 levels is refused at its line and "
          "column",
          "[protocol]") {
  json j;
  troupe::diagnostics ok;
  CHECK(troupe::parse_plan_text(nested(64, "x"), "yaml", j, ok));
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: " + nested(65, "x"), "yaml", j, d));
  CHECK(only_error(d) == "nested deeper than 64 levels at line 1, column 68");
  // Deeper than yaml-cpp goes (it stops at 2000, saying "bad file").
  troupe::diagnostics deeper;
  CHECK_FALSE(
    troupe::parse_plan_text(nested(100'000, "x"), "yaml", j, deeper));
  CHECK_THAT(only_error(deeper), Catch::StartsWith("nested deeper than 64"));
}

TEST_CASE("YAML nested deeper than 64 levels through aliases is refused",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(
    "a: &a " + nested(40, "x") + "\nb: " + nested(40, "*a") + "\n", "yaml", j,
    d));
  CHECK_THAT(only_error(d),
             Catch::StartsWith("b[0][0]")
               && Catch::EndsWith("nested deeper than 64 levels after "
                                  "expanding YAML aliases (line 1)"));
}

TEST_CASE("JSON nested deeper than 64 levels is refused at its path",
          "[protocol]") {
  json j;
  troupe::diagnostics ok;
  CHECK(troupe::parse_plan_text(nested(64, "1"), "json", j, ok));
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(
    R"({"workstreams": [{"id": "a", "owns": )" + nested(63, "1") + "}]}",
    "json", j, d));
  // The 63rd array of `owns` would be 65 levels down.
  std::string where = "workstreams[0].owns";
  for (int i = 1; i < 63; ++i)
    where += "[0]";
  CHECK(only_error(d) == where + ": nested deeper than 64 levels");
  troupe::diagnostics deeper;
  CHECK_FALSE(
    troupe::parse_plan_text(nested(1'000'000, "1"), "json", j, deeper));
  CHECK_THAT(only_error(deeper),
             Catch::EndsWith("nested deeper than 64 levels"));
}

TEST_CASE("plan text larger than 16 MiB is refused before it is parsed",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(std::string((16 << 20) + 1, ' '), "yaml",
                                      j, d));
  CHECK(only_error(d)
        == "plan is too large: 16777217 bytes (at most 16 MiB)");
}

TEST_CASE("a plan file larger than 16 MiB is refused without reading it",
          "[protocol]") {
  troupe::test::temp_dir dir;
  auto path = dir.write("huge.yaml", "");
  // Sparse: nothing is written, but a read would go on for 4 GiB.
  std::filesystem::resize_file(path, uintmax_t{4} << 30);
  troupe::diagnostics d;
  troupe::load_plan_file(path, {}, d);
  CHECK(only_error(d)
        == "cannot read plan file \"" + path
             + "\": too large: 4294967296 bytes (at most 16 MiB)");
}

TEST_CASE("a directory, a FIFO or a device as plan file is refused, not read",
          "[protocol]") {
  troupe::test::temp_dir dir;
  troupe::diagnostics d;
  troupe::load_plan_file(dir.str(), {}, d);
  CHECK(only_error(d)
        == "cannot read plan file \"" + dir.str() + "\": is a directory");

  // Nobody writes to it: opening it to read would wait forever.
  auto fifo = (dir.path() / "plan.yaml").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  troupe::diagnostics f;
  troupe::load_plan_file(fifo, {}, f);
  CHECK(only_error(f)
        == "cannot read plan file \"" + fifo
             + "\": not a regular file (a FIFO)");

  // Never ends.
  troupe::diagnostics z;
  troupe::load_plan_file("/dev/zero", {}, z);
  CHECK(only_error(z)
        == "cannot read plan file \"/dev/zero\": not a regular file (a "
           "character device)");
}

TEST_CASE("more than 200,000 workstreams or 1,000 gates are refused",
          "[protocol]") {
  troupe::diagnostics d;
  troupe::load_plan_text(empty_elements(200'001, 1'001), "json", {}, d);
  INFO(all(d));
  CHECK(d.error_count() == 2);
  CHECK_THAT(all(d),
             Catch::Contains("error: workstreams: too many: 200001 (at most "
                             "200000)\n")
               && Catch::Contains("error: gates: too many: 1001 (at most "
                                  "1000)\n"));
}

TEST_CASE("a plan of 100,000 workstreams loads", "[protocol]") {
  // The benchmarks' fan-out: 100,000 workstreams and one gathering them.
  json p = {{"name", "fan-out"}, {"settings", {{"max_phase_width", 100'000}}}};
  auto& ws = p["workstreams"];
  json gather = {{"id", "gather"}, {"executor", {{"kind", "noop"}}}};
  for (int i = 0; i < 100'000; ++i) {
    auto id = "w" + std::to_string(i);
    ws.push_back({{"id", id},
                  {"agent", "explore"},
                  {"persona", "analyzer"},
                  {"executor", {{"kind", "noop"}}}});
    gather["depends_on"].push_back(id);
  }
  ws.push_back(gather);
  troupe::diagnostics d;
  auto plan = troupe::load_plan_text(p.dump(), "json", {}, d);
  INFO(all(d).substr(0, 2000));
  CHECK(d.ok());
  CHECK(plan.workstreams.size() == 100'001);
}

TEST_CASE("a timeout longer than a year is refused wherever it is named",
          "[protocol]") {
  auto plan_with = [](const std::string& where) {
    std::string ws = "{id: a, executor: {kind: command, run: 'true'}";
    std::string text = "name: t\n";
    if (where == "settings")
      text += "settings: {default_timeout_s: 1e300}\n";
    text += "workstreams:\n  - " + ws;
    if (where == "workstream")
      text += ", timeout_s: 1e300";
    if (where == "until")
      text += ", until: {run: 'true', timeout_s: 1e300}";
    text += "}\n";
    if (where == "gate")
      text += "gates:\n  - {id: g, after: [a], checks: [{run: 'true', "
              "timeout_s: 1e300}]}\n";
    return text;
  };
  for (auto [where, path] :
       {std::pair{"settings", "settings.default_timeout_s"},
        std::pair{"workstream", "workstreams[0] (a).timeout_s"},
        std::pair{"until", "workstreams[0] (a).until.timeout_s"},
        std::pair{"gate", "gates[0] (g).checks[0].timeout_s"}}) {
    INFO(where);
    auto r = troupe::test::load(plan_with(where), "yaml", {});
    CHECK(only_error(r.d)
          == std::string{path} + ": must be at most 31536000 (a year), got "
               + "1e+300");
  }
  auto r = troupe::test::load(plan_with("none"), "yaml", {});
  CHECK(r.d.ok());
}

TEST_CASE("a workstream may not take the id a gate gives its fixers or checks",
          "[protocol]") {
  auto with = [](const std::string& id) {
    return "name: t\nworkstreams:\n  - {id: a}\n  - {id: " + id
           + ", depends_on: [a]}\ngates:\n  - {id: g, after: [a]}\n";
  };
  auto r = troupe::test::load(with("g.fix1"), "yaml", {});
  CHECK(only_error(r.d)
        == "workstreams[1] (g.fix1).id: \"g.fix1\" is how gate \"g\" names its "
           "fixers; choose another id");
  r = troupe::test::load(with("g.check12"), "yaml", {});
  CHECK(only_error(r.d)
        == "workstreams[1] (g.check12).id: \"g.check12\" is how gate \"g\" "
           "names its checks; choose another id");
  for (auto fine : {"g.fix", "g.fixed", "h.fix1", "g.fix1a"}) {
    INFO(fine);
    CHECK(troupe::test::load(with(fine), "yaml", {}).d.ok());
  }
}
