// plan_yaml: plans written for people to read and edit, which read back as
// the same plan whatever their text holds.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/plan_io.hpp"

using namespace troupe;

TEST_CASE("a plan written as YAML reads back as itself, whatever its text",
          "[protocol][goal]") {
  goal_options opts;
  opts.executor.kind = "command";
  opts.executor.run = "true";
  const std::vector<std::string> texts = {
    "| a | b |\n| - | - |\n| 1 | 2 |",
    "make |\ngrep x",
    "first line\nends in a pipe |",
    "w",
    "yes",
    "~",
    "- a list?",
    "key: value",
    "# a comment",
    "1.5",
    "0x1F",
    "null",
    "tab\tinside\nand a line",
    "  leading spaces\nkept",
    "trailing newline\n",
    "\xc3\xa9t\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x9a\x80\nnon-ASCII",
    "quotes \" and ' and \\ backslash",
  };
  auto p = plan_from_tasks({"a", "b"}, opts);
  for (auto& text : texts) {
    INFO(text);
    p.goal = text;
    p.workstreams[0].title = text;
    p.workstreams[0].prompt = text;
    p.workstreams[1].executor.run = text;
    auto yaml = plan_yaml(p);
    diagnostics d;
    auto back = load_plan_text(yaml, "yaml", {}, d);
    INFO(yaml);
    REQUIRE(d.ok());
    CHECK(back.goal == text);
    CHECK(back.workstreams[0].title == text);
    CHECK(back.workstreams[0].prompt == text);
    CHECK(back.workstreams[1].executor.run == text);
    CHECK(json_text(back) == json_text(p));
  }
}
