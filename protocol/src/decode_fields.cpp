#include "decode_fields.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

#include "troupe/protocol/utf8.hpp"

namespace troupe::detail {

// -- paths and messages -------------------------------------------------------

std::string format_number(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

/// Names a JSON value for "expected X, got Y".
std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "boolean true" : "boolean false";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer " + json_text(v);
    case json::value_t::number_float:
      return "number " + json_text(v);
    case json::value_t::string:
      return "string " + quote(v.get<std::string>());
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "binary data";
  }
}

void type_error(const json& v, const std::string& path, const char* expected,
                diagnostics& out) {
  out.error(path, std::string{"expected "} + expected + ", got " + describe(v));
}

// -- reading fields -----------------------------------------------------------

bool expect_object(const json& v, const std::string& path, diagnostics& out) {
  if (v.is_object())
    return true;
  type_error(v, path, "an object", out);
  return false;
}

void reject_unknown_keys(const json& obj, const std::string& path,
                         std::initializer_list<const char*> allowed,
                         diagnostics& out) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  for (auto& [key, value] : obj.items())
    if (std::find(names.begin(), names.end(), key) == names.end())
      out.error(key_path(path, key), "unknown field" + suggestion(key, names));
}

// Each `read` assigns `x` only when `v` has the right type (vectors and maps
// keep their good elements), records a diagnostic otherwise, and says
// whether all of `v` was good.

bool read(const json& v, const std::string& path, std::string& x,
          diagnostics& out) {
  if (!v.is_string()) {
    type_error(v, path, "a string", out);
    return false;
  }
  x = v.get<std::string>();
  return true;
}

bool read(const json& v, const std::string& path, int32_t& x,
          diagnostics& out) {
  // 3.0 is an integer too; 2.5 and "two" are not.
  if (!v.is_number()
      || (v.is_number_float()
          && v.get<double>() != std::floor(v.get<double>()))) {
    type_error(v, path, "an integer", out);
    return false;
  }
  auto d = v.get<double>();
  if (d < std::numeric_limits<int32_t>::min()
      || d > std::numeric_limits<int32_t>::max()) {
    out.error(path, "integer out of range: " + json_text(v));
    return false;
  }
  x = static_cast<int32_t>(d);
  return true;
}

bool read(const json& v, const std::string& path, double& x, diagnostics& out) {
  if (!v.is_number()) {
    type_error(v, path, "a number", out);
    return false;
  }
  x = v.get<double>();
  return true;
}

bool read(const json& v, const std::string& path, cost_range& x,
          diagnostics& out) {
  cost_range r;
  if (v.is_number()) {
    r.low = r.high = v.get<double>();
  } else if (v.is_array() && v.size() == 2 && v[0].is_number()
             && v[1].is_number()) {
    r.low = v[0].get<double>();
    r.high = v[1].get<double>();
  } else {
    type_error(v, path, "US dollars: a number, or [low, high]", out);
    return false;
  }
  if (!std::isfinite(r.low) || !std::isfinite(r.high) || r.low < 0
      || r.high < r.low) {
    out.error(path, "must be US dollars, not negative, low <= high");
    return false;
  }
  x = r;
  return true;
}

bool read(const json& v, const std::string& path, bool& x, diagnostics& out) {
  if (!v.is_boolean()) {
    type_error(v, path, "a boolean", out);
    return false;
  }
  x = v.get<bool>();
  return true;
}

bool read(const json& v, const std::string& path, std::vector<std::string>& x,
          diagnostics& out) {
  if (!v.is_array()) {
    type_error(v, path, "an array of strings", out);
    return false;
  }
  x.clear();
  bool ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string s;
    if (read(v[i], index_path(path, i), s, out))
      x.push_back(std::move(s));
    else
      ok = false;
  }
  return ok;
}

bool read(const json& v, const std::string& path,
          std::map<std::string, std::string>& x, diagnostics& out) {
  if (!v.is_object()) {
    type_error(v, path, "an object of strings", out);
    return false;
  }
  x.clear();
  bool ok = true;
  for (auto& [key, value] : v.items()) {
    std::string s;
    if (read(value, key_path(path, key), s, out))
      x.emplace(key, std::move(s));
    else
      ok = false;
  }
  return ok;
}

bool read(const json& v, const std::string& path, agent_kind& x,
          diagnostics& out) {
  using k = agent_kind;
  return read_enum(v, path, x, {k::explore, k::plan, k::general}, out);
}

bool read(const json& v, const std::string& path, model_tier& x,
          diagnostics& out) {
  using m = model_tier;
  return read_enum(v, path, x, {m::fast, m::balanced, m::deep}, out);
}

bool read(const json& v, const std::string& path, failure_policy& x,
          diagnostics& out) {
  using f = failure_policy;
  return read_enum(v, path, x,
                   {f::block_dependents, f::fail_fast, f::continue_run}, out);
}

bool has(const json& obj, const char* key) {
  auto i = obj.find(key);
  return i != obj.end() && !i->is_null();
}

// -- value checks -------------------------------------------------------------

void check_at_least(int32_t x, int32_t min, const std::string& path,
                    diagnostics& out) {
  if (x >= min)
    return;
  if (min == 0)
    out.error(path, "must not be negative, got " + std::to_string(x));
  else
    out.error(path, "must be at least " + std::to_string(min) + ", got "
                      + std::to_string(x));
}

void check_positive(double x, const std::string& path, diagnostics& out) {
  if (!(x > 0))
    out.error(path, "must be positive, got " + format_number(x));
}

void check_non_negative(double x, const std::string& path, diagnostics& out) {
  if (!(x >= 0))
    out.error(path, "must not be negative, got " + format_number(x));
}

/// Ids are plain words: letters, digits, '_', '.' and '-'.
bool valid_id(const std::string& id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

void check_id(const std::string& id, const std::string& path,
              diagnostics& out) {
  if (id.empty())
    out.error(path, "must not be empty");
  else if (!valid_id(id))
    out.error(path,
              "invalid id " + quote(id)
                + " (use letters, digits, '_', '.' and '-')");
}

} // namespace troupe::detail
