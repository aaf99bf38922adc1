#include "integrator.hpp"

#include <algorithm>
#include <filesystem>
#include <memory>

#include <caf/all.hpp>

#include "troupe/protocol/plan_io.hpp"
#include "troupe/runtime/files.hpp"
#include "troupe/runtime/git.hpp"
#include "troupe/runtime/process.hpp"

namespace troupe::orch {

namespace {

struct integrator_state {
  static inline const char* name = "troupe.integrator";
  std::string repo;
  std::string base;
  std::string run_dir;
  std::unique_ptr<integration_tree> tree;
  /// Changes integrated so far, to name their files in order.
  int32_t integrated = 0;
};

using integrator_ptr = integrator_actor::stateful_pointer<integrator_state>;

// The files of `files` that no glob of `owns` matches.
std::vector<std::string> not_owned(const std::vector<std::string>& files,
                                   const std::vector<std::string>& owns) {
  std::vector<std::string> out;
  for (auto& f : files)
    if (std::none_of(owns.begin(), owns.end(),
                     [&](const std::string& g) { return glob_matches(g, f); }))
      out.push_back(f);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

integration_outcome integrate(integrator_ptr self, const std::string& id,
                              const std::string& diff,
                              const std::vector<std::string>& owns) {
  auto& st = self->state;
  auto& runner = process_runner::shared();
  integration_outcome out;
  diff_stat stat;
  if (!read_diff_stat(runner, st.repo, diff, stat, out.why)) {
    out.verdict = "failed";
    return out;
  }
  out.files = stat.files;
  out.added = stat.added;
  out.removed = stat.removed;
  if (auto bad = not_owned(stat.files, owns); !bad.empty()) {
    out.verdict = "ownership";
    out.why = owns.empty() ? "it owns no files, and changed " + joined(bad)
                           : "it changed files it does not own (" + joined(owns)
                               + "): " + joined(bad);
    return out;
  }
  // Nothing changed: nothing to integrate, nor to commit.
  if (diff.empty()) {
    out.verdict = "integrated";
    out.patch = st.tree ? st.tree->patch() : std::string{};
    return out;
  }
  if (!st.tree) {
    st.tree = std::make_unique<integration_tree>(runner, st.repo, st.base,
                                                 st.run_dir + "/integration");
    if (!st.tree->open(out.why)) {
      st.tree.reset();
      out.verdict = "failed";
      out.why = "the integration tree cannot be made: " + out.why;
      return out;
    }
  }
  if (!st.tree->apply(diff, out.why)) {
    out.verdict = "conflict";
    return out;
  }
  auto name = id;
  std::replace(name.begin(), name.end(), '/', '+');
  out.diff_file
    = "diffs/" + std::to_string(++st.integrated) + "-" + name + ".patch";
  if (auto why = write_diff(st.run_dir, out.diff_file.substr(6), diff);
      !why.empty()) {
    out.verdict = "failed";
    out.why = why;
    return out;
  }
  out.verdict = "integrated";
  out.patch = st.tree->patch();
  return out;
}

seal_outcome seal(integrator_ptr self, const change_set& changes,
                  bool approved) {
  auto& st = self->state;
  seal_outcome out;
  if (st.tree)
    st.tree->remove();
  st.tree.reset();
  std::error_code ec;
  std::filesystem::remove(st.run_dir + "/workspaces", ec);
  if (changes.run_id.empty())
    return out;
  if (auto why = write_change_set(st.run_dir, changes); !why.empty()) {
    out.why = why;
    return out;
  }
  if (!approved) {
    out.approval = "awaiting";
    return out;
  }
  change_decision d;
  out.why = decide_changes(process_runner::shared(), st.run_dir, true, d);
  out.approval = out.why.empty() ? d.decision : "awaiting";
  out.commits = d.commits;
  return out;
}

integrator_actor::behavior_type integrator(integrator_ptr self,
                                           std::string repo, std::string base,
                                           std::string run_dir) {
  self->state.repo = std::move(repo);
  self->state.base = std::move(base);
  self->state.run_dir = std::move(run_dir);
  // Marks the directory as a run's on a repository (`troupe resume` reads
  // it), before any work of the run is dispatched.
  std::error_code ec;
  std::filesystem::create_directories(self->state.run_dir, ec);
  // Troupe's own directory in the repository stays out of `git status`.
  auto own = self->state.repo + "/.troupe";
  if (self->state.run_dir.compare(0, own.size() + 1, own + "/") == 0
      && !std::filesystem::exists(own + "/.gitignore"))
    write_file_atomically(own + "/.gitignore", "*\n");
  write_file_atomically(self->state.run_dir + "/repository",
                        self->state.repo + "\n");
  self->attach_functor([=] {
    if (self->state.tree)
      self->state.tree->remove();
  });
  return {
    [=](integrate_atom, const std::string& id, const std::string& diff,
        const std::vector<std::string>& owns) {
      return integrate(self, id, diff, owns);
    },
    [=](seal_atom, const change_set& changes, bool approved) {
      auto out = seal(self, changes, approved);
      self->quit();
      return out;
    },
  };
}

} // namespace

integrator_actor spawn_integrator(caf::actor_system& sys, std::string repo,
                                  std::string base, std::string run_dir) {
  return sys.spawn<caf::detached>(integrator, std::move(repo), std::move(base),
                                  std::move(run_dir));
}

} // namespace troupe::orch
