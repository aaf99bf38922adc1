#include "troupe/runtime/run_dir.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/git.hpp"

namespace troupe {

namespace {

using nlohmann::json;

// The most bytes `changes.json` and `decision.json` may take.
constexpr size_t max_record_bytes = size_t{64} << 20;

std::string path_in(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

std::string write_json(const std::string& dir, const std::string& name,
                       const json& j) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec)
    ec = write_file_atomically(path_in(dir, name), json_text(j, 2) + "\n");
  if (ec)
    return "cannot write " + path_in(dir, name) + ": " + ec.message();
  return {};
}

std::string read_json(const std::string& dir, const std::string& name,
                      json& j) {
  std::string text;
  auto why = read_small_file(path_in(dir, name), max_record_bytes, text);
  if (!why.empty())
    return path_in(dir, name) + ": " + why;
  j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return path_in(dir, name) + " is not a JSON object";
  return {};
}

// Holds an exclusive lock on the run directory while it lives.
class dir_lock {
public:
  explicit dir_lock(const std::string& dir) {
    fd_ = ::open(path_in(dir, ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC,
                 0644);
    if (fd_ < 0) {
      why_
        = "cannot open " + path_in(dir, ".lock") + ": " + std::strerror(errno);
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) {
        why_ = "cannot lock " + dir + ": " + std::strerror(errno);
        return;
      }
  }
  ~dir_lock() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  dir_lock(const dir_lock&) = delete;
  dir_lock& operator=(const dir_lock&) = delete;

  const std::string& why() const {
    return why_;
  }

private:
  int fd_ = -1;
  std::string why_;
};

} // namespace

std::string default_run_dir(const std::string& repo, const std::string& id) {
  return repo + "/.troupe/runs/" + id;
}

std::string write_diff(const std::string& run_dir, const std::string& name,
                       const std::string& diff) {
  auto dir = path_in(run_dir, "diffs");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec)
    ec = write_file_atomically(path_in(dir, name), diff);
  if (ec)
    return "cannot write " + path_in(dir, name) + ": " + ec.message();
  return {};
}

std::string write_change_set(const std::string& run_dir, const change_set& c) {
  json changes = json::array();
  for (auto& x : c.changes)
    changes.push_back({{"id", x.id},
                       {"title", x.title},
                       {"persona", x.persona},
                       {"message", x.message},
                       {"diff", x.diff_file},
                       {"files", x.files},
                       {"lines_added", x.added},
                       {"lines_removed", x.removed}});
  json j = {{"run_id", c.run_id},
            {"repo", c.repo},
            {"base", c.base},
            {"branch", c.branch},
            {"author_name", c.author_name},
            {"author_email", c.author_email},
            {"changes", changes}};
  return write_json(run_dir, "changes.json", j);
}

std::string read_change_set(const std::string& run_dir, change_set& c) {
  json j;
  if (auto why = read_json(run_dir, "changes.json", j); !why.empty())
    return why;
  try {
    c.run_id = j.at("run_id").get<std::string>();
    c.repo = j.at("repo").get<std::string>();
    c.base = j.at("base").get<std::string>();
    c.branch = j.at("branch").get<std::string>();
    c.author_name = j.at("author_name").get<std::string>();
    c.author_email = j.at("author_email").get<std::string>();
    c.changes.clear();
    for (auto& x : j.at("changes")) {
      accepted_change a;
      a.id = x.at("id").get<std::string>();
      a.title = x.at("title").get<std::string>();
      a.persona = x.at("persona").get<std::string>();
      a.message = x.at("message").get<std::string>();
      a.diff_file = x.at("diff").get<std::string>();
      a.files = x.at("files").get<std::vector<std::string>>();
      a.added = x.at("lines_added").get<int64_t>();
      a.removed = x.at("lines_removed").get<int64_t>();
      c.changes.push_back(std::move(a));
    }
  } catch (const json::exception& e) {
    return path_in(run_dir, "changes.json") + " is damaged: " + e.what();
  }
  return {};
}

std::string read_decision(const std::string& run_dir, change_decision& d) {
  d = {};
  if (!std::filesystem::exists(path_in(run_dir, "decision.json")))
    return {};
  json j;
  if (auto why = read_json(run_dir, "decision.json", j); !why.empty())
    return why;
  d.decision = j.value("decision", std::string{});
  d.branch = j.value("branch", std::string{});
  if (auto i = j.find("commits"); i != j.end() && i->is_array())
    for (auto& c : *i)
      if (c.is_string())
        d.commits.push_back(c.get<std::string>());
  return {};
}

std::string decide_changes(process_runner& runner, const std::string& run_dir,
                           bool approve, change_decision& d) {
  change_set c;
  if (auto why = read_change_set(run_dir, c); !why.empty())
    return why;
  dir_lock lock{run_dir};
  if (!lock.why().empty())
    return lock.why();
  if (auto why = read_decision(run_dir, d); !why.empty())
    return why;
  if (!d.decision.empty())
    return "run " + c.run_id + " was " + d.decision + " already";
  if (!approve) {
    d.decision = "rejected";
    return write_json(run_dir, "decision.json", {{"decision", "rejected"}});
  }
  std::vector<planned_commit> commits;
  for (auto& x : c.changes) {
    planned_commit k;
    auto file = path_in(run_dir, x.diff_file);
    auto why = read_small_file(file, max_diff_bytes, k.diff);
    if (!why.empty())
      return file + ": " + why;
    k.message = x.message;
    commits.push_back(std::move(k));
  }
  std::vector<std::string> ids;
  std::string why;
  if (!commit_changes(runner, c.repo, c.base, c.branch, commits, c.author_name,
                      c.author_email, path_in(run_dir, "commit.index"), ids,
                      why))
    return why;
  d.decision = "committed";
  d.branch = c.branch;
  d.commits = ids;
  return write_json(
    run_dir, "decision.json",
    {{"decision", "committed"}, {"branch", c.branch}, {"commits", ids}});
}

std::string diff_head(const std::string& diff, size_t max_lines) {
  std::string out;
  size_t pos = 0;
  for (size_t n = 0; n < max_lines && pos < diff.size(); ++n) {
    auto end = diff.find('\n', pos);
    if (end == std::string::npos)
      end = diff.size();
    out += utf8_head(std::string_view{diff}.substr(pos, end - pos), 200);
    out += '\n';
    pos = end + 1;
  }
  return valid_utf8(out);
}

} // namespace troupe
