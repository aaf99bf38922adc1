#pragma once

// The integrator of a run on a git repository: it checks each accepted
// change against what its workstream owns, applies it onto the run's
// integration tree, and when the run ends records what committing means
// (and commits, when approved), then removes the tree. It waits for git on
// a thread of its own.

#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "troupe/runtime/run_dir.hpp"

namespace troupe {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accepted_change& x) {
  return f(caf::meta::type_name("troupe::accepted_change"), x.id, x.title,
           x.persona, x.message, x.diff_file, x.files, x.added, x.removed);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, change_set& x) {
  return f(caf::meta::type_name("troupe::change_set"), x.run_id, x.repo, x.base,
           x.branch, x.author_name, x.author_email, x.changes);
}

} // namespace troupe

namespace troupe::orch {

using integrate_atom = caf::atom_constant<caf::atom("integrate")>;
constexpr integrate_atom integrate_atom_v{};
using seal_atom = caf::atom_constant<caf::atom("seal")>;
constexpr seal_atom seal_atom_v{};

/// What became of a change handed to the integrator.
struct integration_outcome {
  /// `integrated`; `ownership` (it changes files its workstream does not
  /// own); `conflict` (it does not apply onto the integrated tree); or
  /// `failed` (git could not read it, or the tree could not be made).
  std::string verdict;
  std::string why;
  /// The files it changes (both names of a rename), and its lines.
  std::vector<std::string> files;
  int64_t added = 0;
  int64_t removed = 0;
  /// Once integrated: everything integrated so far as one diff from the
  /// base, and the file the change is kept in, under the run directory.
  std::string patch;
  std::string diff_file;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, integration_outcome& x) {
  return f(caf::meta::type_name("troupe::orch::integration_outcome"), x.verdict,
           x.why, x.files, x.added, x.removed, x.patch, x.diff_file);
}

/// What sealing a run did: recorded its changes to await a decision
/// (`awaiting`), committed them (`committed`, with the commits), or
/// neither, saying why (`why`).
struct seal_outcome {
  std::string approval;
  std::vector<std::string> commits;
  std::string why;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, seal_outcome& x) {
  return f(caf::meta::type_name("troupe::orch::seal_outcome"), x.approval,
           x.commits, x.why);
}

/// `integrate_atom` takes a workstream's id, its change and what it owns;
/// `seal_atom` takes the run's change set (empty when its work did not
/// succeed: nothing to commit) and whether it is approved already, and
/// ends the integrator.
using integrator_actor = caf::typed_actor<
  caf::replies_to<integrate_atom, std::string, std::string,
                  std::vector<std::string>>::with<integration_outcome>,
  caf::replies_to<seal_atom, change_set, bool>::with<seal_outcome>>;

/// `xs` as one line: "a, b, c".
inline std::string joined(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ", ") + x;
  return out;
}

/// Spawns the integrator of a run on `repo` from commit `base`, keeping its
/// files in `run_dir`.
integrator_actor spawn_integrator(caf::actor_system& sys, std::string repo,
                                  std::string base, std::string run_dir);

} // namespace troupe::orch
