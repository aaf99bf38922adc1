// Checks of a plan's parts that validation shares: paths, numbers,
// executors, and the plan's synthesis (see plan_checks.hpp).

#include "plan_checks.hpp"

#include <cmath>

#include "decode_fields.hpp"
#include "text.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/planning.hpp"

namespace troupe::detail {

/// Where diagnostics about workstream `i` go: its index and id, as decoding
/// names it.
std::string ws_path(const plan& p, size_t i) {
  return element_path("workstreams", i, p.workstreams[i].id);
}

/// Where diagnostics about gate `k` go.
std::string gate_path(const plan& p, size_t k) {
  return element_path("gates", k, p.gates[k].id);
}

/// False, with an error, for infinities and NaN. No plan text spells them,
/// but plans built in code or sent by other nodes may hold them, and CAF
/// 0.17 cannot send an infinite number on: its serializer never returns.
bool check_finite(double x, const std::string& path, diagnostics& out) {
  if (std::isfinite(x))
    return true;
  out.error(path, "must be a finite number, got " + format_number(x));
  return false;
}

void check_executor(const executor_spec& x, const std::string& path,
                    const validation_options& opts, diagnostics& out) {
  if (x.kind.empty()) {
    out.error(path + ".kind", "must not be empty");
  } else if (auto u = opts.unavailable_executors.find(x.kind);
             u != opts.unavailable_executors.end()
             && opts.executor_kinds.count(x.kind) == 0) {
    out.error(path + ".kind",
              "executor " + quote(x.kind) + " cannot run here: " + u->second);
  } else if (opts.executor_kinds.count(x.kind) == 0) {
    std::string available;
    for (auto& k : opts.executor_kinds)
      available += (available.empty() ? "" : ", ") + k;
    out.error(path + ".kind",
              "unknown executor " + quote(x.kind) + " (available: " + available
                + ")");
  }
  if (x.kind == "command" && x.run.empty())
    out.error(path + ".run", "must not be empty for a command executor");
  if (check_finite(x.seconds, path + ".seconds", out) && x.seconds < 0)
    out.error(path + ".seconds",
              "must not be negative, got " + format_number(x.seconds));
}

void validate_synthesis(
  const plan& p, const std::unordered_map<std::string_view, size_t>& ws_ids,
  const std::unordered_map<std::string_view, size_t>& gate_ids,
  const validation_options& opts, diagnostics& out) {
  auto& x = p.synthesis;
  if (x.persona.empty())
    out.error("synthesis.persona", "must not be empty");
  if (!x.by_agent()) {
    // As decoding refuses them: a plan sent by a peer may hold them, and
    // no plan file could carry them.
    auto none = [&](bool set, const char* key) {
      if (set)
        out.error(std::string{"synthesis."} + key,
                  "applies to the agent that writes the synthesis, and "
                  "synthesis.executor names none");
    };
    none(!x.prompt.empty(), "prompt");
    none(x.model != model_tier::deep, "model");
    none(x.timeout_s != 0, "timeout_s");
    none(x.retries != 0, "retries");
    return;
  }
  check_executor(x.executor, "synthesis.executor", opts, out);
  if (is_agent_executor(x.executor.kind)) {
    auto w = synthesis_workstream(p);
    if (resolve_model(p.settings, w).empty())
      out.error("synthesis.model",
                "no model for tier " + quote(to_string(w.model))
                  + " with executor " + quote(w.executor.kind)
                  + ": name one in settings.models." + to_string(w.model)
                  + " or the executor's model");
  }
  if (x.executor.kind == "noop" || x.executor.kind == "sleep")
    out.error("synthesis.executor.kind",
              "executor " + quote(x.executor.kind)
                + " writes nothing; the synthesis takes an agent (anthropic, "
                  "openai, claude-code) or a command that reads "
                  "$TROUPE_CONTEXT");
  if (check_finite(x.timeout_s, "synthesis.timeout_s", out) && x.timeout_s < 0)
    out.error("synthesis.timeout_s",
              "must be positive, got " + format_number(x.timeout_s));
  if (x.retries < 0)
    out.error("synthesis.retries",
              "must not be negative, got " + std::to_string(x.retries));
  // The agent's work is reported under this id, beside the plan's.
  if (auto w = ws_ids.find(synthesis_id); w != ws_ids.end())
    out.error(ws_path(p, w->second) + ".id",
              "id " + quote(synthesis_id)
                + " is the synthesis agent's (synthesis.executor); choose "
                  "another");
  if (auto g = gate_ids.find(synthesis_id); g != gate_ids.end())
    out.error(gate_path(p, g->second) + ".id",
              "id " + quote(synthesis_id)
                + " is the synthesis agent's (synthesis.executor); choose "
                  "another");
}

} // namespace troupe::detail
