#include "troupe/runtime/prompts.hpp"

#include <nlohmann/json.hpp>

#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace detail {
// In personas.cpp, written at build time from runtime/personas/*.md.
const std::map<std::string, std::string>& builtin_personas();
} // namespace detail

using nlohmann::json;

namespace {

// Bytes of a failed attempt's output, or of a dependency's reply, passed on.
constexpr size_t output_excerpt = 8000;

std::string text_at(const json& j, const char* key) {
  auto i = j.find(key);
  return i != j.end() && i->is_string() ? i->get<std::string>() : "";
}

const json& array_at(const json& j, const char* key) {
  static const json empty = json::array();
  auto i = j.find(key);
  return i != j.end() && i->is_array() ? *i : empty;
}

// Whether a gate's check in a context says it passed.
bool check_passed(const json& c) {
  auto passed = c.find("passed");
  return passed != c.end() && passed->is_boolean() && passed->get<bool>();
}

// The end of `text` worth reading, fenced.
std::string fenced_tail(const std::string& text) {
  return "```\n" + utf8_tail(text, output_excerpt) + "\n```\n";
}

} // namespace

const std::map<std::string, std::string>& builtin_persona_prompts() {
  return detail::builtin_personas();
}

std::string persona_prompt(const plan_settings& settings,
                           const std::string& persona) {
  if (auto i = settings.personas.find(persona); i != settings.personas.end())
    return i->second;
  auto& builtin = builtin_persona_prompts();
  if (auto i = builtin.find(persona); i != builtin.end())
    return i->second;
  auto who = persona.empty() ? std::string{"general"} : persona;
  return "You are the " + who
         + " agent of a team of software agents working on one goal. Do "
           "the task you are given and nothing else; other agents do the "
           "rest. End with a short summary of what you did and found.";
}

std::string system_prompt_of(const workstream_spec& spec) {
  return spec.system_prompt.empty()
           ? persona_prompt(plan_settings{}, spec.ws.persona)
           : spec.system_prompt;
}

std::string persona_prompt_source(const plan_settings& settings,
                                  const std::string& persona) {
  if (settings.personas.count(persona) > 0)
    return "settings";
  return builtin_persona_prompts().count(persona) > 0 ? "built-in" : "general";
}

std::string agent_prompt(const std::string& prompt, const std::string& context) {
  std::string out = prompt;
  auto ctx = json::parse(context, nullptr, false);
  if (ctx.is_discarded() || !ctx.is_object())
    return out;
  auto section = [&](const std::string& title) {
    if (!out.empty() && out.back() != '\n')
      out += '\n';
    out += "\n## " + title + "\n";
  };
  auto outcome = text_at(ctx, "outcome");
  if (!outcome.empty()) {
    section("How the run's work ended");
    out += outcome + "\n";
  }
  auto& deps = array_at(ctx, "dependencies");
  if (!deps.empty()) {
    section("Results of the work this task depends on");
    for (auto& d : deps) {
      if (!d.is_object())
        continue;
      out += "\n### " + text_at(d, "id") + " (" + text_at(d, "status") + ")\n";
      auto summary = text_at(d, "summary");
      if (!summary.empty())
        out += summary + "\n";
      auto files = array_at(d, "files_changed");
      if (!files.empty()) {
        out += "Files changed:";
        for (auto& f : files)
          if (f.is_string())
            out += " " + f.get<std::string>();
        out += "\n";
      }
      auto outputs = d.find("outputs");
      if (outputs != d.end() && outputs->is_object())
        for (auto& [key, value] : outputs->items())
          if (value.is_string())
            out += "Output " + key + ":\n"
                   + utf8_head(value.get<std::string>(), output_excerpt)
                   + "\n";
    }
  }
  // What a bounded context counted rather than held.
  auto left_out = [&](const char* key, const char* what) {
    auto left = ctx.find(key);
    if (left != ctx.end() && left->is_number_unsigned())
      out += "\n" + std::to_string(left->get<uint64_t>()) + " more " + what
             + " do not fit here; the run's report lists them.\n";
  };
  left_out("left_out", "results");
  auto& failures = array_at(ctx, "previous_attempts");
  if (!failures.empty()) {
    section("Earlier attempts at this task that failed");
    for (auto& f : failures) {
      if (!f.is_object())
        continue;
      auto attempt = f.find("attempt");
      out += "\n### Attempt "
             + (attempt != f.end() && attempt->is_number_integer()
                  ? std::to_string(attempt->get<int64_t>())
                  : std::string{"?"})
             + " (" + text_at(f, "status") + "): " + text_at(f, "summary")
             + "\n";
      auto output = text_at(f, "output");
      if (!output.empty())
        out += fenced_tail(output);
    }
  }
  auto iteration = ctx.find("previous_iteration");
  if (iteration != ctx.end() && iteration->is_object()) {
    auto n = iteration->find("iteration");
    section("Your previous iteration"
            + (n != iteration->end() && n->is_number_integer()
                 ? " (" + std::to_string(n->get<int64_t>()) + ")"
                 : std::string{})
            + ": its check still fails");
    auto output = text_at(*iteration, "output");
    if (!output.empty())
      out += "\n### What it did\n" + fenced_tail(output);
    auto check = iteration->find("check");
    if (check != iteration->end() && check->is_object())
      out += "\n### " + text_at(*check, "name") + "\n"
             + fenced_tail(text_at(*check, "detail"));
    out += "\nGo on from there until the check passes.\n";
  }
  auto gate = ctx.find("gate");
  if (gate != ctx.end() && gate->is_object()) {
    section("Checks of gate " + text_at(*gate, "id") + " that failed");
    for (auto& c : array_at(*gate, "checks")) {
      if (!c.is_object() || check_passed(c))
        continue;
      out += "\n### " + text_at(c, "name") + "\n"
             + fenced_tail(text_at(c, "detail"));
    }
  }
  auto& gates = array_at(ctx, "gates");
  if (!gates.empty()) {
    section("Gates");
    for (auto& g : gates) {
      if (!g.is_object())
        continue;
      out += "\n### " + text_at(g, "id") + " (" + text_at(g, "status") + ")\n";
      for (auto& c : array_at(g, "checks")) {
        if (!c.is_object())
          continue;
        bool ok = check_passed(c);
        out += "- " + text_at(c, "name") + ": " + (ok ? "passed" : "failed")
               + "\n";
        auto detail = text_at(c, "detail");
        if (!ok && !detail.empty())
          out += fenced_tail(detail);
      }
    }
  }
  left_out("gates_left_out", "gates");
  return valid_utf8(out);
}

} // namespace troupe
