#pragma once

// Runs of `troupe run --repo` on a test repository, and what tests look at
// in their reports and commits.

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/git_repo.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

using nlohmann::json;

// Runs `plan` (YAML) on `repo` with `args` added, its report in `report`.
inline cli_result run_on(const git_repo& repo, const std::string& plan,
                         std::vector<std::string> args, json& report) {
  temp_dir out;
  auto file = out.write("plan.yaml", plan);
  std::vector<std::string> all{
    "run",      file,           "-q",       "--repo",
    repo.str(), "--no-journal", "--report", (out.path() / "r.json").string()};
  all.insert(all.end(), args.begin(), args.end());
  // No terminal: a run that needs approval leaves it to `troupe approve`.
  auto r = run_troupe(all, out.str(), "exec </dev/null; ");
  report = json::parse(out.read("r.json"), nullptr, false);
  return r;
}

inline const json& ws_of(const json& report, const std::string& id) {
  for (auto& w : report.at("workstreams"))
    if (w.at("id") == id)
      return w;
  throw std::runtime_error("no workstream " + id);
}

// The subjects of the commits from `base` to `branch`, oldest first.
inline std::vector<std::string> subjects(const git_repo& repo,
                                         const std::string& base,
                                         const std::string& branch) {
  return split_lines(
    repo.git("log --reverse --format=%s " + base + ".." + branch));
}

inline std::string changes_of(const git_repo& repo, const std::string& commit) {
  return repo.git("diff-tree --no-commit-id -r -M --name-status " + commit);
}

inline const std::string three_edits = R"(name: edits
workstreams:
  - id: edit-a
    title: Append to a
    owns: [a.txt]
    executor: {kind: command, run: "printf 'A\\n' >> a.txt"}
  - id: edit-b
    title: Append to b and add a binary file
    owns: [b.txt, bin/]
    executor: {kind: command, run: "printf 'B\\n' >> b.txt && mkdir -p bin && printf '\\000\\001\\377\\n\\r' > bin/blob.bin"}
  - id: move
    title: Rename, delete and make executable
    owns: [old.txt, new.txt, gone.txt, run.sh]
    executor: {kind: command, run: "mv old.txt new.txt && rm gone.txt && chmod +x run.sh"}
  - id: after
    title: Fold b into a
    owns: [a.txt]
    depends_on: [edit-a, edit-b]
    executor: {kind: command, run: "cat b.txt >> a.txt"}
)";

inline const std::map<std::string, std::string> files{
  {"a.txt", "a\n"},
  {"b.txt", "b\n"},
  {"old.txt", "a file that moves, long enough to be seen as renamed\n"},
  {"gone.txt", "deleted\n"},
  {"run.sh", "#!/bin/sh\necho hi\n"}};

} // namespace troupe::test
