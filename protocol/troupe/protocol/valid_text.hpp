#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/meta/annotation.hpp>

#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace detail {

/// An inspector that visits every string of a protocol type (through its
/// `inspect`) and makes it well-formed UTF-8.
class utf8_fixer {
public:
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = true;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (apply(xs), ...);
  }

private:
  void apply(std::string& s) {
    make_valid_utf8(s);
  }

  template <class T>
  void apply(std::vector<T>& xs) {
    for (auto& x : xs)
      apply(x);
  }

  template <class V>
  void apply(std::map<std::string, V>& m) {
    bool keys_ok = true;
    for (auto& [k, v] : m) {
      keys_ok = keys_ok && is_valid_utf8(k);
      apply(v);
    }
    if (keys_ok)
      return;
    std::map<std::string, V> fixed;
    for (auto& [k, v] : m)
      fixed.emplace(valid_utf8(k), std::move(v));
    m = std::move(fixed);
  }

  template <class T>
  void apply(T& x) {
    if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>
                  || std::is_base_of_v<caf::meta::annotation, T>) {
      // nop: no text
    } else {
      inspect(*this, x);
    }
  }
};

} // namespace detail

/// Makes every string in `x` (any protocol type with an `inspect`)
/// well-formed UTF-8, so that what came from another node or a command can
/// be written as JSON and shown on a terminal.
template <class T>
void make_valid_utf8_fields(T& x) {
  detail::utf8_fixer f;
  f(x);
}

} // namespace troupe
