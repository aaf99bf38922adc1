// The configuration this process runs with, and `troupe config show`.

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/prompts.hpp"

namespace troupe::cli {

using nlohmann::json;

namespace {

troupe_config& loaded() {
  static troupe_config cfg = default_config();
  return cfg;
}

/// One value shown, with where it came from.
struct shown {
  std::string key;
  json value;
  std::string from;
};

// Every leaf of `j` by its dotted path.
void flatten(const json& j, const std::string& prefix,
             std::vector<std::pair<std::string, json>>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto& [k, v] : j.items())
      flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out.emplace_back(prefix, j);
}

bool has_leaf(const json& j, const std::string& path) {
  std::vector<std::pair<std::string, json>> leaves;
  flatten(j, "", leaves);
  for (auto& [k, v] : leaves)
    if (k == path)
      return true;
  return false;
}

std::string file_settings_origin(const troupe_config& cfg) {
  return "config " + cfg.path;
}

// The settings a plan whose own are `plan_own` runs with under `cfg`'s.
plan_settings effective_settings(const troupe_config& cfg,
                                 const json& plan_own) {
  diagnostics ignored;
  return decode_plan_settings(merge_settings(*cfg.settings, plan_own),
                              "settings", ignored);
}

std::vector<shown> settings_shown(const troupe_config& cfg,
                                  const plan_settings& settings,
                                  const json& plan_own,
                                  const std::string& plan_origin) {
  json effective = settings;
  // Persona prompts have a section of their own.
  effective.erase("personas");
  std::vector<std::pair<std::string, json>> leaves;
  flatten(effective, "", leaves);
  std::vector<shown> out;
  for (auto& [key, value] : leaves) {
    std::string from = "default";
    if (!plan_own.is_null() && has_leaf(plan_own, key))
      from = plan_origin;
    else if (has_leaf(*cfg.settings, key))
      from = file_settings_origin(cfg);
    out.push_back({key, value, from});
  }
  return out;
}

std::vector<shown> personas_shown(const troupe_config& cfg,
                                  const plan_settings& settings,
                                  const json& plan_own,
                                  const std::string& plan_origin) {
  std::map<std::string, std::string> from;
  for (auto& [persona, prompt] : builtin_persona_prompts())
    from[persona] = "built-in";
  for (auto& [persona, prompt] : settings.personas) {
    if (plan_own.is_object() && plan_own.contains("personas")
        && plan_own["personas"].contains(persona))
      from[persona] = plan_origin;
    else if (auto f = cfg.persona_files.find(persona);
             f != cfg.persona_files.end())
      from[persona] = file_settings_origin(cfg) + " (file " + f->second + ")";
    else
      from[persona] = file_settings_origin(cfg);
  }
  std::vector<shown> out;
  for (auto& [persona, source] : from) {
    auto prompt = persona_prompt(settings, persona);
    auto first = prompt.substr(0, prompt.find('\n'));
    if (first.size() > 60)
      first = first.substr(0, 57) + "...";
    out.push_back({persona,
                   std::to_string(prompt.size()) + " bytes: " + first,
                   source});
  }
  return out;
}

std::vector<shown> providers_shown(const troupe_config& cfg) {
  std::vector<shown> out;
  auto from = [&](const std::string& key, const char* fallback = "default") {
    auto i = cfg.sources.find(key);
    if (i == cfg.sources.end())
      return std::string{fallback};
    return i->second == "config" ? file_settings_origin(cfg) : i->second;
  };
  for (auto* ep : {&cfg.anthropic, &cfg.openai}) {
    auto p = "providers." + to_string(ep->provider);
    auto seconds = [](std::chrono::milliseconds ms) {
      return static_cast<double>(ms.count()) / 1000;
    };
    out.push_back({p + ".base_url", ep->base_url, from(p + ".base_url")});
    // The key itself is never shown: only whether there is one.
    out.push_back({p + ".api_key", ep->api_key.empty() ? "not set" : "set",
                   from(p + ".api_key", "none")});
    if (!ep->ca_file.empty())
      out.push_back({p + ".ca_file", ep->ca_file, from(p + ".ca_file")});
    out.push_back({p + ".connect_timeout_s", seconds(ep->connect_timeout),
                   from(p + ".connect_timeout_s")});
    out.push_back({p + ".read_timeout_s", seconds(ep->read_timeout),
                   from(p + ".read_timeout_s")});
    out.push_back({p + ".retries", ep->max_retries, from(p + ".retries")});
  }
  claude_code_config cc;
  std::string why;
  auto key = std::string{"providers.claude-code.program"};
  auto named = cfg.sources.find(key);
  if (find_claude_code(cfg.claude_program, "", cc, why))
    out.push_back({key, cc.program,
                   named == cfg.sources.end() ? "found on PATH" : from(key)});
  else
    out.push_back({key, "not found", named == cfg.sources.end()
                                       ? "not on PATH"
                                       : from(key)});
  return out;
}

// The model each tier names for each agent executor.
std::vector<shown> tiers_shown(const plan_settings& settings) {
  std::vector<shown> out;
  for (auto tier : {model_tier::fast, model_tier::balanced, model_tier::deep}) {
    std::string models;
    for (auto kind : {"anthropic", "openai", "claude-code"}) {
      workstream w;
      w.executor.kind = kind;
      w.model = tier;
      auto m = resolve_model(settings, w);
      models += (models.empty() ? "" : ", ") + std::string{kind} + ": "
                + (m.empty() ? "none (name one in settings.models)" : m);
    }
    out.push_back({to_string(tier), models,
                   settings.models.count(to_string(tier)) > 0
                     ? "settings.models"
                     : "each executor's own"});
  }
  return out;
}

std::string text_of(const json& v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_null())
    return "-";
  // 1800, not 1800.0.
  if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>())
      && std::abs(v.get<double>()) < 1e15)
    return std::to_string(static_cast<int64_t>(v.get<double>()));
  return json_text(v);
}

void print_section(std::ostream& out, const std::string& title,
                   const std::vector<shown>& items) {
  out << '\n' << title << '\n';
  size_t key_w = 0;
  size_t value_w = 0;
  std::vector<std::string> values;
  for (auto& s : items) {
    values.push_back(text_of(s.value));
    key_w = std::max(key_w, s.key.size());
    value_w = std::max(value_w, std::min<size_t>(values.back().size(), 48));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    auto key = items[i].key;
    key.resize(key_w, ' ');
    auto value = values[i];
    if (value.size() < value_w)
      value.resize(value_w, ' ');
    out << "  " << key << "  " << value << "  " << items[i].from << '\n';
  }
}

json json_of(const std::vector<shown>& items) {
  auto out = json::array();
  for (auto& s : items)
    out.push_back({{"key", s.key}, {"value", s.value}, {"from", s.from}});
  return out;
}

} // namespace

bool load_configuration(const std::string& explicit_path) {
  diagnostics d;
  auto cfg = load_config(explicit_path, d);
  auto origin = cfg.path.empty() ? std::string{"config"} : cfg.path;
  for (auto& item : d.items())
    std::cerr << origin << ": " << (item.warning ? "warning: " : "error: ")
              << to_string(item) << '\n';
  if (!d.ok())
    return false;
  loaded() = std::move(cfg);
  return true;
}

const troupe_config& configuration() {
  return loaded();
}

validation_options plan_loading(const executor_registry& executors) {
  auto opts = executors.validation();
  opts.settings_base = configuration().settings;
  return opts;
}

int config_show_command(const std::string& plan_file, bool as_json) {
  auto& cfg = configuration();
  json plan_own;
  std::string plan_origin;
  if (!plan_file.empty()) {
    diagnostics d;
    load_plan_file(plan_file, plan_loading(*executors_for(cfg)), d);
    if (!report_diagnostics(plan_file, d))
      return exit_bad_input;
    // The plan's own settings, as written, tell which values are its.
    std::ifstream in{plan_file, std::ios::binary};
    std::ostringstream text;
    text << in.rdbuf();
    json j;
    if (parse_plan_text(text.str(), "", j, d) && j.is_object())
      plan_own = j.value("settings", json{});
    plan_origin = "plan " + plan_file;
  }
  auto effective = effective_settings(cfg, plan_own);
  auto settings = settings_shown(cfg, effective, plan_own, plan_origin);
  auto tiers = tiers_shown(effective);
  auto personas = personas_shown(cfg, effective, plan_own, plan_origin);
  auto providers = providers_shown(cfg);
  if (as_json) {
    json out = {{"config_file", cfg.path.empty() ? json() : json(cfg.path)},
                {"found_by", cfg.found_by.empty() ? json() : json(cfg.found_by)},
                {"settings", json_of(settings)},
                {"tiers", json_of(tiers)},
                {"personas", json_of(personas)},
                {"providers", json_of(providers)}};
    if (!plan_file.empty())
      out["plan"] = plan_file;
    // Paths come from the command line and may be any bytes.
    std::cout << json_text(out, 2) << '\n';
    return exit_ok;
  }
  if (cfg.path.empty())
    std::cout << "config file: none (looked for --config, TROUPE_CONFIG, "
                 "then ~/.config/troupe/config.yaml)\n";
  else
    std::cout << "config file: " << cfg.path << " (" << cfg.found_by << ")\n";
  if (!plan_file.empty())
    std::cout << "plan: " << plan_file << '\n';
  print_section(std::cout, "settings", settings);
  print_section(std::cout, "tiers (model per executor)", tiers);
  print_section(std::cout, "personas (system prompts)", personas);
  print_section(std::cout, "providers (keys are never shown)", providers);
  return exit_ok;
}

} // namespace troupe::cli
