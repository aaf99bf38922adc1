#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace troupe::detail {

/// `s` with ASCII letters in lower case.
std::string lower(std::string_view s);

/// `s` without white space at its ends.
std::string trim(std::string_view s);

/// Edit distance with transpositions (optimal string alignment), for "did
/// you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

/// `s` for a message: in double quotes, escaped as JSON escapes it (control
/// characters too), cut to 60 bytes, any bytes made valid UTF-8.
std::string quote(std::string_view s);

/// `s` as it is when it is a plain word (letters, digits, '_', '.' and '-';
/// at most 60 bytes), else quoted: a key or id in a diagnostic's path reads
/// as one and prints as text.
std::string path_word(const std::string& s);

/// The path of `key` within `path`: `settings.max_parallel_agents`.
std::string key_path(const std::string& path, const std::string& key);

/// The path of element `i` of the list at `path`: `owns[0]`.
std::string index_path(const std::string& path, size_t i);

/// What diagnostics about element `i` of `list` are filed under:
/// `workstreams[1] (right)`, or `workstreams[1]` while its id is unknown
/// (empty).
std::string element_path(const std::string& list, size_t i,
                         const std::string& id);

} // namespace troupe::detail
