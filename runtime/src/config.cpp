// The configuration file: where it is, what it may hold, and the
// environment over it (see config.hpp).

#include "troupe/runtime/config.hpp"
#include "troupe/runtime/files.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

namespace fs = std::filesystem;

namespace troupe {

using nlohmann::json;

namespace {

// Larger config files and key files are refused unread.
constexpr size_t max_config_bytes = size_t{1} << 20;
constexpr size_t max_key_bytes = 16 * 1024;

std::string env(const char* name) {
  auto v = std::getenv(name);
  return v != nullptr ? std::string{v} : std::string{};
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "nothing";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "a mapping";
    default:
      return "a number";
  }
}

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

/// Reads a config file and the files it names, collecting what is wrong.
class reader {
public:
  reader(std::string file, diagnostics& out)
    : file_(std::move(file)), dir_(fs::path{file_}.parent_path()), out_(out) {
  }

  /// `p` as the file means it: `~/` is the home directory, and a relative
  /// path is relative to the file's directory.
  std::string resolve(const std::string& p) const {
    if (p.rfind("~/", 0) == 0)
      return (fs::path{env("HOME")} / p.substr(2)).string();
    fs::path x{p};
    return x.is_absolute() || dir_.empty() ? p : (dir_ / x).string();
  }

  bool expect_object(const json& v, const std::string& path) {
    if (v.is_object())
      return true;
    out_.error(path, "expected a mapping, got " + describe(v));
    return false;
  }

  void reject_unknown(const json& v, const std::string& path,
                      const std::set<std::string>& known) {
    for (auto& [key, value] : v.items())
      if (known.count(key) == 0) {
        std::string names;
        for (auto& k : known)
          names += (names.empty() ? "" : ", ") + k;
        out_.error(join_path(path, key), "unknown key (expected one of "
                                           + names + ")");
      }
  }

  bool string_at(const json& v, const std::string& path, const char* key,
                 std::string& x) {
    auto i = v.find(key);
    if (i == v.end())
      return false;
    if (!i->is_string() || i->get_ref<const std::string&>().empty()) {
      out_.error(join_path(path, key),
                 "expected a non-empty string, got " + describe(*i));
      return false;
    }
    x = i->get<std::string>();
    return true;
  }

  bool seconds_at(const json& v, const std::string& path, const char* key,
                  std::chrono::milliseconds& x) {
    auto i = v.find(key);
    if (i == v.end())
      return false;
    if (!i->is_number() || !std::isfinite(i->get<double>())
        || !(i->get<double>() > 0) || i->get<double>() > 86400 * 7) {
      out_.error(join_path(path, key),
                 "expected seconds, more than 0 and at most a week");
      return false;
    }
    x = std::chrono::milliseconds{
      static_cast<int64_t>(std::llround(i->get<double>() * 1000))};
    return true;
  }

  bool count_at(const json& v, const std::string& path, const char* key,
                int32_t& x) {
    auto i = v.find(key);
    if (i == v.end())
      return false;
    if (!i->is_number_integer() || i->get<int64_t>() < 0
        || i->get<int64_t>() > 100) {
      out_.error(join_path(path, key), "expected a whole number, 0 to 100");
      return false;
    }
    x = static_cast<int32_t>(i->get<int64_t>());
    return true;
  }

  /// Reads an API key from `path` (resolved); false, having said why in
  /// `out`, when it cannot. Never quotes the key.
  bool read_key(const std::string& where, const std::string& path,
                std::string& key) {
    std::string text;
    if (auto why = read_small_file(path, max_key_bytes, text); !why.empty()) {
      out_.error(where, "cannot read " + path + ": " + why);
      return false;
    }
    auto end = text.find_last_not_of(" \t\r\n");
    auto begin = text.find_first_not_of(" \t\r\n");
    if (end == std::string::npos) {
      out_.error(where, path + " is empty");
      return false;
    }
    text = text.substr(begin, end - begin + 1);
    if (text.find_first_of("\r\n") != std::string::npos) {
      out_.error(where, path + " holds more than one line; it must hold "
                               "the key alone");
      return false;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      out_.warn(where, path + " can be read by other users; chmod 600 it");
    key = std::move(text);
    return true;
  }

  diagnostics& out() {
    return out_;
  }

private:
  std::string file_;
  fs::path dir_;
  diagnostics& out_;
};

const char* provider_key(llm_provider p) {
  return p == llm_provider::anthropic ? "anthropic" : "openai";
}

void read_provider(reader& r, const json& v, const std::string& path,
                   llm_endpoint& ep, troupe_config& cfg) {
  if (!r.expect_object(v, path))
    return;
  r.reject_unknown(v, path,
                   {"base_url", "api_key_file", "ca_file", "connect_timeout_s",
                    "read_timeout_s", "retries"});
  auto from_config = [&](const char* key) {
    cfg.sources[join_path(path, key)] = "config";
  };
  std::string s;
  if (r.string_at(v, path, "base_url", s)) {
    if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0)
      r.out().error(join_path(path, "base_url"),
                    "must start with http:// or https://");
    ep.base_url = s;
    from_config("base_url");
  }
  if (r.string_at(v, path, "api_key_file", s)) {
    auto file = r.resolve(s);
    if (r.read_key(join_path(path, "api_key_file"), file, ep.api_key))
      cfg.sources[join_path(path, "api_key")] = "file " + file;
  }
  if (r.string_at(v, path, "ca_file", s)) {
    ep.ca_file = r.resolve(s);
    from_config("ca_file");
  }
  if (r.seconds_at(v, path, "connect_timeout_s", ep.connect_timeout))
    from_config("connect_timeout_s");
  if (r.seconds_at(v, path, "read_timeout_s", ep.read_timeout))
    from_config("read_timeout_s");
  if (r.count_at(v, path, "retries", ep.max_retries))
    from_config("retries");
}

// Replaces each `{file: PATH}` persona with the file's text.
void read_persona_files(reader& r, json& settings, troupe_config& cfg) {
  auto i = settings.find("personas");
  if (i == settings.end() || !i->is_object())
    return;
  std::vector<std::string> unread;
  for (auto& [persona, value] : i->items()) {
    if (!value.is_object())
      continue;
    unread.push_back(persona);
    auto path = "settings.personas." + persona;
    r.reject_unknown(value, path, {"file"});
    std::string file;
    if (!r.string_at(value, path, "file", file)) {
      if (value.find("file") == value.end())
        r.out().error(path, "expected the prompt's text or {file: PATH}");
      continue;
    }
    file = r.resolve(file);
    std::string text;
    auto why = read_small_file(file, max_persona_prompt_bytes, text);
    if (!why.empty()) {
      r.out().error(join_path(path, "file"), "cannot read " + file + ": " + why);
      continue;
    }
    // Text, whatever the file holds: it goes into JSON and requests.
    value = valid_utf8(text);
    unread.pop_back();
    cfg.persona_files[persona] = file;
  }
  // What is wrong with them is said; the settings need not say it again.
  for (auto& persona : unread)
    i->erase(persona);
}

void apply_environment(troupe_config& cfg) {
  for (auto p : {llm_provider::anthropic, llm_provider::openai}) {
    auto& ep = p == llm_provider::anthropic ? cfg.anthropic : cfg.openai;
    std::string prefix = p == llm_provider::anthropic ? "ANTHROPIC" : "OPENAI";
    auto path = std::string{"providers."} + provider_key(p);
    if (auto url = env((prefix + "_BASE_URL").c_str()); !url.empty()) {
      ep.base_url = url;
      cfg.sources[path + ".base_url"] = "env " + prefix + "_BASE_URL";
    }
    if (auto key = env((prefix + "_API_KEY").c_str()); !key.empty()) {
      ep.api_key = key;
      cfg.sources[path + ".api_key"] = "env " + prefix + "_API_KEY";
    }
    while (!ep.base_url.empty() && ep.base_url.back() == '/')
      ep.base_url.pop_back();
  }
  if (auto cli = env("TROUPE_CLAUDE_CLI"); !cli.empty()) {
    cfg.claude_program = cli;
    cfg.sources["providers.claude-code.program"] = "env TROUPE_CLAUDE_CLI";
  }
}

troupe_config base_config() {
  troupe_config cfg;
  cfg.settings = std::make_shared<const json>(json::object());
  cfg.anthropic.provider = llm_provider::anthropic;
  cfg.anthropic.base_url = "https://api.anthropic.com";
  cfg.openai.provider = llm_provider::openai;
  cfg.openai.base_url = "https://api.openai.com/v1";
  return cfg;
}

// The file to read and how it was found; empty when none.
std::pair<std::string, std::string> locate(const std::string& explicit_path) {
  if (!explicit_path.empty())
    return {explicit_path, "--config"};
  if (auto named = env("TROUPE_CONFIG"); !named.empty())
    return {named, "TROUPE_CONFIG"};
  auto base = env("XDG_CONFIG_HOME");
  if (base.empty() && !env("HOME").empty())
    base = env("HOME") + "/.config";
  if (base.empty())
    return {};
  auto p = base + "/troupe/config.yaml";
  std::error_code ec;
  return fs::exists(p, ec) ? std::pair{p, std::string{"default path"}}
                           : std::pair{std::string{}, std::string{}};
}

} // namespace

troupe_config default_config() {
  auto cfg = base_config();
  apply_environment(cfg);
  return cfg;
}

troupe_config load_config(const std::string& explicit_path, diagnostics& out) {
  auto cfg = base_config();
  auto [path, found_by] = locate(explicit_path);
  if (!path.empty()) {
    cfg.path = path;
    cfg.found_by = found_by;
    std::string text;
    if (auto why = read_small_file(path, max_config_bytes, text);
        !why.empty()) {
      out.error("", "cannot read the config file: " + why);
      return cfg;
    }
    json j;
    auto format = fs::path{path}.extension() == ".json" ? "json" : "yaml";
    if (!parse_plan_text(text, format, j, out))
      return cfg;
    if (j.is_null())
      j = json::object();
    reader r{path, out};
    if (!r.expect_object(j, ""))
      return cfg;
    r.reject_unknown(j, "", {"settings", "providers", "git"});
    if (auto i = j.find("git");
        i != j.end() && !i->is_null() && r.expect_object(*i, "git")) {
      r.reject_unknown(*i, "git", {"author_name", "author_email"});
      r.string_at(*i, "git", "author_name", cfg.git_author_name);
      r.string_at(*i, "git", "author_email", cfg.git_author_email);
      // Git refuses these in a name or address.
      for (auto* f : {&cfg.git_author_name, &cfg.git_author_email})
        if (f->find_first_of("<>\n") != std::string::npos)
          out.error(f == &cfg.git_author_name ? "git.author_name"
                                              : "git.author_email",
                    "must not hold '<', '>' or a line break");
    }
    if (auto i = j.find("settings"); i != j.end() && !i->is_null()) {
      if (r.expect_object(*i, "settings")) {
        read_persona_files(r, *i, cfg);
        diagnostics found;
        auto s = decode_plan_settings(*i, "settings", found);
        // Validation may find again what decoding found: once per spot.
        validate_settings(s, found);
        std::set<std::string> said;
        for (auto& d : found.items())
          if (said.insert(d.path + '\n' + d.message).second
              && (d.warning || said.insert(d.path).second)) {
            if (d.warning)
              out.warn(d.path, d.message);
            else
              out.error(d.path, d.message);
          }
        cfg.settings = std::make_shared<const json>(*i);
      }
    }
    if (auto i = j.find("providers"); i != j.end() && !i->is_null()
                                      && r.expect_object(*i, "providers")) {
      r.reject_unknown(*i, "providers", {"anthropic", "openai", "claude-code"});
      for (auto p : {llm_provider::anthropic, llm_provider::openai})
        if (auto k = i->find(provider_key(p)); k != i->end())
          read_provider(r, *k,
                        std::string{"providers."} + provider_key(p),
                        p == llm_provider::anthropic ? cfg.anthropic
                                                     : cfg.openai,
                        cfg);
      if (auto k = i->find("claude-code"); k != i->end()) {
        std::string path = "providers.claude-code";
        if (r.expect_object(*k, path)) {
          r.reject_unknown(*k, path, {"program"});
          std::string program;
          if (r.string_at(*k, path, "program", program)) {
            cfg.claude_program = program.find('/') == std::string::npos
                                   ? program
                                   : r.resolve(program);
            cfg.sources[path + ".program"] = "config";
          }
        }
      }
    }
  }
  apply_environment(cfg);
  return cfg;
}

} // namespace troupe
