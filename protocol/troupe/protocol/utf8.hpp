#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace troupe {

/// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// `s` as well-formed UTF-8: each maximal ill-formed subsequence becomes
/// U+FFFD, as Unicode recommends (so one bad byte costs one replacement).
std::string valid_utf8(std::string_view s);

/// Makes `s` well-formed UTF-8 in place; cheap when it already is.
void make_valid_utf8(std::string& s);

/// The first at most `max_bytes` of `s`, cut on a code-point boundary.
std::string utf8_head(std::string_view s, size_t max_bytes);

/// The last at most `max_bytes` of `s`, starting on a code-point boundary.
std::string utf8_tail(std::string_view s, size_t max_bytes);

/// `s` cut to at most `max_bytes` (on a code-point boundary), ending in
/// "..." when something was cut.
std::string utf8_clip(std::string_view s, size_t max_bytes);

/// `j` as JSON text (`indent` as nlohmann's `dump`), where ill-formed UTF-8
/// in a string becomes U+FFFD instead of throwing.
std::string json_text(const nlohmann::json& j, int indent = -1);

/// `s` made fit for one line of a terminal: well-formed UTF-8 whose control
/// characters (escape sequences, carriage returns, newlines) are spaces.
std::string terminal_text(std::string_view s);

} // namespace troupe
