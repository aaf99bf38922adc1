#pragma once

#include <string>
#include <vector>

namespace troupe {

/// One finding about user input: where (`workstreams[3] (api).depends_on[0]`:
/// workstreams and gates by index and, once known, id) and what. Warnings do
/// not make input invalid.
struct diagnostic {
  std::string path;
  std::string message;
  bool warning = false;
};

/// All findings about one input, collected rather than stopping at the first.
class diagnostics {
public:
  void error(std::string path, std::string message) {
    items_.push_back({std::move(path), std::move(message), false});
  }

  void warn(std::string path, std::string message) {
    items_.push_back({std::move(path), std::move(message), true});
  }

  /// True when no finding is an error.
  bool ok() const {
    for (auto& d : items_)
      if (!d.warning)
        return false;
    return true;
  }

  const std::vector<diagnostic>& items() const {
    return items_;
  }

  size_t error_count() const {
    size_t n = 0;
    for (auto& d : items_)
      n += d.warning ? 0 : 1;
    return n;
  }

private:
  std::vector<diagnostic> items_;
};

/// Renders `path: message`, or `message` when the path is empty.
std::string to_string(const diagnostic& d);

} // namespace troupe
