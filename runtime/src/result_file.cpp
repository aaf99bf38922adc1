#include "troupe/runtime/result_file.hpp"

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

// Bytes of a summary taken from a result file.
constexpr size_t result_summary_limit = 4000;
// Deeper JSON is ignored: encoding an output value recurses once per level,
// and a file of nested brackets must not exhaust the stack of the thread
// that reads it. Plans stop at the same depth.
constexpr int result_depth_limit = 64;

} // namespace

void apply_result_file(const std::string& text, workstream_result& r) {
  // The parser refuses ill-formed UTF-8, so every string taken from it is
  // well-formed. Nothing below the depth limit is kept.
  bool too_deep = false;
  auto j = nlohmann::json::parse(
    text,
    [&too_deep](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      too_deep = too_deep || depth > result_depth_limit;
      return depth <= result_depth_limit;
    },
    false);
  if (too_deep) {
    r.output += "\n[troupe] ignored TROUPE_RESULT: nested deeper than "
                + std::to_string(result_depth_limit) + " levels";
    return;
  }
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
