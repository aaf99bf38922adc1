#include "troupe/runtime/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace troupe {

std::shared_ptr<spdlog::logger> log() {
  if (auto registered = spdlog::get("troupe"))
    return registered;
  static auto fallback = [] {
    auto l = spdlog::stderr_color_mt("troupe-stderr");
    l->set_pattern("%^%l%$: %v");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return fallback;
}

} // namespace troupe
