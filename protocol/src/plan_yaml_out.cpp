// Plans as YAML for people: what the schema would default left out, keys
// in the order plans are written, long prompts as literal blocks.

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "text.hpp"
#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// Keys of `j` equal to `defaults`' are dropped, except `keep`.
void prune(json& j, const json& defaults,
           const std::vector<std::string>& keep = {}) {
  if (!j.is_object())
    return;
  for (auto i = j.begin(); i != j.end();) {
    auto d = defaults.find(i.key());
    bool kept = std::find(keep.begin(), keep.end(), i.key()) != keep.end();
    if (!kept && d != defaults.end() && *d == i.value())
      i = j.erase(i);
    else
      ++i;
  }
}

// The order keys are written in; the rest follow, sorted.
const std::vector<std::string>& key_order() {
  static const std::vector<std::string> order{
    "name",       "goal",      "repo",        "path",    "settings",
    "id",         "title",     "persona",     "agent",   "model",
    "depends_on", "after",     "owns",        "retries", "timeout_s",
    "estimate_s", "prompt",    "executor",    "kind",    "run",
    "checks",     "remediate", "workstreams", "gates",   "synthesis"};
  return order;
}

// Text written as a literal block: lines of text without a line break at
// its end (the block is written `|-`), or spaces that YAML would eat, or a
// `|` at a line's end (which `plan_yaml` would take for the block's own).
bool literal(const std::string& s) {
  if (s.find('\n') == std::string::npos || s.find('\r') != std::string::npos
      || s.find("|\n") != std::string::npos || s.front() == ' '
      || s.front() == '\n' || s.back() == '\n' || s.back() == ' '
      || s.back() == '|')
    return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\n' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
      return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c >= 0x20 || c == '\n' || c == '\t';
  });
}

// Text that reads back as the same string unquoted: words, paths, ids and
// sentences, but nothing YAML would take for another type or syntax.
bool plain(const std::string& s) {
  if (s.empty() || s.size() > 200)
    return false;
  static const std::vector<std::string> typed{
    "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"};
  if (std::find(typed.begin(), typed.end(), detail::lower(s)) != typed.end())
    return false;
  if (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-'
      || s[0] == '.' || s[0] == '+')
    return false;
  if (s.front() == ' ' || s.back() == ' ')
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c < 0x20 || c >= 0x7f)
      return false;
    if (std::string("{}[]&*!|>'\"%@`#,?:").find(static_cast<char>(c))
        != std::string::npos)
      return false;
  }
  return true;
}

bool short_scalars(const json& j) {
  return j.is_array() && j.size() <= 8
         && std::all_of(j.begin(), j.end(), [](const json& x) {
              return x.is_string()
                     && x.get_ref<const std::string&>().size() <= 60;
            });
}

void emit(YAML::Emitter& out, const json& j) {
  switch (j.type()) {
  case json::value_t::object: {
    std::vector<std::string> keys;
    for (auto& k : key_order())
      if (j.contains(k))
        keys.push_back(k);
    for (auto& [k, v] : j.items()) {
      (void)v;
      if (std::find(keys.begin(), keys.end(), k) == keys.end())
        keys.push_back(k);
    }
    bool flow
      = j.size() <= 3 && std::all_of(j.begin(), j.end(), [](const json& v) {
          return v.is_primitive()
                 && (!v.is_string()
                     || (v.get_ref<const std::string&>().size() < 60
                         && !literal(v.get_ref<const std::string&>())));
        });
    if (flow)
      out << YAML::Flow;
    out << YAML::BeginMap;
    for (auto& k : keys) {
      out << YAML::Key << k << YAML::Value;
      emit(out, j.at(k));
    }
    out << YAML::EndMap;
    break;
  }
  case json::value_t::array:
    if (short_scalars(j))
      out << YAML::Flow;
    out << YAML::BeginSeq;
    for (auto& x : j)
      emit(out, x);
    out << YAML::EndSeq;
    break;
  case json::value_t::string: {
    auto& s = j.get_ref<const std::string&>();
    if (literal(s))
      out << YAML::Literal << s;
    else if (plain(s))
      out << s;
    else
      out << YAML::DoubleQuoted << s;
    break;
  }
  case json::value_t::boolean:
    out << j.get<bool>();
    break;
  case json::value_t::number_integer:
    out << j.get<int64_t>();
    break;
  case json::value_t::number_unsigned:
    out << j.get<uint64_t>();
    break;
  case json::value_t::number_float:
    out << json_text(j);
    break;
  default:
    out << YAML::Null;
    break;
  }
}

// What decoding fills in where a plan leaves a key out, as `to_json`
// writes it: the values a plan file need not spell.
const json& decoded_defaults() {
  static const json defaults = [] {
    json minimal = {
      {"name", "x"},
      {"workstreams",
       json::array({{{"id", "w"}, {"executor", {{"kind", "noop"}}}}})},
      {"gates", json::array({{{"id", "g"}, {"after", json::array({"w"})}}})},
      {"synthesis", {{"executor", {{"kind", "anthropic"}}}, {"prompt", "x"}}}};
    diagnostics d;
    json out = decode_plan(minimal, d);
    return out;
  }();
  return defaults;
}

} // namespace

std::string plan_yaml(const plan& p) {
  auto& defaults = decoded_defaults();
  json j = p;
  prune(j["settings"], defaults["settings"]);
  if (j["settings"].empty())
    j.erase("settings");
  auto& ws_default = defaults["workstreams"][0];
  auto& exec_default = ws_default["executor"];
  for (size_t i = 0; i < p.workstreams.size(); ++i) {
    auto& ws = p.workstreams[i];
    auto& w = j["workstreams"][i];
    if (ws.model == routed_tier(ws.agent))
      w.erase("model");
    if (ws.title == ws.id)
      w.erase("title");
    // A persona left out is derived from the files a workstream owns.
    prune(w, ws_default,
          {"id", "title", "persona", "agent", "executor", "model"});
    prune(w["executor"], exec_default, {"kind"});
  }
  auto& gate_default = defaults["gates"][0];
  auto& remedy_default = gate_default["remediate"];
  for (auto& g : j["gates"]) {
    prune(g["remediate"], remedy_default);
    if (g["remediate"].contains("executor"))
      prune(g["remediate"]["executor"], exec_default, {"kind"});
    if (g["remediate"].empty())
      g.erase("remediate");
    prune(g, gate_default, {"id", "after"});
  }
  if (j["gates"].empty())
    j.erase("gates");
  auto synthesis_default = defaults["synthesis"];
  synthesis_default["prompt"] = "";
  if (p.synthesis.by_agent())
    prune(j["synthesis"]["executor"], exec_default, {"kind"});
  else
    synthesis_default = json(synthesis_spec{});
  prune(j["synthesis"], synthesis_default, {"executor"});
  if (j["synthesis"].empty())
    j.erase("synthesis");
  if (j["goal"] == "")
    j.erase("goal");
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, j);
  // yaml-cpp writes literal blocks as `|`, which keeps a line break at
  // the end; none of ours has one (see `literal`), so they are `|-`. No
  // other text holds `|` before a line break: plain text has no `|`,
  // quoted text writes its line breaks as `\n`, and no line of a literal
  // block ends in `|`.
  std::string text = out.c_str();
  for (size_t at = 0; (at = text.find("|\n", at)) != std::string::npos; at += 3)
    if (at > 0 && text[at - 1] == ' ')
      text.replace(at, 2, "|-\n");
  return text + "\n";
}

} // namespace troupe
