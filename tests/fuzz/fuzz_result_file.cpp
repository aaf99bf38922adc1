// Result files, which commands write as they like, through what the command
// executor takes from them.
//
// Beyond not crashing: everything taken is well-formed UTF-8, so the result
// encodes as JSON (strictly: the dump would throw otherwise), and the
// summary keeps to its limit.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/result_file.hpp"

namespace {

// The executor reads no more of a result file.
constexpr size_t result_file_limit = 1 << 20;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > result_file_limit)
    return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  troupe::workstream_result r;
  r.output = "command output";
  r.summary = "last line";
  troupe::apply_result_file(text, r);
  TROUPE_FUZZ_CHECK(r.summary.size() <= 4000);
  TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(r.summary));
  TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(r.output));
  for (auto& f : r.files_changed)
    TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(f));
  for (auto& [k, v] : r.outputs) {
    TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(k));
    TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(v));
  }
  nlohmann::json j = r;
  j.dump();
  return 0;
}
