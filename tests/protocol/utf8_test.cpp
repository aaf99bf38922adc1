#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "troupe/protocol/utf8.hpp"

using troupe::is_valid_utf8;
using troupe::utf8_clip;
using troupe::utf8_head;
using troupe::utf8_tail;
using troupe::valid_utf8;

namespace {

const std::string fffd = "\xEF\xBF\xBD";

// Every cut of `s` at every size is valid UTF-8 and a prefix (or suffix).
void check_every_cut(const std::string& s) {
  for (size_t n = 0; n <= s.size() + 1; ++n) {
    auto head = utf8_head(s, n);
    auto tail = utf8_tail(s, n);
    auto clip = utf8_clip(s, n);
    INFO("cut at " << n);
    CHECK(is_valid_utf8(head));
    CHECK(is_valid_utf8(tail));
    CHECK(is_valid_utf8(clip));
    CHECK(head.size() <= n);
    CHECK(tail.size() <= n);
    CHECK(clip.size() <= n);
    CHECK(s.compare(0, head.size(), head) == 0);
    CHECK(s.compare(s.size() - tail.size(), tail.size(), tail) == 0);
    // A cut never loses more than one code point's worth of bytes.
    if (n <= s.size()) {
      CHECK(head.size() + 3 >= n);
      CHECK(tail.size() + 3 >= n);
    }
  }
}

} // namespace

TEST_CASE("well-formed UTF-8 is recognised and kept as it is",
          "[protocol]") {
  for (std::string s : {std::string{}, std::string{"plain ascii"}, std::string{"caf\xC3\xA9"},
                        std::string{"\xE6\xBC\xA2\xE5\xAD\x97"},
                        std::string{"\xF0\x9F\x98\x80 emoji"},
                        std::string(1, '\0') + "nul"}) {
    CHECK(is_valid_utf8(s));
    CHECK(valid_utf8(s) == s);
  }
}

TEST_CASE("ill-formed UTF-8 becomes U+FFFD, one per maximal subpart",
          "[protocol]") {
  CHECK_FALSE(is_valid_utf8("\xFF"));
  CHECK(valid_utf8("a\xFF" "b") == "a" + fffd + "b");
  // A lone continuation byte.
  CHECK(valid_utf8("\x80") == fffd);
  // A truncated three-byte sequence is one replacement.
  CHECK(valid_utf8("\xE6\xBC") == fffd);
  CHECK(valid_utf8("\xE6\xBC" "x") == fffd + "x");
  // Overlong forms, surrogates and code points above U+10FFFF.
  CHECK(valid_utf8("\xC0\xAF") == fffd + fffd);
  CHECK(valid_utf8("\xED\xA0\x80") == fffd + fffd + fffd);
  CHECK(valid_utf8("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);
  // What comes out always passes the check, and nlohmann can dump it.
  std::string binary;
  for (int i = 0; i < 256; ++i)
    binary += static_cast<char>(i);
  auto fixed = valid_utf8(binary + binary);
  CHECK(is_valid_utf8(fixed));
  CHECK_NOTHROW(nlohmann::json(fixed).dump());
  std::string in_place = binary;
  troupe::make_valid_utf8(in_place);
  CHECK(in_place == valid_utf8(binary));
}

TEST_CASE("cuts fall on code-point boundaries at every size", "[protocol]") {
  check_every_cut("");
  check_every_cut("ascii only");
  std::string e_acute;
  for (int i = 0; i < 150; ++i)
    e_acute += "\xC3\xA9";
  check_every_cut(e_acute);
  check_every_cut("\xE6\xBC\xA2\xE5\xAD\x97\xE3\x81\xAE\xE6\x96\x87");
  check_every_cut("a\xF0\x9F\x98\x80" "b\xF0\x9F\x98\x80");
  CHECK(utf8_clip(e_acute, 10) == "\xC3\xA9\xC3\xA9\xC3\xA9...");
  CHECK(utf8_clip("short", 10) == "short");
}
