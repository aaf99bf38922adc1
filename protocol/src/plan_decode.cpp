// Plan text (YAML or JSON) to JSON to `plan`, collecting every problem with
// the path of the field it is about. Nothing here throws.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "text.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// Limits on what reading a plan may cost, far beyond real plans (the
// benchmarks build 100,000 workstreams); past one, decoding stops with an
// error instead of growing without bound.

// Larger plan files and texts are refused before they are parsed.
constexpr size_t max_plan_bytes = size_t{16} << 20;

// Deeper YAML or JSON is refused; it also stops self-referencing YAML
// aliases (`&a [*a]`) from recursing forever.
constexpr size_t max_depth = 64;

// Values (scalars, arrays and objects; keys not counted) a plan may hold,
// YAML aliases expanded: nine lines of `&b [*a,*a,*a,*a,*a,*a,*a,*a,*a]`
// spell out 387,420,489. yaml-cpp takes some 500 bytes a node, so this also
// bounds what it builds.
constexpr size_t max_values = 1'000'000;

constexpr size_t max_workstreams = max_plan_workstreams;
constexpr size_t max_gates = max_plan_gates;

// -- paths and messages -------------------------------------------------------

using detail::quote;

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? detail::path_word(key)
                      : path + "." + detail::path_word(key);
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

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

/// ` (did you mean "title"?)` for the closest candidate within two edits,
/// or nothing.
template <class Range>
std::string suggestion(const std::string& word, const Range& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& c : candidates) {
    if (std::max(word.size(), c.size()) - std::min(word.size(), c.size()) > 2)
      continue;
    auto d = detail::edit_distance(word, c);
    if (d < best_d && d < std::min(word.size(), c.size())) {
      best = c;
      best_d = d;
    }
  }
  return best.empty() ? "" : " (did you mean " + quote(best) + "?)";
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
      out.error(join(path, key), "unknown field" + suggestion(key, names));
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
    if (read(v[i], index(path, i), s, out))
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
    if (read(value, join(path, key), s, out))
      x.emplace(key, std::move(s));
    else
      ok = false;
  }
  return ok;
}

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

/// Reads `obj[key]`, reporting `path.key: missing` when absent.
template <class T>
bool read_required(const json& obj, const std::string& path, const char* key,
                   T& x, diagnostics& out) {
  auto i = obj.find(key);
  if (i == obj.end()) {
    out.error(join(path, key), "missing");
    return false;
  }
  return read(*i, join(path, key), x, out);
}

/// Reads `obj[key]` if present and not null; true if it was and was good.
template <class T>
bool read_optional(const json& obj, const std::string& path, const char* key,
                   T& x, diagnostics& out) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return false;
  return read(*i, join(path, key), x, out);
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

// -- defaults -----------------------------------------------------------------

/// True if `pattern` lies under a directory named `dir` (at any depth), or
/// is that directory.
bool under(const std::string& pattern, const std::string& dir) {
  auto p = "/" + pattern;
  auto d = "/" + dir;
  return p.find(d + "/") != std::string::npos
    || (p.size() >= d.size()
        && p.compare(p.size() - d.size(), d.size(), d) == 0);
}

std::string file_name(const std::string& pattern) {
  auto slash = pattern.find_last_of('/');
  return slash == std::string::npos ? pattern : pattern.substr(slash + 1);
}

/// The persona a workstream gets when its plan names none, from the files
/// it owns (DESIGN.md, "Planning").
std::string derive_persona(const workstream& ws) {
  auto any = [&](auto pred) {
    return std::any_of(ws.owns.begin(), ws.owns.end(), pred);
  };
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size()
      && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (any([&](const std::string& p) {
        auto f = file_name(p);
        return under(p, "tests") || under(p, "test")
          || f.find("_test.") != std::string::npos
          || f.find(".test.") != std::string::npos;
      }))
    return "qa";
  if (any([&](const std::string& p) {
        return under(p, "docs") || ends_with(p, ".md");
      }))
    return "docs";
  if (any([&](const std::string& p) {
        return under(p, ".github") || under(p, "deploy")
          || file_name(p).rfind("Dockerfile", 0) == 0;
      }))
    return "devops";
  if (ws.agent == agent_kind::explore && ws.owns.empty())
    return "analyzer";
  return "backend";
}

model_tier default_model(agent_kind k) {
  switch (k) {
    case agent_kind::explore:
      return model_tier::fast;
    case agent_kind::plan:
      return model_tier::deep;
    default:
      return model_tier::balanced;
  }
}

// -- plan parts ---------------------------------------------------------------

/// The id a workstream or gate gives itself, or "" if it gives no string:
/// validation names it by the same, so paths from both agree.
std::string id_of(const json& v) {
  if (!v.is_object())
    return "";
  auto i = v.find("id");
  return i != v.end() && i->is_string() ? i->get<std::string>() : "";
}

void decode_executor(const json& v, const std::string& path, executor_spec& x,
                     diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path, {"kind", "run", "cwd", "seconds", "env"}, out);
  if (read_required(v, path, "kind", x.kind, out) && x.kind.empty())
    out.error(join(path, "kind"), "must not be empty");
  bool has_run = read_optional(v, path, "run", x.run, out);
  read_optional(v, path, "cwd", x.cwd, out);
  if (read_optional(v, path, "seconds", x.seconds, out))
    check_non_negative(x.seconds, join(path, "seconds"), out);
  read_optional(v, path, "env", x.env, out);
  if (x.kind == "command" && x.run.empty()) {
    if (!has(v, "run"))
      out.error(join(path, "run"), "missing (a command executor needs one)");
    else if (has_run)
      out.error(join(path, "run"), "must not be empty for a command executor");
  }
}

void decode_workstream(const json& v, const std::string& path, workstream& ws,
                       diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path,
                      {"id", "title", "persona", "agent", "model", "prompt",
                       "owns", "depends_on", "executor", "timeout_s", "retries",
                       "estimate_s"},
                      out);
  if (read_required(v, path, "id", ws.id, out))
    check_id(ws.id, join(path, "id"), out);
  if (!read_optional(v, path, "title", ws.title, out))
    ws.title = ws.id;
  read_optional(v, path, "prompt", ws.prompt, out);
  if (read_optional(v, path, "owns", ws.owns, out))
    for (size_t i = 0; i < ws.owns.size(); ++i)
      if (ws.owns[i].empty())
        out.error(index(join(path, "owns"), i), "must not be empty");
  read_optional(v, path, "depends_on", ws.depends_on, out);
  // Routing (DESIGN.md): writing work goes to general agents, the rest is
  // read-only exploration; the tier follows the agent.
  ws.agent = ws.owns.empty() ? agent_kind::explore : agent_kind::general;
  read_optional(v, path, "agent", ws.agent, out);
  ws.model = default_model(ws.agent);
  read_optional(v, path, "model", ws.model, out);
  if (!read_optional(v, path, "persona", ws.persona, out))
    ws.persona = derive_persona(ws);
  else if (ws.persona.empty())
    out.error(join(path, "persona"), "must not be empty");
  if (has(v, "executor"))
    decode_executor(v["executor"], join(path, "executor"), ws.executor, out);
  else
    out.warn(join(path, "executor"), "none given; runs as noop");
  if (read_optional(v, path, "timeout_s", ws.timeout_s, out))
    check_positive(ws.timeout_s, join(path, "timeout_s"), out);
  if (read_optional(v, path, "retries", ws.retries, out))
    check_at_least(ws.retries, 0, join(path, "retries"), out);
  if (read_optional(v, path, "estimate_s", ws.estimate_s, out))
    check_non_negative(ws.estimate_s, join(path, "estimate_s"), out);
}

bool decode_check(const json& v, const std::string& path, gate_check& c,
                  diagnostics& out) {
  static const std::vector<std::string> kinds{"completion", "conflicts",
                                              "command"};
  if (v.is_string()) {
    auto s = v.get<std::string>();
    if (s == "completion" || s == "conflicts") {
      c.kind = s;
      return true;
    }
    out.error(path,
              "unknown check " + quote(s)
                + " (expected completion, conflicts or {run: ...})"
                + suggestion(s, kinds));
    return false;
  }
  if (!v.is_object()) {
    type_error(v, path, "\"completion\", \"conflicts\" or {run: ...}", out);
    return false;
  }
  auto errors = out.error_count();
  // `name` is accepted for readability of the plan; checks are reported by
  // kind and command.
  reject_unknown_keys(v, path, {"kind", "name", "run", "cwd", "timeout_s"},
                      out);
  std::string name;
  read_optional(v, path, "name", name, out);
  c.kind = "command";
  if (read_optional(v, path, "kind", c.kind, out)
      && std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end())
    out.error(join(path, "kind"),
              "unknown check " + quote(c.kind)
                + " (expected completion, conflicts or command)"
                + suggestion(c.kind, kinds));
  if (c.kind == "command") {
    if (read_required(v, path, "run", c.run, out) && c.run.empty())
      out.error(join(path, "run"), "must not be empty");
  } else {
    read_optional(v, path, "run", c.run, out);
  }
  read_optional(v, path, "cwd", c.cwd, out);
  if (read_optional(v, path, "timeout_s", c.timeout_s, out))
    check_positive(c.timeout_s, join(path, "timeout_s"), out);
  return out.error_count() == errors;
}

void decode_gate(const json& v, const std::string& path, gate& g,
                 diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path, {"id", "after", "checks", "remediate"}, out);
  if (read_required(v, path, "id", g.id, out))
    check_id(g.id, join(path, "id"), out);
  if (read_required(v, path, "after", g.after, out) && g.after.empty())
    out.error(join(path, "after"), "must not be empty");
  if (!has(v, "checks")) {
    g.checks = {gate_check{"completion", "", "", 0}};
  } else if (auto& checks = v["checks"]; !checks.is_array()) {
    type_error(checks, join(path, "checks"), "an array", out);
  } else {
    for (size_t i = 0; i < checks.size(); ++i) {
      gate_check c;
      if (decode_check(checks[i], index(join(path, "checks"), i), c, out))
        g.checks.push_back(std::move(c));
    }
  }
  if (has(v, "remediate")) {
    auto& r = v["remediate"];
    auto rpath = join(path, "remediate");
    if (expect_object(r, rpath, out)) {
      reject_unknown_keys(
        r, rpath, {"persona", "max_attempts", "prompt", "executor"}, out);
      if (read_optional(r, rpath, "persona", g.remediate.persona, out)
          && g.remediate.persona.empty())
        out.error(join(rpath, "persona"), "must not be empty");
      if (read_optional(r, rpath, "max_attempts", g.remediate.max_attempts,
                        out))
        check_at_least(g.remediate.max_attempts, 0, join(rpath, "max_attempts"),
                       out);
      read_optional(r, rpath, "prompt", g.remediate.prompt, out);
      if (has(r, "executor"))
        decode_executor(r["executor"], join(rpath, "executor"),
                        g.remediate.executor, out);
    }
  }
}

void decode_settings(const json& v, const std::string& path, plan_settings& s,
                     diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path,
                      {"max_parallel_agents", "default_timeout_s", "on_failure",
                       "confirm_before_execute", "max_phase_width"},
                      out);
  if (read_optional(v, path, "max_parallel_agents", s.max_parallel_agents, out))
    check_at_least(s.max_parallel_agents, 1, join(path, "max_parallel_agents"),
                   out);
  if (read_optional(v, path, "default_timeout_s", s.default_timeout_s, out))
    check_positive(s.default_timeout_s, join(path, "default_timeout_s"), out);
  read_optional(v, path, "on_failure", s.on_failure, out);
  read_optional(v, path, "confirm_before_execute", s.confirm_before_execute,
                out);
  if (read_optional(v, path, "max_phase_width", s.max_phase_width, out))
    check_at_least(s.max_phase_width, 1, join(path, "max_phase_width"), out);
}

// -- text to JSON -------------------------------------------------------------

bool all_of_chars(const std::string& s, size_t from, const char* chars) {
  return from < s.size()
    && s.find_first_not_of(chars, from) == std::string::npos;
}

/// True for YAML 1.2 core floats: [-+]? (.digits | digits[.digits?])
/// [e[-+]?digits]?
bool is_float(const std::string& s) {
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  auto digits = [&] {
    auto start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i;
    return i > start;
  };
  bool mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa = digits() || mantissa;
  }
  if (!mantissa)
    return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+'))
      ++i;
    if (!digits())
      return false;
  }
  return i == s.size();
}

/// A plain YAML scalar as YAML 1.2's core schema reads it.
json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  auto as_integer = [&](const char* digits, int base) -> json {
    errno = 0;
    auto x = std::strtoll(digits, nullptr, base);
    if (errno != ERANGE)
      return x;
    // Too big for an integer; past the largest double, no number at all,
    // as with floats below.
    auto d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d))
      return d;
    return s;
  };
  size_t sign = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (all_of_chars(s, sign, "0123456789"))
    return as_integer(s.c_str(), 10);
  if (s.compare(0, 2, "0x") == 0
      && all_of_chars(s, 2, "0123456789abcdefABCDEF"))
    return as_integer(s.c_str() + 2, 16);
  if (s.compare(0, 2, "0o") == 0 && all_of_chars(s, 2, "01234567"))
    return as_integer(s.c_str() + 2, 8);
  if (is_float(s)) {
    auto x = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(x))
      return x;
  }
  return s;
}

std::string line_and_column(const YAML::Mark& m) {
  return "line " + std::to_string(m.line + 1) + ", column "
    + std::to_string(m.column + 1);
}

/// A first pass over the events of a YAML document, before yaml-cpp builds
/// any node: refuses nesting deeper than max_depth and more than max_values
/// values as written, and anchors defined twice.
class yaml_survey final : public YAML::EventHandler {
public:
  /// Thrown to stop the parser once a limit is hit; the survey has reported
  /// which.
  struct stop {};

  explicit yaml_survey(diagnostics& out) : out_(out) {
    // nop
  }

  void OnDocumentStart(const YAML::Mark&) override {
    // nop
  }

  void OnDocumentEnd() override {
    // nop
  }

  void OnNull(const YAML::Mark& m, YAML::anchor_t) override {
    node(m);
  }

  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override {
    node(m);
  }

  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(m);
  }

  void OnSequenceStart(const YAML::Mark& m, const std::string&,
                       YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
    open_.push_back({false, false});
  }

  void OnSequenceEnd() override {
    open_.pop_back();
  }

  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(m);
    open_.push_back({true, true});
  }

  void OnMapEnd() override {
    open_.pop_back();
  }

  void OnAnchor(const YAML::Mark& m, const std::string& name) override {
    // YAML lets an anchor be defined again, aliases after it meaning the
    // new node; in a plan that is a slip.
    auto [first, fresh] = anchors_.emplace(name, m);
    if (!fresh)
      out_.error("", "anchor &" + valid_utf8(name) + " defined again at "
                       + line_and_column(m) + " (first at "
                       + line_and_column(first->second)
                       + "); give each anchor its own name");
  }

private:
  struct collection {
    bool map;
    bool key_next;
  };

  void node(const YAML::Mark& m) {
    if (open_.size() > max_depth) {
      out_.error("", "nested deeper than " + std::to_string(max_depth)
                       + " levels at " + line_and_column(m));
      throw stop{};
    }
    // Map entries alternate key and value; keys are no values of their own.
    if (!open_.empty() && open_.back().map) {
      bool key = open_.back().key_next;
      open_.back().key_next = !key;
      if (key)
        return;
    }
    if (++values_ > max_values) {
      out_.error("", "plan is too large: more than "
                       + std::to_string(max_values) + " values");
      throw stop{};
    }
  }

  diagnostics& out_;
  std::vector<collection> open_;
  size_t values_ = 0;
  std::map<std::string, YAML::Mark> anchors_;
};

/// What converting a YAML document to JSON may still produce. The survey
/// bounded the document as written, so only aliases can exhaust this.
struct yaml_budget {
  size_t values = max_values;
  /// Set once a limit is hit: the conversion stops.
  bool stopped = false;
};

bool yaml_to_json(const YAML::Node& n, const std::string& path, size_t depth,
                  yaml_budget& budget, json& result, diagnostics& out) {
  auto where = [&](const YAML::Node& x) {
    auto m = x.Mark();
    return m.is_null() ? std::string{}
                       : " (line " + std::to_string(m.line + 1) + ")";
  };
  if (budget.values == 0) {
    out.error("", "plan is too large: more than " + std::to_string(max_values)
                    + " values after expanding YAML aliases");
    budget.stopped = true;
    return false;
  }
  --budget.values;
  if (depth > max_depth) {
    out.error(path, "nested deeper than " + std::to_string(max_depth)
                      + " levels after expanding YAML aliases" + where(n));
    budget.stopped = true;
    return false;
  }
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      // yaml-cpp passes any bytes through; JSON strings must be UTF-8.
      auto s = n.Scalar();
      make_valid_utf8(s);
      // Quoted and block scalars carry the non-specific tag "!": strings,
      // whatever they spell.
      auto& tag = n.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str")
        result = std::move(s);
      else
        result = plain_scalar(s);
      return true;
    }
    case YAML::NodeType::Sequence: {
      result = json::array();
      bool ok = true;
      size_t i = 0;
      for (auto item : n) {
        json x;
        ok = yaml_to_json(item, index(path, i++), depth + 1, budget, x, out)
          && ok;
        if (budget.stopped)
          return false;
        result.push_back(std::move(x));
      }
      return ok;
    }
    case YAML::NodeType::Map: {
      result = json::object();
      bool ok = true;
      for (auto kv : n) {
        if (!kv.first.IsScalar()) {
          out.error(path, "keys must be strings" + where(kv.first));
          ok = false;
          continue;
        }
        auto key = kv.first.Scalar();
        make_valid_utf8(key);
        if (result.contains(key)) {
          out.error(join(path, key), "duplicate key" + where(kv.first));
          ok = false;
          continue;
        }
        json x;
        ok = yaml_to_json(kv.second, join(path, key), depth + 1, budget, x,
                          out)
          && ok;
        if (budget.stopped)
          return false;
        result[key] = std::move(x);
      }
      return ok;
    }
    default:
      result = nullptr;
      return true;
  }
}

/// Builds JSON from nlohmann's SAX events as `json::parse` does, but
/// refuses nesting deeper than max_depth and more than max_values values.
class json_builder {
public:
  explicit json_builder(json& root, diagnostics& out) : root_(root), out_(out) {
    // nop
  }

  /// nlohmann's message for a syntax error, or "" if there was none.
  const std::string& syntax_error() const {
    return syntax_error_;
  }

  bool null() {
    return add(nullptr);
  }

  bool boolean(bool x) {
    return add(x);
  }

  bool number_integer(json::number_integer_t x) {
    return add(x);
  }

  bool number_unsigned(json::number_unsigned_t x) {
    return add(x);
  }

  bool number_float(json::number_float_t x, const std::string&) {
    return add(x);
  }

  bool string(std::string& x) {
    return add(std::move(x));
  }

  bool binary(json::binary_t& x) {
    return add(json::binary(std::move(x)));
  }

  bool start_object(size_t) {
    return add(json::object());
  }

  bool key(std::string& k) {
    keys_.back() = std::move(k);
    return true;
  }

  bool end_object() {
    return close();
  }

  bool start_array(size_t) {
    return add(json::array());
  }

  bool end_array() {
    return close();
  }

  bool parse_error(size_t, const std::string&, const json::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

private:
  /// The path of the value the innermost open collection gets next.
  std::string next_path() const {
    std::string path;
    for (size_t i = 0; i < open_.size(); ++i) {
      auto& c = *open_[i];
      // Inner collections are the last element of theirs.
      auto n = c.size() - (i + 1 < open_.size() ? 1 : 0);
      path = c.is_object() ? join(path, keys_[i]) : index(path, n);
    }
    return path;
  }

  bool add(json x) {
    if (open_.size() > max_depth) {
      out_.error(next_path(), "nested deeper than "
                                + std::to_string(max_depth) + " levels");
      return false;
    }
    if (++values_ > max_values) {
      out_.error("", "plan is too large: more than "
                       + std::to_string(max_values) + " values");
      return false;
    }
    json* slot = &root_;
    if (!open_.empty() && open_.back()->is_array()) {
      open_.back()->push_back(std::move(x));
      slot = &open_.back()->back();
    } else if (!open_.empty()) {
      slot = &(*open_.back())[keys_.back()];
      *slot = std::move(x);
    } else {
      root_ = std::move(x);
    }
    if (slot->is_structured()) {
      open_.push_back(slot);
      keys_.emplace_back();
    }
    return true;
  }

  bool close() {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }

  json& root_;
  diagnostics& out_;
  std::vector<json*> open_;
  std::vector<std::string> keys_;
  size_t values_ = 0;
  std::string syntax_error_;
};

/// The `*name` an alias starting at `pos` spells.
std::string alias_at(const std::string& text, size_t pos) {
  auto end = text.find_first_of(" \t\r\n,[]{}", pos + 1);
  return text.substr(pos, end == std::string::npos ? end : end - pos);
}

/// The blanks that start the line holding `pos`.
std::string indentation_at(const std::string& text, size_t pos) {
  auto start = std::min(pos, text.size());
  while (start > 0 && text[start - 1] != '\n')
    --start;
  auto end = text.find_first_not_of(" \t", start);
  return text.substr(start, end == std::string::npos ? end : end - start);
}

/// yaml-cpp's message for a syntax error with its line and column, and a
/// word on the likely cause where the message names a parser state.
std::string explain(const YAML::Exception& e, const std::string& text) {
  namespace msg = YAML::ErrorMsg;
  std::string what = e.msg.empty() ? std::string{e.what()} : e.msg;
  auto pos = e.mark.is_null() ? text.size() : static_cast<size_t>(e.mark.pos);
  std::string hint;
  if (dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr) {
    // Its message is "bad file"; the survey stops nesting long before.
    what = "nested too deeply";
  } else if (what == msg::UNKNOWN_ANCHOR && pos < text.size()
             && text[pos] == '*') {
    // A plain scalar starting with '*' reads as an alias: `owns: [**/x]`.
    what += ": " + alias_at(text, pos);
    hint = "quote values that start with '*', such as globs";
  } else if (what == msg::ALIAS_NOT_FOUND) {
    hint = "quote values that start with '*', such as globs";
  } else if (what == msg::TAB_IN_INDENTATION
             || indentation_at(text, pos).find('\t') != std::string::npos) {
    hint = "indent with spaces, not tabs";
  } else if (what == msg::END_OF_MAP || what == msg::END_OF_SEQ
             || what == msg::BLOCK_ENTRY) {
    hint = "check the indentation of this line";
  } else if (what == msg::MAP_VALUE) {
    hint = "check the indentation, and quote values that contain ': '";
  } else if (what == msg::END_OF_SEQ_FLOW) {
    hint = "a '[' before it is not closed";
  } else if (what == msg::END_OF_MAP_FLOW) {
    hint = "a '{' before it is not closed";
  } else if (what == msg::FLOW_END) {
    hint = "a ']' or '}' here closes nothing";
  } else if (what == msg::EOF_IN_SCALAR) {
    hint = "a quote is not closed";
  }
  std::string result = "invalid YAML";
  if (!e.mark.is_null())
    result += " at " + line_and_column(e.mark);
  result += ": " + what;
  if (!hint.empty())
    result += " (" + hint + ")";
  return result;
}

/// Says where `text` holds a control character other than tab, line feed
/// and carriage return, or nothing. Neither YAML nor JSON allows them
/// unescaped, and parsers meeting them in binary files say odd things.
std::string control_character(const std::string& text) {
  auto i = std::find_if(text.begin(), text.end(), [](unsigned char c) {
    return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
  });
  if (i == text.end())
    return "";
  auto pos = static_cast<size_t>(i - text.begin());
  auto line_start = text.rfind('\n', pos);
  auto column = line_start == std::string::npos ? pos + 1 : pos - line_start;
  char code[8];
  std::snprintf(code, sizeof(code), "U+%04X", static_cast<unsigned char>(*i));
  return std::string{"control character "} + code + " at line "
    + std::to_string(std::count(text.begin(), i, '\n') + 1) + ", column "
    + std::to_string(column) + " (plans are text; is this a binary file?)";
}

std::string too_large(uint64_t bytes) {
  return "too large: " + std::to_string(bytes) + " bytes (at most "
    + std::to_string(max_plan_bytes >> 20) + " MiB)";
}

/// Reads the plan file open as `fd` into `text`; says why not, or nothing.
/// Only regular files are read, and no more of them than a plan may have:
/// a FIFO or a device may never end.
std::string read_plan_file(int fd, std::string& text) {
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return std::strerror(errno);
  if (S_ISDIR(st.st_mode))
    return "is a directory";
  if (!S_ISREG(st.st_mode)) {
    auto kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                : S_ISCHR(st.st_mode)  ? "a character device"
                : S_ISBLK(st.st_mode)  ? "a block device"
                : S_ISSOCK(st.st_mode) ? "a socket"
                                       : "of an unknown kind";
    return std::string{"not a regular file ("} + kind + ")";
  }
  if (static_cast<uint64_t>(st.st_size) > max_plan_bytes)
    return too_large(static_cast<uint64_t>(st.st_size));
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::strerror(errno);
    if (n == 0)
      return "";
    // It may have grown since fstat.
    if (text.size() + static_cast<size_t>(n) > max_plan_bytes)
      return too_large(text.size() + static_cast<size_t>(n));
    text.append(buf, static_cast<size_t>(n));
  }
}

std::string format_of(const std::string& path) {
  auto ext = std::filesystem::path{path}.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".json")
    return "json";
  if (ext == ".yaml" || ext == ".yml")
    return "yaml";
  return "";
}

} // namespace

bool parse_plan_text(const std::string& text, const std::string& format,
                     json& result, diagnostics& out) {
  if (text.size() > max_plan_bytes) {
    out.error("", "plan is " + too_large(text.size()));
    return false;
  }
  if (auto problem = control_character(text); !problem.empty()) {
    out.error("", problem);
    return false;
  }
  auto fmt = format;
  if (fmt.empty()) {
    auto i = text.find_first_not_of(" \t\r\n");
    fmt = i != std::string::npos && text[i] == '{' ? "json" : "yaml";
  }
  if (fmt == "json") {
    json j;
    json_builder builder{j, out};
    if (json::sax_parse(text, &builder)) {
      result = std::move(j);
      return true;
    }
    if (!builder.syntax_error().empty()) {
      // what() reads "[json.exception.parse_error.101] parse error at line
      // 3, column 5: ..."; the bracket is noise to a user. It ends with the
      // bytes last read, as they are.
      auto what = valid_utf8(builder.syntax_error());
      auto close = what.find("] ");
      out.error(
        "",
        "invalid JSON: "
          + (close == std::string::npos ? what : what.substr(close + 2)));
    }
    return false;
  }
  if (fmt == "yaml") {
    try {
      // The survey bounds the document before yaml-cpp builds a node for
      // each value in it.
      auto errors = out.error_count();
      yaml_survey survey{out};
      std::istringstream in{text};
      YAML::Parser parser{in};
      parser.HandleNextDocument(survey);
      if (out.error_count() > errors)
        return false;
      auto root = YAML::Load(text);
      json j;
      yaml_budget budget;
      if (!yaml_to_json(root, "", 0, budget, j, out))
        return false;
      result = std::move(j);
      return true;
    } catch (const yaml_survey::stop&) {
      return false;
    } catch (const YAML::Exception& e) {
      // Messages may quote the text, whatever its bytes.
      out.error("", valid_utf8(explain(e, text)));
      return false;
    } catch (const std::exception& e) {
      out.error("", "invalid YAML: " + valid_utf8(e.what()));
      return false;
    }
  }
  out.error("",
            "unknown plan format " + quote(fmt) + " (expected json or yaml)");
  return false;
}

plan decode_plan(const json& j, diagnostics& out) {
  plan p;
  p.name = "plan";
  if (!j.is_object()) {
    out.error("", "expected a plan (an object), got " + describe(j));
    return p;
  }
  reject_unknown_keys(
    j, "", {"name", "goal", "settings", "workstreams", "gates", "synthesis"},
    out);
  read_optional(j, "", "name", p.name, out);
  read_optional(j, "", "goal", p.goal, out);
  if (has(j, "settings"))
    decode_settings(j["settings"], "settings", p.settings, out);
  if (auto i = j.find("workstreams"); i == j.end()) {
    out.error("workstreams", "missing");
  } else if (!i->is_array()) {
    type_error(*i, "workstreams", "an array", out);
  } else if (i->empty()) {
    out.error("workstreams", "must not be empty");
  } else if (i->size() > max_workstreams) {
    out.error("workstreams", "too many: " + std::to_string(i->size())
                               + " (at most " + std::to_string(max_workstreams)
                               + ")");
  } else {
    // Every element gets a slot, good or bad, so later paths keep their
    // indices.
    p.workstreams.resize(i->size());
    for (size_t k = 0; k < i->size(); ++k)
      decode_workstream((*i)[k],
                        detail::element_path("workstreams", k, id_of((*i)[k])),
                        p.workstreams[k], out);
  }
  if (auto i = j.find("gates"); i != j.end() && !i->is_null()) {
    if (!i->is_array()) {
      type_error(*i, "gates", "an array", out);
    } else if (i->size() > max_gates) {
      out.error("gates", "too many: " + std::to_string(i->size())
                           + " (at most " + std::to_string(max_gates) + ")");
    } else {
      p.gates.resize(i->size());
      for (size_t k = 0; k < i->size(); ++k)
        decode_gate((*i)[k], detail::element_path("gates", k, id_of((*i)[k])),
                    p.gates[k], out);
    }
  }
  if (has(j, "synthesis") && expect_object(j["synthesis"], "synthesis", out)) {
    auto& s = j["synthesis"];
    reject_unknown_keys(s, "synthesis", {"persona"}, out);
    if (read_optional(s, "synthesis", "persona", p.synthesis.persona, out)
        && p.synthesis.persona.empty())
      out.error("synthesis.persona", "must not be empty");
  }
  return p;
}

plan load_plan_text(const std::string& text, const std::string& format,
                    const validation_options& opts, diagnostics& out) {
  json j;
  if (!parse_plan_text(text, format, j, out))
    return plan{};
  auto first = out.items().size();
  auto p = decode_plan(j, out);
  // Validation checks plans built in code too, so it may find again what
  // decoding found. One finding per spot: drop what falls under a path
  // decoding already reported an error for.
  std::vector<std::string> bad;
  for (auto i = first; i < out.items().size(); ++i)
    if (!out.items()[i].warning)
      bad.push_back(out.items()[i].path);
  auto covered = [&](const std::string& path) {
    for (auto& b : bad)
      if (b.empty()
          || (path.compare(0, b.size(), b) == 0
              && (path.size() == b.size() || path[b.size()] == '.'
                  || path[b.size()] == '[')))
        return true;
    return false;
  };
  diagnostics found;
  validate_plan(p, opts, found);
  for (auto& d : found.items())
    if (!covered(d.path)) {
      if (d.warning)
        out.warn(d.path, d.message);
      else
        out.error(d.path, d.message);
    }
  return p;
}

plan load_plan_file(const std::string& path, const validation_options& opts,
                    diagnostics& out) {
  // Nonblocking: opening a FIFO would wait for a writer, maybe forever. It
  // changes nothing for regular files, the only ones read.
  auto fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    out.error(
      "", "cannot read plan file " + quote(path) + ": " + std::strerror(errno));
    return plan{};
  }
  std::string text;
  auto problem = read_plan_file(fd, text);
  ::close(fd);
  if (!problem.empty()) {
    out.error("", "cannot read plan file " + quote(path) + ": " + problem);
    return plan{};
  }
  return load_plan_text(text, format_of(path), opts, out);
}

} // namespace troupe
