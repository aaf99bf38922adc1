#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace troupe {

/// Troupe's logger: `spdlog::get("troupe")` when the program registered one,
/// else a stderr logger made once.
std::shared_ptr<spdlog::logger> log();

} // namespace troupe
