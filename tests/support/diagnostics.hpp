#pragma once

// Loading plan text in a test, and reading what its diagnostics say.

#include <cstddef>
#include <string>
#include <vector>

#include "troupe/protocol/plan_io.hpp"

namespace troupe::test {

/// A plan as read, and what reading it found.
struct decoded {
  troupe::plan p;
  troupe::diagnostics d;
};

inline decoded load(const std::string& text, const std::string& format = "yaml",
                    const troupe::validation_options& opts = {}) {
  decoded r;
  r.p = troupe::load_plan_text(text, format, opts, r.d);
  return r;
}

/// Every finding, rendered, one per line.
inline std::string all(const troupe::diagnostics& d) {
  std::string s;
  for (auto& x : d.items())
    s += (x.warning ? "warning: " : "error: ") + troupe::to_string(x) + "\n";
  return s;
}

/// The messages of the findings at `path`, in order.
inline std::vector<std::string> messages_at(const troupe::diagnostics& d,
                                            const std::string& path) {
  std::vector<std::string> out;
  for (auto& x : d.items())
    if (x.path == path)
      out.push_back(x.message);
  return out;
}

/// The message of the first finding at `path`, or "" if there is none.
inline std::string at(const troupe::diagnostics& d, const std::string& path) {
  auto m = messages_at(d, path);
  return m.empty() ? "" : m.front();
}

inline size_t count_at(const troupe::diagnostics& d, const std::string& path) {
  return messages_at(d, path).size();
}

} // namespace troupe::test
