#include "troupe/runtime/result_file.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "troupe/protocol/utf8.hpp"

using namespace troupe;

namespace {

workstream_result applied(const std::string& text) {
  workstream_result r;
  r.output = "output";
  r.summary = "last line";
  apply_result_file(text, r);
  return r;
}

} // namespace

TEST_CASE("a result file gives its summary, changed files and outputs",
          "[runtime]") {
  auto r = applied(R"({"summary": "signed", "files_changed": ["a.ts", "b.ts"],
                       "outputs": {"alg": "HS256", "tests": 12,
                                   "extra": {"x": [1, null]}}})");
  CHECK(r.summary == "signed");
  CHECK(r.files_changed == std::vector<std::string>{"a.ts", "b.ts"});
  CHECK(r.outputs.at("alg") == "HS256");
  CHECK(r.outputs.at("tests") == "12");
  CHECK(r.outputs.at("extra") == R"({"x":[1,null]})");
  CHECK(r.output == "output");
}

TEST_CASE("fields of a result file with the wrong type are ignored",
          "[runtime]") {
  auto r = applied(R"({"summary": 7, "files_changed": ["a", 1, ["b"]],
                       "outputs": ["x"], "other": true})");
  CHECK(r.summary == "last line");
  CHECK(r.files_changed == std::vector<std::string>{"a"});
  CHECK(r.outputs.empty());
  CHECK(r.output == "output");
}

TEST_CASE("a result file that is no JSON object is ignored, saying so",
          "[runtime]") {
  for (auto text : {"", "[1, 2]", "\"text\"", "{\"summary\": ", "{} {}",
                    "{\"summary\": \"\xFF\"}"}) {
    INFO(text);
    auto r = applied(text);
    CHECK(r.summary == "last line");
    CHECK(r.output
          == "output\n[troupe] ignored TROUPE_RESULT: not a JSON object");
  }
}

TEST_CASE("a result file's summary is cut to 4000 bytes of whole characters",
          "[runtime]") {
  std::string e_acute = "\xC3\xA9";
  std::string long_text;
  for (int i = 0; i < 2100; ++i)
    long_text += e_acute;
  auto r = applied("{\"summary\": \"" + long_text + "\"}");
  CHECK(r.summary.size() <= 4000);
  CHECK(is_valid_utf8(r.summary));
  CHECK(r.summary.compare(r.summary.size() - 3, 3, "...") == 0);
}

TEST_CASE("a result file nested deeper than 64 levels is ignored, saying so",
          "[runtime]") {
  // A megabyte of brackets: encoding it as an output would recurse half a
  // million times.
  std::string deep = std::string(500000, '[') + std::string(500000, ']');
  auto r = applied(R"({"summary": "deep", "outputs": {"k": )" + deep + "}}");
  CHECK(r.summary == "last line");
  CHECK(r.outputs.empty());
  CHECK(r.output
        == "output\n[troupe] ignored TROUPE_RESULT: nested deeper than 64 "
           "levels");
  // 64 levels are fine: the file's object, `outputs` and 62 arrays.
  auto fine = std::string(62, '[') + std::string(62, ']');
  auto ok = applied(R"({"outputs": {"k": )" + fine + "}}");
  CHECK(ok.outputs.at("k") == fine);
}
