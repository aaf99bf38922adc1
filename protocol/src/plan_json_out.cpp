// Plans as JSON text, written straight into a string: the journal records
// every run's plan, and a plan of 100,000 workstreams through nlohmann's
// tree costs several times more. The text is what `to_json(plan)` makes;
// the tests hold the two to each other.

#include <string>

#include "json_writer.hpp"
#include "troupe/protocol/plan.hpp"

namespace troupe {

// In detail, beside the writer, so that write_all finds each `write`.
namespace detail {

void write(writer& w, const executor_spec& x) {
  // Keys in sorted order; an agent's options only when set.
  w.open('{');
  if (!x.allowed_tools.empty()) {
    w.key("allowed_tools");
    w.strings(x.allowed_tools);
  }
  w.key("cwd");
  w.string(x.cwd);
  w.key("env");
  w.strings(x.env);
  w.key("kind");
  w.string(x.kind);
  if (x.max_tokens != 0) {
    w.key("max_tokens");
    w.integer(x.max_tokens);
  }
  if (x.max_turns != 0) {
    w.key("max_turns");
    w.integer(x.max_turns);
  }
  if (!x.model.empty()) {
    w.key("model");
    w.string(x.model);
  }
  if (!x.permission_mode.empty()) {
    w.key("permission_mode");
    w.string(x.permission_mode);
  }
  w.key("run");
  w.string(x.run);
  w.key("seconds");
  w.number(x.seconds);
  if (!x.stream) {
    w.key("stream");
    w.boolean(false);
  }
  w.close('}');
}

void write(writer& w, const model_price& x) {
  w.open('{');
  w.key("cache_read");
  w.number(x.cache_read);
  w.key("cache_write");
  w.number(x.cache_write);
  w.key("input");
  w.number(x.input);
  w.key("output");
  w.number(x.output);
  w.close('}');
}

void write(writer& w, const cost_range& x) {
  w.open('[');
  w.number(x.low);
  w.number(x.high);
  w.close(']');
}

void write(writer& w, const workstream& x) {
  w.open('{');
  w.key("agent");
  w.string(to_string(x.agent));
  w.key("depends_on");
  w.strings(x.depends_on);
  w.key("estimate_s");
  w.number(x.estimate_s);
  if (!x.estimate_usd.empty()) {
    w.key("estimate_usd");
    write(w, x.estimate_usd);
  }
  w.key("executor");
  write(w, x.executor);
  w.key("id");
  w.string(x.id);
  if (x.iterates() && x.max_iterations != 0) {
    w.key("max_iterations");
    w.integer(x.max_iterations);
  }
  w.key("model");
  w.string(to_string(x.model));
  if (!x.output.empty()) {
    w.key("output");
    w.string(x.output);
  }
  w.key("owns");
  w.strings(x.owns);
  w.key("persona");
  w.string(x.persona);
  w.key("prompt");
  w.string(x.prompt);
  w.key("retries");
  w.integer(x.retries);
  // 0 means "the plan's default", which the plan schema spells by leaving
  // the key out.
  if (x.timeout_s != 0) {
    w.key("timeout_s");
    w.number(x.timeout_s);
  }
  w.key("title");
  w.string(x.title);
  if (x.iterates()) {
    w.key("until");
    w.open('{');
    if (!x.until.cwd.empty()) {
      w.key("cwd");
      w.string(x.until.cwd);
    }
    w.key("run");
    w.string(x.until.run);
    if (x.until.timeout_s != 0) {
      w.key("timeout_s");
      w.number(x.until.timeout_s);
    }
    w.close('}');
  }
  w.close('}');
}

void write(writer& w, const synthesis_spec& x) {
  w.open('{');
  if (!x.by_agent()) {
    w.key("persona");
    w.string(x.persona);
    w.close('}');
    return;
  }
  w.key("executor");
  write(w, x.executor);
  w.key("model");
  w.string(to_string(x.model));
  w.key("persona");
  w.string(x.persona);
  w.key("prompt");
  w.string(x.prompt);
  w.key("retries");
  w.integer(x.retries);
  if (x.timeout_s != 0) {
    w.key("timeout_s");
    w.number(x.timeout_s);
  }
  w.close('}');
}

void write(writer& w, const gate_check& x) {
  // The plan spelling: a bare word for the built-in checks, an object for
  // commands.
  if ((x.kind == "completion" || x.kind == "conflicts") && x.run.empty()
      && x.cwd.empty() && x.timeout_s == 0) {
    w.string(x.kind);
    return;
  }
  w.open('{');
  if (!x.cwd.empty()) {
    w.key("cwd");
    w.string(x.cwd);
  }
  if (x.kind != "command") {
    w.key("kind");
    w.string(x.kind);
  }
  w.key("run");
  w.string(x.run);
  if (x.timeout_s != 0) {
    w.key("timeout_s");
    w.number(x.timeout_s);
  }
  w.close('}');
}

void write(writer& w, const gate& x) {
  w.open('{');
  w.key("after");
  w.strings(x.after);
  w.key("checks");
  write_all(w, x.checks);
  w.key("id");
  w.string(x.id);
  w.key("remediate");
  w.open('{');
  w.key("executor");
  write(w, x.remediate.executor);
  w.key("max_attempts");
  w.integer(x.remediate.max_attempts);
  w.key("persona");
  w.string(x.remediate.persona);
  w.key("prompt");
  w.string(x.remediate.prompt);
  w.close('}');
  w.close('}');
}

} // namespace detail

using detail::write_all;
using detail::writer;

std::string json_text(const plan& x) {
  std::string out;
  out.reserve(256 + 256 * x.workstreams.size());
  writer w{out};
  w.open('{');
  w.key("gates");
  write_all(w, x.gates);
  w.key("goal");
  w.string(x.goal);
  w.key("name");
  w.string(x.name);
  if (!x.repo.empty()) {
    w.key("repo");
    w.open('{');
    if (!x.repo.base.empty()) {
      w.key("base");
      w.string(x.repo.base);
    }
    if (!x.repo.branch.empty()) {
      w.key("branch");
      w.string(x.repo.branch);
    }
    w.key("path");
    w.string(x.repo.path);
    if (!x.repo.url.empty()) {
      w.key("url");
      w.string(x.repo.url);
    }
    w.close('}');
  }
  w.key("settings");
  w.open('{');
  w.key("confirm_before_execute");
  w.boolean(x.settings.confirm_before_execute);
  if (!x.settings.cost_estimates.empty()) {
    w.key("cost_estimates");
    w.open('{');
    for (auto& [tier, range] : x.settings.cost_estimates) {
      w.key_text(tier);
      write(w, range);
    }
    w.close('}');
  }
  w.key("default_timeout_s");
  w.number(x.settings.default_timeout_s);
  if (!x.settings.limits.empty()) {
    w.key("limits");
    w.open('{');
    auto counts = [&](const char* key, const std::map<std::string, int32_t>& m) {
      if (m.empty())
        return;
      w.key(key);
      w.open('{');
      for (auto& [name, n] : m) {
        w.key_text(name);
        w.integer(n);
      }
      w.close('}');
    };
    counts("model", x.settings.limits.model);
    counts("persona", x.settings.limits.persona);
    w.close('}');
  }
  if (x.settings.max_cost_usd != 0) {
    w.key("max_cost_usd");
    w.number(x.settings.max_cost_usd);
  }
  w.key("max_parallel_agents");
  w.integer(x.settings.max_parallel_agents);
  w.key("max_phase_width");
  w.integer(x.settings.max_phase_width);
  w.key("max_subplan_depth");
  w.integer(x.settings.max_subplan_depth);
  w.key("max_workstreams");
  w.integer(x.settings.max_workstreams);
  if (!x.settings.models.empty()) {
    w.key("models");
    w.strings(x.settings.models);
  }
  w.key("on_failure");
  w.string(to_string(x.settings.on_failure));
  if (!x.settings.personas.empty()) {
    w.key("personas");
    w.strings(x.settings.personas);
  }
  if (!x.settings.prices.empty()) {
    w.key("prices");
    w.open('{');
    for (auto& [model, price] : x.settings.prices) {
      w.key_text(model);
      write(w, price);
    }
    w.close('}');
  }
  w.close('}');
  w.key("synthesis");
  write(w, x.synthesis);
  w.key("workstreams");
  write_all(w, x.workstreams);
  w.close('}');
  return out;
}

} // namespace troupe
