// JSON to `plan` (plan_text.cpp turns text into the JSON), collecting every
// problem with the path of the field it is about. Nothing here throws.

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

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "decode_fields.hpp"
#include "text.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

constexpr size_t max_workstreams = max_plan_workstreams;
constexpr size_t max_gates = max_plan_gates;

using namespace detail;

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
  reject_unknown_keys(v, path,
                      {"kind", "run", "cwd", "seconds", "env", "model",
                       "max_tokens", "stream", "max_turns", "allowed_tools",
                       "permission_mode"},
                      out);
  if (read_required(v, path, "kind", x.kind, out) && x.kind.empty())
    out.error(key_path(path, "kind"), "must not be empty");
  bool has_run = read_optional(v, path, "run", x.run, out);
  read_optional(v, path, "cwd", x.cwd, out);
  if (read_optional(v, path, "seconds", x.seconds, out))
    check_non_negative(x.seconds, key_path(path, "seconds"), out);
  read_optional(v, path, "env", x.env, out);
  if (read_optional(v, path, "model", x.model, out) && x.model.empty())
    out.error(key_path(path, "model"), "must not be empty");
  if (read_optional(v, path, "max_tokens", x.max_tokens, out))
    check_at_least(x.max_tokens, 1, key_path(path, "max_tokens"), out);
  read_optional(v, path, "stream", x.stream, out);
  if (read_optional(v, path, "max_turns", x.max_turns, out))
    check_at_least(x.max_turns, 1, key_path(path, "max_turns"), out);
  read_optional(v, path, "allowed_tools", x.allowed_tools, out);
  read_optional(v, path, "permission_mode", x.permission_mode, out);
  if (x.kind == "command" && x.run.empty()) {
    if (!has(v, "run"))
      out.error(key_path(path, "run"), "missing (a command executor needs one)");
    else if (has_run)
      out.error(key_path(path, "run"), "must not be empty for a command executor");
  }
}

// `model`: a tier, or an exact model name, which is returned (to become
// the executor's model); a word close to a tier is taken for a misspelt
// one.
std::string read_model(const json& v, const std::string& path, model_tier& tier,
                       diagnostics& out) {
  std::string exact;
  if (has(v, "model") && v["model"].is_string()
      && !from_string(v["model"].get<std::string>(), tier)) {
    exact = v["model"].get<std::string>();
    auto hint
      = suggestion(exact, std::vector<std::string>{"fast", "balanced", "deep"});
    if (exact.empty())
      out.error(key_path(path, "model"), "must not be empty");
    else if (!hint.empty())
      out.error(key_path(path, "model"), "unknown tier " + quote(exact) + hint);
  } else {
    read_optional(v, path, "model", tier, out);
  }
  return exact;
}

// An exact model name (`read_model`) becomes the executor's, which must be
// an agent's and name no other model.
void set_exact_model(const std::string& exact, const std::string& path,
                     executor_spec& x, diagnostics& out) {
  if (exact.empty())
    return;
  if (x.kind == "noop" || x.kind == "sleep" || x.kind == "command")
    out.error(key_path(path, "model"),
              "unknown tier " + quote(exact)
                + " (expected fast, balanced or deep; an exact model name "
                  "needs an agent's executor, not "
                + quote(x.kind) + ")");
  else if (!x.model.empty() && x.model != exact)
    out.error(key_path(path, "model"), "names model " + quote(exact)
                                         + " but its executor names "
                                         + quote(x.model));
  x.model = exact;
}

// `until`: the command an iterating workstream repeats until it passes, as
// `{run, cwd, timeout_s}` or the command alone.
void decode_until(const json& v, const std::string& path, gate_check& c,
                  diagnostics& out) {
  c.kind = "command";
  if (v.is_string()) {
    c.run = v.get<std::string>();
  } else if (expect_object(v, path, out)) {
    reject_unknown_keys(v, path, {"run", "cwd", "timeout_s"}, out);
    read_required(v, path, "run", c.run, out);
    read_optional(v, path, "cwd", c.cwd, out);
    if (read_optional(v, path, "timeout_s", c.timeout_s, out))
      check_positive(c.timeout_s, key_path(path, "timeout_s"), out);
  }
  if (c.run.empty() && (v.is_string() || has(v, "run")))
    out.error(v.is_string() ? path : key_path(path, "run"),
              "must not be empty");
}

void decode_workstream(const json& v, const std::string& path, workstream& ws,
                       diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path,
                      {"id", "title", "persona", "agent", "model", "prompt",
                       "owns", "depends_on", "executor", "timeout_s", "retries",
                       "estimate_s", "estimate_usd", "until", "max_iterations",
                       "output"},
                      out);
  if (read_required(v, path, "id", ws.id, out))
    check_id(ws.id, key_path(path, "id"), out);
  if (!read_optional(v, path, "title", ws.title, out))
    ws.title = ws.id;
  read_optional(v, path, "prompt", ws.prompt, out);
  if (read_optional(v, path, "owns", ws.owns, out))
    for (size_t i = 0; i < ws.owns.size(); ++i)
      if (ws.owns[i].empty())
        out.error(index_path(key_path(path, "owns"), i), "must not be empty");
  read_optional(v, path, "depends_on", ws.depends_on, out);
  // Routing (DESIGN.md): writing work goes to general agents, the rest is
  // read-only exploration; the tier follows the agent.
  ws.agent = ws.owns.empty() ? agent_kind::explore : agent_kind::general;
  read_optional(v, path, "agent", ws.agent, out);
  ws.model = routed_tier(ws.agent);
  auto exact_model = read_model(v, path, ws.model, out);
  if (!read_optional(v, path, "persona", ws.persona, out))
    ws.persona = derive_persona(ws);
  else if (ws.persona.empty())
    out.error(key_path(path, "persona"), "must not be empty");
  if (has(v, "executor"))
    decode_executor(v["executor"], key_path(path, "executor"), ws.executor, out);
  else
    out.warn(key_path(path, "executor"), "none given; runs as noop");
  set_exact_model(exact_model, path, ws.executor, out);
  if (read_optional(v, path, "timeout_s", ws.timeout_s, out))
    check_positive(ws.timeout_s, key_path(path, "timeout_s"), out);
  if (read_optional(v, path, "retries", ws.retries, out))
    check_at_least(ws.retries, 0, key_path(path, "retries"), out);
  read_optional(v, path, "estimate_usd", ws.estimate_usd, out);
  if (read_optional(v, path, "estimate_s", ws.estimate_s, out))
    check_non_negative(ws.estimate_s, key_path(path, "estimate_s"), out);
  if (has(v, "until"))
    decode_until(v["until"], key_path(path, "until"), ws.until, out);
  if (read_optional(v, path, "output", ws.output, out)) {
    if (ws.output == "result")
      ws.output.clear();
    else if (ws.output != "plan")
      out.error(key_path(path, "output"), "unknown output " + quote(ws.output)
                                            + " (expected result or plan)");
  }
  if (read_optional(v, path, "max_iterations", ws.max_iterations, out)) {
    check_at_least(ws.max_iterations, 1, key_path(path, "max_iterations"), out);
    if (!has(v, "until"))
      out.error(key_path(path, "max_iterations"),
                "needs `until`, the check that ends the iterations");
  }
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
    out.error(key_path(path, "kind"),
              "unknown check " + quote(c.kind)
                + " (expected completion, conflicts or command)"
                + suggestion(c.kind, kinds));
  if (c.kind == "command") {
    if (read_required(v, path, "run", c.run, out) && c.run.empty())
      out.error(key_path(path, "run"), "must not be empty");
  } else {
    read_optional(v, path, "run", c.run, out);
  }
  read_optional(v, path, "cwd", c.cwd, out);
  if (read_optional(v, path, "timeout_s", c.timeout_s, out))
    check_positive(c.timeout_s, key_path(path, "timeout_s"), out);
  return out.error_count() == errors;
}

void decode_gate(const json& v, const std::string& path, gate& g,
                 diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path, {"id", "after", "checks", "remediate"}, out);
  if (read_required(v, path, "id", g.id, out))
    check_id(g.id, key_path(path, "id"), out);
  if (read_required(v, path, "after", g.after, out) && g.after.empty())
    out.error(key_path(path, "after"), "must not be empty");
  if (!has(v, "checks")) {
    g.checks = {gate_check{"completion", "", "", 0}};
  } else if (auto& checks = v["checks"]; !checks.is_array()) {
    type_error(checks, key_path(path, "checks"), "an array", out);
  } else {
    for (size_t i = 0; i < checks.size(); ++i) {
      gate_check c;
      if (decode_check(checks[i], index_path(key_path(path, "checks"), i), c, out))
        g.checks.push_back(std::move(c));
    }
  }
  if (has(v, "remediate")) {
    auto& r = v["remediate"];
    auto rpath = key_path(path, "remediate");
    if (expect_object(r, rpath, out)) {
      reject_unknown_keys(
        r, rpath, {"persona", "max_attempts", "prompt", "executor"}, out);
      if (read_optional(r, rpath, "persona", g.remediate.persona, out)
          && g.remediate.persona.empty())
        out.error(key_path(rpath, "persona"), "must not be empty");
      if (read_optional(r, rpath, "max_attempts", g.remediate.max_attempts,
                        out))
        check_at_least(g.remediate.max_attempts, 0, key_path(rpath, "max_attempts"),
                       out);
      read_optional(r, rpath, "prompt", g.remediate.prompt, out);
      if (has(r, "executor"))
        decode_executor(r["executor"], key_path(rpath, "executor"),
                        g.remediate.executor, out);
    }
  }
}

void decode_synthesis(const json& v, const std::string& path, synthesis_spec& x,
                      diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(
    v, path, {"persona", "executor", "prompt", "model", "timeout_s", "retries"},
    out);
  if (read_optional(v, path, "persona", x.persona, out) && x.persona.empty())
    out.error(key_path(path, "persona"), "must not be empty");
  if (has(v, "executor")) {
    decode_executor(v["executor"], key_path(path, "executor"), x.executor, out);
  } else {
    // What only an agent's synthesis reads must not be silently ignored.
    for (auto key : {"prompt", "model", "timeout_s", "retries"})
      if (has(v, key))
        out.error(key_path(path, key),
                  "applies to the agent that writes the synthesis, and "
                  "synthesis.executor names none");
    return;
  }
  read_optional(v, path, "prompt", x.prompt, out);
  set_exact_model(read_model(v, path, x.model, out), path, x.executor, out);
  if (read_optional(v, path, "timeout_s", x.timeout_s, out))
    check_positive(x.timeout_s, key_path(path, "timeout_s"), out);
  if (read_optional(v, path, "retries", x.retries, out))
    check_at_least(x.retries, 0, key_path(path, "retries"), out);
}

// `repo: PATH`, or `repo: {path, url, base, branch}`.
void decode_repo(const json& v, const std::string& path, repo_spec& x,
                 diagnostics& out) {
  if (v.is_string()) {
    x.path = v.get<std::string>();
  } else {
    if (!expect_object(v, path, out))
      return;
    reject_unknown_keys(v, path, {"path", "url", "base", "branch"}, out);
    read_optional(v, path, "path", x.path, out);
    read_optional(v, path, "url", x.url, out);
    read_optional(v, path, "base", x.base, out);
    read_optional(v, path, "branch", x.branch, out);
    if (!has(v, "path")) {
      out.error(key_path(path, "path"), "missing");
      return;
    }
  }
  if (x.path.empty())
    out.error(v.is_string() ? path : key_path(path, "path"),
              "must not be empty");
}

} // namespace

plan decode_plan(const json& j, diagnostics& out) {
  plan p;
  p.name = "plan";
  if (!j.is_object()) {
    out.error("", "expected a plan (an object), got " + describe(j));
    return p;
  }
  reject_unknown_keys(
    j, "",
    {"name", "goal", "repo", "settings", "workstreams", "gates", "synthesis"},
    out);
  read_optional(j, "", "name", p.name, out);
  read_optional(j, "", "goal", p.goal, out);
  if (has(j, "repo"))
    decode_repo(j["repo"], "repo", p.repo, out);
  if (has(j, "settings"))
    p.settings = decode_plan_settings(j["settings"], "settings", out);
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
  if (has(j, "synthesis"))
    decode_synthesis(j["synthesis"], "synthesis", p.synthesis, out);
  return p;
}

plan load_plan_text(const std::string& text, const std::string& format,
                    const validation_options& opts, diagnostics& out) {
  json j;
  if (!parse_plan_text(text, format, j, out))
    return plan{};
  if (opts.settings_base && j.is_object()) {
    auto i = j.find("settings");
    if (i == j.end())
      j["settings"] = *opts.settings_base;
    else if (i->is_object())
      *i = merge_settings(*opts.settings_base, *i);
  }
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

} // namespace troupe
