#include "troupe/runtime/result_file.hpp"

#include <cstddef>

#include <nlohmann/json.hpp>

#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

// Bytes of a summary taken from a result file.
constexpr size_t result_summary_limit = 4000;

} // namespace

void apply_result_file(const std::string& text, workstream_result& r) {
  // The parser refuses ill-formed UTF-8, so every string taken from it is
  // well-formed.
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.output += "\n[troupe] ignored TROUPE_RESULT: not a JSON object";
    return;
  }
  if (auto i = j.find("summary"); i != j.end() && i->is_string())
    r.summary = utf8_clip(i->get<std::string>(), result_summary_limit);
  if (auto i = j.find("files_changed"); i != j.end() && i->is_array())
    for (auto& f : *i)
      if (f.is_string())
        r.files_changed.push_back(f.get<std::string>());
  if (auto i = j.find("outputs"); i != j.end() && i->is_object())
    for (auto& [k, v] : i->items())
      r.outputs[k] = v.is_string() ? v.get<std::string>() : json_text(v);
}

} // namespace troupe
