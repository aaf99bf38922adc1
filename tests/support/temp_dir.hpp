#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

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

} // namespace troupe::test
