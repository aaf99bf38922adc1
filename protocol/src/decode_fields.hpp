#pragma once

// Reading JSON that people write (plans, and what else Troupe decodes) with
// diagnostics: every field of the wrong type or value is reported with its
// path, and decoding goes on to find the rest. Nothing here throws. For
// protocol/src.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text.hpp"
#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"

namespace troupe::detail {

using json = nlohmann::json;

/// `x` as a message shows it.
std::string format_number(double x);

/// Names a JSON value for "expected X, got Y".
std::string describe(const json& v);

/// Records "expected `expected`, got ..." for `v` at `path`.
void type_error(const json& v, const std::string& path, const char* expected,
                diagnostics& out);

/// ` (did you mean "title"?)` for the closest candidate within two edits,
/// or nothing.
template <class Range>
std::string suggestion(const std::string& word, const Range& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& c : candidates) {
    if (std::max(word.size(), c.size()) - std::min(word.size(), c.size()) > 2)
      continue;
    auto d = edit_distance(word, c);
    if (d < best_d && d < std::min(word.size(), c.size())) {
      best = c;
      best_d = d;
    }
  }
  return best.empty() ? "" : " (did you mean " + quote(best) + "?)";
}

/// True if `v` is an object; records a type error otherwise.
bool expect_object(const json& v, const std::string& path, diagnostics& out);

/// Records each key of `obj` not in `allowed` as an unknown field, with a
/// suggestion.
void reject_unknown_keys(const json& obj, const std::string& path,
                         std::initializer_list<const char*> allowed,
                         diagnostics& out);

// Each `read` assigns `x` only when `v` has the right type (vectors and maps
// keep their good elements), records a diagnostic otherwise, and says
// whether all of `v` was good. Integers may be written 3.0, not 2.5.

bool read(const json& v, const std::string& path, std::string& x,
          diagnostics& out);
bool read(const json& v, const std::string& path, int32_t& x,
          diagnostics& out);
bool read(const json& v, const std::string& path, double& x, diagnostics& out);
bool read(const json& v, const std::string& path, bool& x, diagnostics& out);
bool read(const json& v, const std::string& path, std::vector<std::string>& x,
          diagnostics& out);
bool read(const json& v, const std::string& path,
          std::map<std::string, std::string>& x, diagnostics& out);
/// A cost: one number, or [low, high]; never negative, low <= high.
bool read(const json& v, const std::string& path, cost_range& x,
          diagnostics& out);
bool read(const json& v, const std::string& path, agent_kind& x,
          diagnostics& out);
bool read(const json& v, const std::string& path, model_tier& x,
          diagnostics& out);
bool read(const json& v, const std::string& path, failure_policy& x,
          diagnostics& out);

template <class E>
bool read_enum(const json& v, const std::string& path, E& x,
               std::initializer_list<E> values, diagnostics& out) {
  std::vector<std::string> names;
  for (auto e : values)
    names.push_back(to_string(e));
  std::string expected;
  for (size_t i = 0; i < names.size(); ++i)
    expected += (i == 0                    ? ""
                   : i + 1 == names.size() ? " or "
                                           : ", ")
      + names[i];
  if (!v.is_string()) {
    type_error(v, path, ("one of " + expected).c_str(), out);
    return false;
  }
  auto s = v.get<std::string>();
  if (from_string(s, x))
    return true;
  out.error(path,
            "unknown value " + quote(s) + " (expected " + expected + ")"
              + suggestion(s, names));
  return false;
}

/// Reads `obj[key]`, reporting `path.key: missing` when absent.
template <class T>
bool read_required(const json& obj, const std::string& path, const char* key,
                   T& x, diagnostics& out) {
  auto i = obj.find(key);
  if (i == obj.end()) {
    out.error(key_path(path, key), "missing");
    return false;
  }
  return read(*i, key_path(path, key), x, out);
}

/// Reads `obj[key]` if present and not null; true if it was and was good.
template <class T>
bool read_optional(const json& obj, const std::string& path, const char* key,
                   T& x, diagnostics& out) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return false;
  return read(*i, key_path(path, key), x, out);
}

/// True if `obj` has `key`, not null.
bool has(const json& obj, const char* key);

/// Records "must be at least `min`" (or "must not be negative") unless.
void check_at_least(int32_t x, int32_t min, const std::string& path,
                    diagnostics& out);
void check_positive(double x, const std::string& path, diagnostics& out);
void check_non_negative(double x, const std::string& path, diagnostics& out);

/// Ids are plain words: letters, digits, '_', '.' and '-'.
bool valid_id(const std::string& id);

/// Records an empty or invalid id.
void check_id(const std::string& id, const std::string& path,
              diagnostics& out);

} // namespace troupe::detail
