// Plan text, YAML and JSON, through what `troupe validate`, `troupe plan`
// and `troupe run` do with it: parse, decode, validate and, for a valid
// plan, assess it and encode it.
//
// Beyond not crashing: every diagnostic is well-formed UTF-8 (they are
// printed), and a valid plan encoded as JSON decodes to a valid plan that
// encodes the same.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"
#include "troupe/protocol/utf8.hpp"

namespace {

void check_plan_text(const std::string& text, const char* format) {
  troupe::diagnostics out;
  auto p = troupe::load_plan_text(text, format, {}, out);
  for (auto& d : out.items()) {
    TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(d.path));
    TROUPE_FUZZ_CHECK(troupe::is_valid_utf8(d.message));
  }
  if (!out.ok())
    return;
  auto assessment = troupe::assess(p);
  TROUPE_FUZZ_CHECK(!assessment.phases.empty());
  nlohmann::json encoded = p;
  nlohmann::json assessed = assessment;
  // Decoded text is well-formed UTF-8: the strict dump does not throw.
  auto json_text = encoded.dump();
  assessed.dump();
  troupe::diagnostics again;
  auto q = troupe::load_plan_text(json_text, "json", {}, again);
  TROUPE_FUZZ_CHECK(again.ok());
  TROUPE_FUZZ_CHECK(nlohmann::json(q) == encoded);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // JSON is YAML too: both parsers read every input.
  check_plan_text(text, "yaml");
  check_plan_text(text, "json");
  return 0;
}
