#include "troupe/runtime/files.hpp"

#include <algorithm>
#include <filesystem>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "support/temp_dir.hpp"

using namespace troupe;
using troupe::test::names_in;
namespace fs = std::filesystem;

namespace {


} // namespace

TEST_CASE("an atomic write creates a file, replaces one and leaves nothing "
          "else",
          "[runtime]") {
  test::temp_dir dir;
  auto file = dir.str() + "/report.json";
  REQUIRE_FALSE(write_file_atomically(file, "first\n"));
  CHECK(dir.read("report.json") == "first\n");
  REQUIRE_FALSE(write_file_atomically(file, "second\n"));
  CHECK(dir.read("report.json") == "second\n");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"report.json"});
}

TEST_CASE("an atomic write keeps the replaced file's permissions",
          "[runtime]") {
  test::temp_dir dir;
  auto file = dir.write("report.json", "old");
  REQUIRE(::chmod(file.c_str(), 0640) == 0);
  REQUIRE_FALSE(write_file_atomically(file, "new"));
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("an atomic write through a symbolic link replaces its target",
          "[runtime]") {
  test::temp_dir dir;
  auto target = dir.write("real.json", "old");
  auto link = dir.str() + "/link.json";
  fs::create_symlink(target, link);
  REQUIRE_FALSE(write_file_atomically(link, "new"));
  CHECK(fs::is_symlink(link));
  CHECK(dir.read("real.json") == "new");
}

TEST_CASE("an atomic write that fails leaves the target and no temporary "
          "file",
          "[runtime]") {
  test::temp_dir dir;
  SECTION("the target is a directory") {
    fs::create_directory(dir.path() / "report.json");
    auto ec = write_file_atomically(dir.str() + "/report.json", "text");
    CHECK(ec == std::errc::is_a_directory);
    CHECK(fs::is_directory(dir.path() / "report.json"));
    CHECK(names_in(dir.path()) == std::vector<std::string>{"report.json"});
  }
  SECTION("the directory does not exist") {
    auto ec = write_file_atomically(dir.str() + "/none/report.json", "text");
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(names_in(dir.path()).empty());
  }
}

TEST_CASE("an atomic write to a device writes it in place", "[runtime]") {
  CHECK_FALSE(write_file_atomically("/dev/null", "text"));
  CHECK(fs::is_character_file("/dev/null"));
  CHECK(write_file_atomically("/dev/full", "text")
        == std::errc::no_space_on_device);
  CHECK(fs::is_character_file("/dev/full"));
}

TEST_CASE("a staged file appears under its name only when committed",
          "[runtime]") {
  test::temp_dir dir;
  auto file = dir.write("events.jsonl", "previous\n");
  staged_file staged;
  REQUIRE_FALSE(staged.open(file));
  CHECK(staged.partial_path() == file + ".partial");
  staged.write("one\n");
  staged.flush();
  CHECK(dir.read("events.jsonl.partial") == "one\n");
  CHECK(dir.read("events.jsonl") == "previous\n");
  staged.write("two\n");
  REQUIRE_FALSE(staged.commit());
  CHECK_FALSE(staged.is_open());
  CHECK(dir.read("events.jsonl") == "one\ntwo\n");
  CHECK(names_in(dir.path()) == std::vector<std::string>{"events.jsonl"});
}

TEST_CASE("a staged file that cannot be put in place keeps the previous one",
          "[runtime]") {
  test::temp_dir dir;
  fs::create_directory(dir.path() / "events.jsonl");
  staged_file staged;
  REQUIRE_FALSE(staged.open(dir.str() + "/events.jsonl"));
  staged.write("one\n");
  CHECK(staged.commit() == std::errc::is_a_directory);
  CHECK(fs::is_directory(dir.path() / "events.jsonl"));
  CHECK(names_in(dir.path()) == std::vector<std::string>{"events.jsonl"});
}

TEST_CASE("a staged file dropped without a commit removes what it wrote",
          "[runtime]") {
  test::temp_dir dir;
  auto file = dir.write("events.jsonl", "previous\n");
  {
    staged_file staged;
    REQUIRE_FALSE(staged.open(file));
    staged.write("one\n");
  }
  CHECK(names_in(dir.path()) == std::vector<std::string>{"events.jsonl"});
  CHECK(dir.read("events.jsonl") == "previous\n");
}

TEST_CASE("a staged file on a device writes it in place and reports errors",
          "[runtime]") {
  staged_file staged;
  REQUIRE_FALSE(staged.open("/dev/full"));
  CHECK(staged.partial_path() == "/dev/full");
  staged.write("one\n");
  CHECK(staged.commit() == std::errc::no_space_on_device);
  CHECK(fs::is_character_file("/dev/full"));
}
