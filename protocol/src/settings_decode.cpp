// A plan's `settings` (a config file's too) from JSON, and settings laid
// over settings. Nothing here throws.

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "decode_fields.hpp"
#include "text.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;
using namespace detail;

void decode_prices(const json& v, const std::string& path,
                   std::map<std::string, model_price>& prices,
                   diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  for (auto& [model, price] : v.items()) {
    auto mpath = key_path(path, model);
    if (!expect_object(price, mpath, out))
      continue;
    reject_unknown_keys(price, mpath,
                        {"input", "output", "cache_read", "cache_write"}, out);
    model_price p;
    read_required(price, mpath, "input", p.input, out);
    read_required(price, mpath, "output", p.output, out);
    // Providers that cache bill cached reads and writes apart; without
    // prices for them, they cost what fresh input costs.
    p.cache_read = p.input;
    p.cache_write = p.input;
    read_optional(price, mpath, "cache_read", p.cache_read, out);
    read_optional(price, mpath, "cache_write", p.cache_write, out);
    for (auto [key, x] : {std::pair{"input", p.input},
                          {"output", p.output},
                          {"cache_read", p.cache_read},
                          {"cache_write", p.cache_write}})
      check_non_negative(x, key_path(mpath, key), out);
    prices[model] = p;
  }
}

void decode_limits(const json& v, const std::string& path, run_limits& limits,
                   diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path, {"persona", "model"}, out);
  for (auto [key, target] : {std::pair{"persona", &limits.persona},
                             std::pair{"model", &limits.model}}) {
    if (!has(v, key))
      continue;
    auto kpath = key_path(path, key);
    auto& m = v[key];
    if (!expect_object(m, kpath, out))
      continue;
    for (auto& [name, n] : m.items()) {
      int32_t x = 0;
      auto npath = key_path(kpath, name);
      if (name.empty())
        out.error(npath, "must name a " + std::string{key});
      else if (read(n, npath, x, out) && x >= 1)
        (*target)[name] = x;
      else if (n.is_number())
        check_at_least(x, 1, npath, out);
    }
  }
}

void decode_settings(const json& v, const std::string& path, plan_settings& s,
                     diagnostics& out) {
  if (!expect_object(v, path, out))
    return;
  reject_unknown_keys(v, path,
                      {"max_parallel_agents", "default_timeout_s", "on_failure",
                       "confirm_before_execute", "max_phase_width", "models",
                       "prices", "limits", "personas", "max_cost_usd",
                       "cost_estimates", "max_subplan_depth",
                       "max_workstreams"},
                      out);
  if (has(v, "limits"))
    decode_limits(v["limits"], key_path(path, "limits"), s.limits, out);
  if (read_optional(v, path, "models", s.models, out)) {
    static const std::vector<std::string> tiers{"fast", "balanced", "deep"};
    for (auto& [tier, model] : s.models) {
      auto tpath = key_path(key_path(path, "models"), tier);
      if (std::find(tiers.begin(), tiers.end(), tier) == tiers.end())
        out.error(tpath, "unknown tier (expected fast, balanced or deep)"
                           + suggestion(tier, tiers));
      else if (model.empty())
        out.error(tpath, "must not be empty");
    }
  }
  read_optional(v, path, "personas", s.personas, out);
  if (read_optional(v, path, "max_cost_usd", s.max_cost_usd, out))
    check_non_negative(s.max_cost_usd, key_path(path, "max_cost_usd"), out);
  if (has(v, "cost_estimates")
      && expect_object(v["cost_estimates"], key_path(path, "cost_estimates"),
                       out))
    for (auto& [tier, range] : v["cost_estimates"].items()) {
      auto tpath = key_path(key_path(path, "cost_estimates"), tier);
      model_tier t;
      if (!from_string(tier, t))
        out.error(tpath, "unknown tier (expected fast, balanced or deep)");
      else
        read(range, tpath, s.cost_estimates[tier], out);
    }
  if (has(v, "prices"))
    decode_prices(v["prices"], key_path(path, "prices"), s.prices, out);
  if (read_optional(v, path, "max_parallel_agents", s.max_parallel_agents, out))
    check_at_least(s.max_parallel_agents, 1, key_path(path, "max_parallel_agents"),
                   out);
  if (read_optional(v, path, "default_timeout_s", s.default_timeout_s, out))
    check_positive(s.default_timeout_s, key_path(path, "default_timeout_s"), out);
  read_optional(v, path, "on_failure", s.on_failure, out);
  read_optional(v, path, "confirm_before_execute", s.confirm_before_execute,
                out);
  if (read_optional(v, path, "max_phase_width", s.max_phase_width, out))
    check_at_least(s.max_phase_width, 1, key_path(path, "max_phase_width"), out);
  if (read_optional(v, path, "max_subplan_depth", s.max_subplan_depth, out))
    check_at_least(s.max_subplan_depth, 0, key_path(path, "max_subplan_depth"),
                   out);
  if (read_optional(v, path, "max_workstreams", s.max_workstreams, out))
    check_at_least(s.max_workstreams, 1, key_path(path, "max_workstreams"),
                   out);
}

} // namespace

plan_settings decode_plan_settings(const json& v, const std::string& path,
                                   diagnostics& out) {
  plan_settings s;
  decode_settings(v, path, s, out);
  return s;
}

json merge_settings(const json& base, const json& over) {
  if (!base.is_object() || !over.is_object())
    return over.is_null() ? base : over;
  auto entrywise = [](json& into, const json& from) {
    if (!into.is_object() || !from.is_object()) {
      into = from;
      return;
    }
    for (auto& [name, value] : from.items())
      into[name] = value;
  };
  json out = base;
  for (auto& [key, value] : over.items()) {
    if (key == "models" || key == "prices" || key == "personas") {
      entrywise(out[key], value);
    } else if (key == "limits" && value.is_object() && out[key].is_object()) {
      for (auto& [kind, counts] : value.items())
        entrywise(out[key][kind], counts);
    } else {
      out[key] = value;
    }
  }
  return out;
}

} // namespace troupe
