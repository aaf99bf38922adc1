#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace troupe::test {

/// A directory of its own for one test, removed afterwards.
class temp_dir {
public:
  temp_dir() {
    auto base = std::filesystem::temp_directory_path() / "troupe-test-XXXXXX";
    std::string templ = base.string();
    if (::mkdtemp(templ.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const {
    return path_;
  }

  std::string str() const {
    return path_.string();
  }

  /// Writes `text` to `name` inside the directory; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out{p};
    out << text;
    return p.string();
  }

  std::string read(const std::string& name) const {
    std::ifstream in{path_ / name};
    return {std::istreambuf_iterator<char>(in),
            std::istreambuf_iterator<char>()};
  }

private:
  std::filesystem::path path_;
};

/// The names in `dir`, sorted.
inline std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::directory_iterator{dir})
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace troupe::test
