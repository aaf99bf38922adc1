#pragma once

// Reading back what a run left: its JSON report, and every file it wrote.

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace troupe::test {

/// A file, read whole.
inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A JSON file, parsed.
inline nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::ifstream in{file};
  return nlohmann::json::parse(in);
}

/// The report's entry for workstream `id`.
inline const nlohmann::json& workstream_of(const nlohmann::json& report,
                                           const std::string& id) {
  for (auto& w : report["workstreams"])
    if (w["id"] == id)
      return w;
  throw std::runtime_error("no workstream " + id + " in the report");
}

/// Every regular file below `dir` read whole, but the stand-in LLM
/// server's request log and what lies below a directory named `skip`:
/// what to search for a secret that must not have been written.
inline std::string text_under(const std::filesystem::path& dir,
                              const std::string& skip = {}) {
  std::string text;
  for (auto& e : std::filesystem::recursive_directory_iterator{dir}) {
    auto rel = e.path().lexically_relative(dir).string();
    if (!skip.empty() && rel.rfind(skip + "/", 0) == 0)
      continue;
    if (e.is_regular_file() && e.path().filename() != "mock-requests.jsonl")
      text += read_text(e.path());
  }
  return text;
}

} // namespace troupe::test
