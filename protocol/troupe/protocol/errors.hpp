#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp> // CAF_ERROR_CODE_ENUM needs make_message

namespace troupe {

/// Failures actors report to each other, in the `troupe` error category.
enum class errc : uint8_t {
  unknown_persona = 1,
  unknown_executor,
  unknown_run,
  invalid_plan,
  no_capacity,
  node_lost,
  cancelled,
  executor_failed,
  bad_token,
  version_mismatch,
  name_taken,
  shutting_down,
  /// The journal cannot be written.
  journal_failed,
};

std::string to_string(errc x);

} // namespace troupe

CAF_ERROR_CODE_ENUM(troupe::errc, "troupe")
