// Reading plan text: YAML and JSON syntax, bytes that are not UTF-8 or
// not text, and how YAML's scalars, keys and aliases are taken.

#include <cstdint>
#include <initializer_list>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

using nlohmann::json;
using troupe::test::all;
using troupe::test::at;
using troupe::test::load;

namespace {

const std::string fffd = "\xEF\xBF\xBD"; // U+FFFD

/// `n` bytes of noise, the same each run.
std::string noise(size_t n) {
  std::string s;
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s += static_cast<char>(x >> 24);
  }
  return s;
}

} // namespace

TEST_CASE("a YAML syntax error is reported with its line and column",
          "[protocol]") {
  auto r
    = load("name: x\nworkstreams:\n  - id: a\n    owns: [a.ts\n  - id: b\n");
  INFO(all(r.d));
  REQUIRE(r.d.error_count() == 1);
  auto& d = r.d.items().front();
  CHECK(d.path.empty());
  CHECK_THAT(d.message,
             Catch::Contains("invalid YAML at line")
               && Catch::Contains("column"));
}

TEST_CASE("a YAML syntax error names the line it is on", "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: 1\nb: 2\n  c: 3\n", "yaml", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK_THAT(d.items()[0].message, Catch::Contains("line 3, column"));
}

TEST_CASE("each YAML syntax error names its line, column and likely cause",
          "[protocol]") {
  struct row {
    const char* text;
    const char* message;
  };
  auto table = GENERATE(values<row>({
    {"name: x\nworkstreams:\n  - id: a\n    owns: [a.ts\n  - id: b\n",
     "invalid YAML at line 5, column 7: end of sequence flow not found (a '[' "
     "before it is not closed)"},
    {"a: {b: 1\nc: 2\n",
     "invalid YAML at line 2, column 2: end of map flow not found (a '{' "
     "before it is not closed)"},
    {"a: [1, 2]]\n",
     "invalid YAML at line 1, column 10: illegal flow end (a ']' or '}' here "
     "closes nothing)"},
    {"name: x\nworkstreams:\n  - id: a\n   owns: [a]\n",
     "invalid YAML at line 4, column 4: end of sequence not found (check the "
     "indentation of this line)"},
    {"a:\n  - x\n  y: 1\n",
     "invalid YAML at line 3, column 3: end of map not found (check the "
     "indentation of this line)"},
    {"a: 1\nb: 2\n  c: 3\n",
     "invalid YAML at line 3, column 4: illegal map value (check the "
     "indentation, and quote values that contain ': ')"},
    {"title: a: b\n",
     "invalid YAML at line 1, column 9: illegal map value (check the "
     "indentation, and quote values that contain ': ')"},
    {"name: x\nworkstreams:\n\t- id: a\n",
     "invalid YAML at line 3, column 2: illegal block entry (indent with "
     "spaces, not tabs)"},
    {"name: x\nworkstreams:\n  - id: a\n\towns: [a]\n",
     "invalid YAML at line 4, column 1: illegal tab when looking for "
     "indentation (indent with spaces, not tabs)"},
    {"workstreams:\n  - id: a\n    owns: [*nope]\n",
     "invalid YAML at line 3, column 12: the referenced anchor is not "
     "defined: *nope (quote values that start with '*', such as globs)"},
    {"owns: [**/x.ts, a]\n",
     "invalid YAML at line 1, column 8: the referenced anchor is not "
     "defined: **/x.ts (quote values that start with '*', such as globs)"},
    {"owns: [*]\n",
     "invalid YAML at line 1, column 9: alias not found after * (quote "
     "values that start with '*', such as globs)"},
    {"name: \"abc",
     "invalid YAML at line 1, column 11: illegal EOF in scalar (a quote is "
     "not closed)"},
    {"workstreams:\n  - &a {id: a}\n  - &a {id: b}\n  - *a\n",
     "anchor &a defined again at line 3, column 5 (first at line 2, column "
     "5); give each anchor its own name"},
  }));
  CAPTURE(table.text);
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(table.text, "yaml", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK(d.items()[0].path.empty());
  CHECK(d.items()[0].message == table.message);
}

TEST_CASE("a JSON syntax error is reported with its line and column",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("{\n  \"name\": \"x\",\n  \"goal\": ,\n}",
                                      "json", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  CHECK(d.items()[0].path.empty());
  CHECK_THAT(d.items()[0].message,
             Catch::StartsWith("invalid JSON")
               && Catch::Contains("line 3, column 11"));
}

TEST_CASE("invalid UTF-8 in YAML scalars and keys becomes U+FFFD",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("name: a\xFF" "b\n"
                                  "\"k\xFE\": [x\xC3]\n"
                                  "q\xE2\x82: \"t\xED\xA0\x80\"\n",
                                  "yaml", j, d));
  INFO(all(d));
  CHECK(d.items().empty());
  CHECK(j["name"] == "a" + fffd + "b");
  CHECK(j["k" + fffd] == json{"x" + fffd});
  // A surrogate, encoded: each byte is a maximal ill-formed subpart.
  CHECK(j["q" + fffd] == "t" + fffd + fffd + fffd);
  CHECK_NOTHROW(j.dump());
}

TEST_CASE("a YAML plan with invalid UTF-8 decodes to valid strings and "
          "diagnostics",
          "[protocol]") {
  auto r = load("name: \xC0\xAF\nworkstreams:\n"
                "  - {id: a, title: \"T\xF5\", colo\xFFr: x,\n"
                "     executor: {kind: noop}}\n");
  INFO(all(r.d));
  CHECK(r.p.name == fffd + fffd);
  REQUIRE(r.p.workstreams.size() == 1);
  CHECK(r.p.workstreams[0].title == "T" + fffd);
  REQUIRE(r.d.error_count() == 1);
  for (auto& x : r.d.items()) {
    CHECK(troupe::is_valid_utf8(x.path));
    CHECK(troupe::is_valid_utf8(x.message));
  }
}

TEST_CASE("a JSON plan with invalid UTF-8 is refused at its line and column",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text(
    "{\"name\": \"x\",\n \"goal\": \"a\xFF\"}", "json", j, d));
  INFO(all(d));
  REQUIRE(d.items().size() == 1);
  // nlohmann's message ends with the bytes it read, U+FFFD in place of the
  // bad one.
  CHECK(d.items()[0].message
        == "invalid JSON: parse error at line 2, column 12: syntax error "
           "while parsing value - invalid string: ill-formed UTF-8 byte; last "
           "read: '\"a"
             + fffd + "'");
  CHECK(troupe::is_valid_utf8(d.items()[0].message));
}

TEST_CASE("a binary file as plan is refused at its first control character",
          "[protocol]") {
  json j;
  troupe::diagnostics elf;
  CHECK_FALSE(troupe::parse_plan_text(
    std::string{"\x7F" "ELF\x02\x01\x01\0", 8}, "yaml", j, elf));
  REQUIRE(elf.items().size() == 1);
  CHECK(elf.items()[0].message
        == "control character U+0002 at line 1, column 5 (plans are text; is "
           "this a binary file?)");
  for (auto format : {"yaml", "json", ""}) {
    INFO(format);
    troupe::diagnostics d;
    CHECK_FALSE(troupe::parse_plan_text("{\n" + noise(4096), format, j, d));
    INFO(all(d));
    REQUIRE(d.items().size() == 1);
    CHECK_THAT(d.items()[0].message, Catch::StartsWith("control character U+"));
  }
  // No control characters, but no UTF-8 either: a string, not a plan.
  std::string high;
  for (int c = 0x80; c < 0x100; ++c)
    high += static_cast<char>(c);
  auto r = load(high);
  INFO(all(r.d));
  REQUIRE(r.d.items().size() == 1);
  CHECK_THAT(r.d.items()[0].message,
             Catch::StartsWith("expected a plan (an object), got string \""
                               + fffd));
  CHECK(troupe::is_valid_utf8(r.d.items()[0].message));
}

TEST_CASE("plan text starting with a brace is read as JSON, other text as "
          "YAML",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("  {\"a\": [1, \"2\"]}", "", j, d));
  CHECK(j == json{{"a", {1, "2"}}});
  REQUIRE(troupe::parse_plan_text("a: [1, '2']", "", j, d));
  CHECK(j == json{{"a", {1, "2"}}});
  CHECK(d.items().empty());
}

TEST_CASE("YAML scalars become JSON types unless quoted", "[protocol]") {
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("a: true\nb: 'true'\nc: 12\nd: \"12\"\n"
                                  "e: 1.5\nf: ~\ng: null\nh: plain text\n"
                                  "i: |\n  false\nj: -3\nk:\n",
                                  "yaml", j, d));
  CHECK(j["a"] == true);
  CHECK(j["b"] == "true");
  CHECK(j["c"] == 12);
  CHECK(j["c"].is_number_integer());
  CHECK(j["d"] == "12");
  CHECK(j["e"] == 1.5);
  CHECK(j["f"].is_null());
  CHECK(j["g"].is_null());
  CHECK(j["h"] == "plain text");
  CHECK(j["i"] == "false\n");
  CHECK(j["j"] == -3);
  CHECK(j["k"].is_null());
}

TEST_CASE("a YAML integer too large for any number stays text, not infinity",
          "[protocol]") {
  auto huge = "1" + std::string(400, '0');
  json j;
  troupe::diagnostics d;
  REQUIRE(troupe::parse_plan_text("a: " + huge + "\nb: 123456789012345678901\n",
                                  "yaml", j, d));
  CHECK(j["a"] == huge);
  CHECK(j["b"] == 123456789012345678901.0);
  auto r = load("workstreams:\n  - {id: a, timeout_s: " + huge
                + ", executor: {kind: noop}}\n");
  INFO(all(r.d));
  CHECK_THAT(at(r.d, "workstreams[0] (a).timeout_s"),
             Catch::StartsWith("expected a number, got string \"1000"));
  CHECK(r.d.error_count() == 1);
}

TEST_CASE("a duplicate YAML key is refused", "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: 1\nb: 2\na: 3\n", "yaml", j, d));
  INFO(all(d));
  CHECK_THAT(at(d, "a"), Catch::Contains("duplicate key"));
}

TEST_CASE("a self-referencing YAML alias is refused, not followed forever",
          "[protocol]") {
  json j;
  troupe::diagnostics d;
  CHECK_FALSE(troupe::parse_plan_text("a: &x [*x]\n", "yaml", j, d));
  CHECK_FALSE(d.ok());
}
