// Plan text to JSON: reading plan files (regular files only, bounded in
// size), and parsing them as YAML or JSON with bounds (bounded_parse.hpp),
// so that no text can make it grow without bound. Nothing here throws.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"
#include "bounded_parse.hpp"
#include "text.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;
using detail::index_path;
using detail::key_path;
using detail::quote;

// Larger plan files and texts are refused before they are parsed: far
// beyond real plans (the benchmarks build 100,000 workstreams).
constexpr size_t max_plan_bytes = size_t{16} << 20;

/// Says where `text` holds a control character other than tab, line feed
/// and carriage return, or nothing. Neither YAML nor JSON allows them
/// unescaped, and parsers meeting them in binary files say odd things.
std::string control_character(const std::string& text) {
  auto i = std::find_if(text.begin(), text.end(), [](unsigned char c) {
    return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
  });
  if (i == text.end())
    return "";
  auto pos = static_cast<size_t>(i - text.begin());
  auto line_start = text.rfind('\n', pos);
  auto column = line_start == std::string::npos ? pos + 1 : pos - line_start;
  char code[8];
  std::snprintf(code, sizeof(code), "U+%04X", static_cast<unsigned char>(*i));
  return std::string{"control character "} + code + " at line "
    + std::to_string(std::count(text.begin(), i, '\n') + 1) + ", column "
    + std::to_string(column) + " (plans are text; is this a binary file?)";
}

std::string too_large(uint64_t bytes) {
  return "too large: " + std::to_string(bytes) + " bytes (at most "
    + std::to_string(max_plan_bytes >> 20) + " MiB)";
}

/// Reads the plan file open as `fd` into `text`; says why not, or nothing.
/// Only regular files are read, and no more of them than a plan may have:
/// a FIFO or a device may never end.
std::string read_plan_file(int fd, std::string& text) {
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return std::strerror(errno);
  if (S_ISDIR(st.st_mode))
    return "is a directory";
  if (!S_ISREG(st.st_mode)) {
    auto kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                : S_ISCHR(st.st_mode)  ? "a character device"
                : S_ISBLK(st.st_mode)  ? "a block device"
                : S_ISSOCK(st.st_mode) ? "a socket"
                                       : "of an unknown kind";
    return std::string{"not a regular file ("} + kind + ")";
  }
  if (static_cast<uint64_t>(st.st_size) > max_plan_bytes)
    return too_large(static_cast<uint64_t>(st.st_size));
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::strerror(errno);
    if (n == 0)
      return "";
    // It may have grown since fstat.
    if (text.size() + static_cast<size_t>(n) > max_plan_bytes)
      return too_large(text.size() + static_cast<size_t>(n));
    text.append(buf, static_cast<size_t>(n));
  }
}

std::string format_of(const std::string& path) {
  auto ext = detail::lower(std::filesystem::path{path}.extension().string());
  if (ext == ".json")
    return "json";
  if (ext == ".yaml" || ext == ".yml")
    return "yaml";
  return "";
}

} // namespace

bool parse_plan_text(const std::string& text, const std::string& format,
                     json& result, diagnostics& out) {
  if (text.size() > max_plan_bytes) {
    out.error("", "plan is " + too_large(text.size()));
    return false;
  }
  if (auto problem = control_character(text); !problem.empty()) {
    out.error("", problem);
    return false;
  }
  auto fmt = format;
  if (fmt.empty()) {
    auto i = text.find_first_not_of(" \t\r\n");
    fmt = i != std::string::npos && text[i] == '{' ? "json" : "yaml";
  }
  if (fmt == "json")
    return detail::parse_bounded_json(text, result, out);
  if (fmt == "yaml")
    return detail::parse_bounded_yaml(text, result, out);
  out.error("",
            "unknown plan format " + quote(fmt) + " (expected json or yaml)");
  return false;
}

plan load_plan_file(const std::string& path, const validation_options& opts,
                    diagnostics& out) {
  // Nonblocking: opening a FIFO would wait for a writer, maybe forever. It
  // changes nothing for regular files, the only ones read.
  auto fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    out.error(
      "", "cannot read plan file " + quote(path) + ": " + std::strerror(errno));
    return plan{};
  }
  std::string text;
  auto problem = read_plan_file(fd, text);
  ::close(fd);
  if (!problem.empty()) {
    out.error("", "cannot read plan file " + quote(path) + ": " + problem);
    return plan{};
  }
  return load_plan_text(text, format_of(path), opts, out);
}

} // namespace troupe
