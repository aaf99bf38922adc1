#pragma once

#include <string>

#include "troupe/protocol/result.hpp"

namespace troupe {

/// Takes what a command wrote to its TROUPE_RESULT file, `text`, into `r`:
/// `summary` (cut to 4,000 bytes), `files_changed` and `outputs`. The text
/// is the command's to choose: anything but a JSON object nested at most 64
/// levels deep is ignored with a note in `r.output`, as are fields of the
/// wrong type. Every string it sets is well-formed UTF-8.
void apply_result_file(const std::string& text, workstream_result& r);

} // namespace troupe
