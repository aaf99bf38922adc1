#pragma once

// Reading fields of JSON that arrived from outside (a provider's reply, a
// CLI's stream): a field counts only when it has the type expected, and
// nothing here throws. For runtime/src.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace troupe::detail {

/// Values nested deeper than this in JSON from outside are dropped.
constexpr int outside_depth_limit = 256;

/// Parses JSON text from outside (a CLI's line, a provider's reply);
/// a discarded value when it is not JSON. Values nested deeper than
/// `max_depth` are dropped rather than built (a line of a million `[`
/// would take hundreds of MB), and an escaped lone UTF-16 surrogate, which
/// JavaScript writes for a string cut between the halves of a pair and
/// nlohmann refuses, reads as U+FFFD.
nlohmann::json parse_outside(std::string_view text,
                             int max_depth = outside_depth_limit);

/// `text` with each `\uXXXX` escape of a lone surrogate made `\ufffd`.
std::string without_lone_surrogates(std::string_view text);

/// `j[key]`, or null when `j` is no object or has no such key.
inline const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  if (!j.is_object())
    return nullptr;
  auto i = j.find(key);
  return i == j.end() ? nullptr : &*i;
}

/// `j[key]` when it is a string, else "".
inline std::string text_of(const nlohmann::json& j, const char* key) {
  auto f = field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : "";
}

/// `j[key]` as a count: a number, cut to what an int64_t holds; 0 for
/// anything else, negative numbers and NaN included.
inline int64_t count_of(const nlohmann::json& j, const char* key) {
  auto f = field(j, key);
  if (f == nullptr)
    return 0;
  constexpr auto max = std::numeric_limits<int64_t>::max();
  if (f->is_number_unsigned())
    return static_cast<int64_t>(
      std::min<uint64_t>(f->get<uint64_t>(), static_cast<uint64_t>(max)));
  if (f->is_number_integer())
    return std::max<int64_t>(f->get<int64_t>(), 0);
  if (f->is_number_float()) {
    auto x = f->get<double>();
    if (!(x >= 0) || !std::isfinite(x))
      return 0;
    return x >= 9.2e18 ? max : static_cast<int64_t>(x);
  }
  return 0;
}

/// `j[key]` as an amount of money: a finite, non-negative number, else 0.
inline double money_of(const nlohmann::json& j, const char* key) {
  auto f = field(j, key);
  if (f == nullptr || !f->is_number())
    return 0;
  auto x = f->get<double>();
  return x >= 0 && x < 1e12 ? x : 0;
}

} // namespace troupe::detail
