#include "troupe/protocol/utf8.hpp"

#include <cstdint>

#include <nlohmann/json.hpp>

namespace troupe {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

// Length of the well-formed sequence starting at `s[i]`, or 0 if none does.
// When none does, `bad` is the length of its maximal subpart: the start
// byte and the continuation bytes that were right so far, which one U+FFFD
// replaces.
size_t sequence_at(std::string_view s, size_t i, size_t& bad) {
  auto b0 = static_cast<uint8_t>(s[i]);
  bad = 1;
  if (b0 < 0x80)
    return 1;
  size_t need = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2;
    lo = 0xA0; // no overlong forms
  } else if (b0 >= 0xE1 && b0 <= 0xEC) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2;
    hi = 0x9F; // no surrogates
  } else if (b0 >= 0xEE && b0 <= 0xEF) {
    need = 2;
  } else if (b0 == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3;
    hi = 0x8F; // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size())
      return 0;
    auto b = static_cast<uint8_t>(s[i + k]);
    auto low = k == 1 ? lo : uint8_t{0x80};
    auto high = k == 1 ? hi : uint8_t{0xBF};
    if (b < low || b > high)
      return 0;
    bad = k + 1;
  }
  return need + 1;
}

bool is_continuation(char c) {
  return (static_cast<uint8_t>(c) & 0xC0) == 0x80;
}

} // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: skip them eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word = 0;
      for (size_t k = 0; k < 8; ++k)
        word |= static_cast<uint64_t>(static_cast<uint8_t>(s[i + k]))
                << (8 * k);
      if (word & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= s.size())
      break;
    size_t bad = 0;
    auto n = sequence_at(s, i, bad);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    auto n = sequence_at(s, i, bad);
    if (n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out.append(replacement);
      i += bad;
    }
  }
  return out;
}

void make_valid_utf8(std::string& s) {
  if (!is_valid_utf8(s))
    s = valid_utf8(s);
}

std::string utf8_head(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return std::string{s};
  auto end = max_bytes;
  while (end > 0 && is_continuation(s[end]))
    --end;
  return std::string{s.substr(0, end)};
}

std::string utf8_tail(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return std::string{s};
  auto begin = s.size() - max_bytes;
  while (begin < s.size() && is_continuation(s[begin]))
    ++begin;
  return std::string{s.substr(begin)};
}

std::string utf8_clip(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return std::string{s};
  if (max_bytes < 3)
    return utf8_head(s, max_bytes);
  return utf8_head(s, max_bytes - 3) + "...";
}

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string terminal_text(std::string_view s) {
  auto out = valid_utf8(s);
  for (auto& c : out)
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7F)
      c = ' ';
  return out;
}

} // namespace troupe
