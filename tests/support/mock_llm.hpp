#pragma once

// Starts tests/support/mock_llm/, the stand-in for LLM APIs, on a free
// loopback port, and reads back the requests it took.

#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/background.hpp"

namespace troupe::test {

class mock_llm {
public:
  /// A certificate and key in PEM files, for serving HTTPS.
  struct tls_files {
    std::string cert;
    std::string key;
  };

  /// Serves the replies `script` describes (its `rules`; none: every
  /// request gets the automatic reply), logging requests in `dir`.
  explicit mock_llm(const std::filesystem::path& dir,
                    const nlohmann::json& script
                    = {{"rules", nlohmann::json::array()}},
                    const std::optional<tls_files>& tls = std::nullopt)
      : log_((dir / "mock-requests.jsonl").string()),
        proc_(start(dir, script, log_, tls)) {
    auto l = proc_.line();
    auto at = l.rfind(':');
    if (l.rfind("listening on ", 0) != 0 || at == std::string::npos)
      throw std::runtime_error("the mock LLM did not start: " + l + " "
                               + proc_.err_text());
    url_ = (tls ? "https://" : "http://") + l.substr(13);
  }

  /// `http://127.0.0.1:PORT`, or `https://` when it serves TLS.
  const std::string& url() const {
    return url_;
  }

  pid_t pid() const {
    return proc_.pid();
  }

  /// The requests so far, in order: `method`, `target`, `headers`, `body`,
  /// `reply` (the rule used, -1 for the automatic reply).
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in{log_};
    std::string line;
    while (std::getline(in, line))
      if (!line.empty())
        out.push_back(nlohmann::json::parse(line));
    return out;
  }

  /// The log as it is, for looking for what must not be there.
  std::string log_text() const {
    std::ifstream in{log_};
    return {std::istreambuf_iterator<char>(in),
            std::istreambuf_iterator<char>()};
  }

private:
  static std::vector<std::string> start(const std::filesystem::path& dir,
                                        const nlohmann::json& script,
                                        const std::string& log,
                                        const std::optional<tls_files>& tls) {
    auto file = (dir / "mock-script.json").string();
    std::ofstream{file} << script.dump();
    std::vector<std::string> args{
      TROUPE_MOCK_LLM, "--port", "0", "--script", file, "--log", log};
    if (tls)
      args.insert(args.end(), {"--tls-cert", tls->cert, "--tls-key", tls->key});
    return args;
  }

  std::string log_;
  background proc_;
  std::string url_;
};

} // namespace troupe::test
