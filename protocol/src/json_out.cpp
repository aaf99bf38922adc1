// Plans, events and reports as JSON text, written straight into a string.
//
// The journal writes every plan, event and report a run makes, and through
// nlohmann's tree (a node per field, then a dump) that costs several times
// what the orchestrator spends on them otherwise. This writes the JSON the
// `to_json` functions make (the same keys in the same sorted order, strings
// made well-formed UTF-8 as `json_text` makes them), which `from_json` and
// the plan decoder read back; the tests hold the two to each other.

#include <charconv>
#include <map>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/protocol/plan.hpp"
#include "troupe/protocol/result.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

// Appends JSON to a string; `item` starts a value in an array or object,
// with the comma it needs.
class writer {
public:
  explicit writer(std::string& out) : out_(out) {
  }

  void open(char c) {
    item();
    out_ += c;
    first_ = true;
  }

  void close(char c) {
    out_ += c;
    first_ = false;
  }

  // A key of the writer's own: plain ASCII, taken as it is.
  void key(std::string_view k) {
    item();
    out_ += '"';
    raw(k);
    raw("\":");
    first_ = true; // its value takes no comma
  }

  // A key from the data.
  void key_text(std::string_view k) {
    string(k);
    out_ += ':';
    first_ = true;
  }

  void string(std::string_view s) {
    item();
    if (plain_ascii(s)) {
      out_ += '"';
      raw(s);
      out_ += '"';
    } else if (is_valid_utf8(s)) {
      escaped(s);
    } else {
      escaped(valid_utf8(s));
    }
  }

  template <class Int>
  void integer(Int x) {
    item();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    out_.append(buf, r.ptr);
  }

  // As nlohmann writes doubles: null when not finite, else the shortest
  // text that reads back as the same double, with a fraction or an
  // exponent so that it reads back as a double.
  void number(double x) {
    item();
    if (!std::isfinite(x)) {
      raw("null");
      return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    std::string_view text{buf, static_cast<size_t>(r.ptr - buf)};
    raw(text);
    if (text.find_first_of(".e") == std::string_view::npos)
      raw(".0");
  }

  void boolean(bool x) {
    item();
    raw(x ? "true" : "false");
  }

  void strings(const std::vector<std::string>& xs) {
    open('[');
    for (auto& x : xs)
      string(x);
    close(']');
  }

  void strings(const std::map<std::string, std::string>& xs) {
    open('{');
    for (auto& [k, v] : xs) {
      key_text(k);
      string(v);
    }
    close('}');
  }

private:
  void raw(std::string_view s) {
    out_.append(s.data(), s.size());
  }

  // ASCII that needs no escape, as most text here is: one pass without a
  // branch per byte.
  static bool plain_ascii(std::string_view s) {
    unsigned bad = 0;
    for (unsigned char c : s)
      bad |= static_cast<unsigned>(c < 0x20) | (c >> 7)
             | static_cast<unsigned>(c == '"')
             | static_cast<unsigned>(c == '\\');
    return bad == 0;
  }

  void item() {
    if (!first_)
      out_ += ',';
    first_ = false;
  }

  void escaped(std::string_view s) {
    out_ += '"';
    size_t plain = 0; // where the characters taken as they are start
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      out_.append(s.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"': raw("\\\""); break;
        case '\\': raw("\\\\"); break;
        case '\b': raw("\\b"); break;
        case '\f': raw("\\f"); break;
        case '\n': raw("\\n"); break;
        case '\r': raw("\\r"); break;
        case '\t': raw("\\t"); break;
        default: {
          static constexpr char hex[] = "0123456789abcdef";
          char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
          out_.append(u, sizeof(u));
        }
      }
    }
    out_.append(s.data() + plain, s.size() - plain);
    out_ += '"';
  }

  std::string& out_;
  bool first_ = true;
};

template <class T>
void write_all(writer& w, const std::vector<T>& xs);

void write(writer& w, const usage& x) {
  w.open('{');
  w.key("cache_read_tokens");
  w.integer(x.cache_read_tokens);
  w.key("cache_write_tokens");
  w.integer(x.cache_write_tokens);
  w.key("cost_usd");
  w.number(x.cost_usd);
  w.key("input_tokens");
  w.integer(x.input_tokens);
  w.key("model");
  w.string(x.model);
  w.key("output_tokens");
  w.integer(x.output_tokens);
  w.close('}');
}

void write(writer& w, const check_result& x) {
  w.open('{');
  w.key("detail");
  w.string(x.detail);
  w.key("name");
  w.string(x.name);
  w.key("passed");
  w.boolean(x.passed);
  w.close('}');
}

void write(writer& w, const workstream_result& x) {
  w.open('{');
  w.key("attempts");
  w.integer(x.attempts);
  w.key("exit_code");
  w.integer(x.exit_code);
  w.key("files_changed");
  w.strings(x.files_changed);
  w.key("id");
  w.string(x.id);
  w.key("node");
  w.string(x.node);
  w.key("output");
  w.string(x.output);
  w.key("outputs");
  w.strings(x.outputs);
  w.key("persona");
  w.string(x.persona);
  w.key("started_s");
  w.number(x.started_s);
  w.key("status");
  w.string(to_string(x.status));
  w.key("summary");
  w.string(x.summary);
  w.key("title");
  w.string(x.title);
  w.key("usage");
  write_all(w, x.usage);
  w.key("wall_s");
  w.number(x.wall_s);
  w.close('}');
}

void write(writer& w, const gate_result& x) {
  w.open('{');
  w.key("attempts");
  w.integer(x.attempts);
  w.key("checks");
  write_all(w, x.checks);
  w.key("id");
  w.string(x.id);
  w.key("status");
  w.string(to_string(x.status));
  w.close('}');
}

template <class T>
void write_all(writer& w, const std::vector<T>& xs) {
  w.open('[');
  for (auto& x : xs)
    write(w, x);
  w.close(']');
}

// -- plans --------------------------------------------------------------------

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

void write(writer& w, const workstream& x) {
  w.open('{');
  w.key("agent");
  w.string(to_string(x.agent));
  w.key("depends_on");
  w.strings(x.depends_on);
  w.key("estimate_s");
  w.number(x.estimate_s);
  w.key("executor");
  write(w, x.executor);
  w.key("id");
  w.string(x.id);
  w.key("model");
  w.string(to_string(x.model));
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

} // namespace

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
  w.key("settings");
  w.open('{');
  w.key("confirm_before_execute");
  w.boolean(x.settings.confirm_before_execute);
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
  w.key("max_parallel_agents");
  w.integer(x.settings.max_parallel_agents);
  w.key("max_phase_width");
  w.integer(x.settings.max_phase_width);
  if (!x.settings.models.empty()) {
    w.key("models");
    w.strings(x.settings.models);
  }
  w.key("on_failure");
  w.string(to_string(x.settings.on_failure));
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
  w.open('{');
  w.key("persona");
  w.string(x.synthesis.persona);
  w.close('}');
  w.key("workstreams");
  write_all(w, x.workstreams);
  w.close('}');
  return out;
}

std::string json_text(const run_report& x) {
  std::string out;
  out.reserve(1024 + x.markdown.size() + 512 * x.workstreams.size());
  writer w{out};
  w.open('{');
  w.key("critical_path");
  w.strings(x.critical_path);
  w.key("critical_path_s");
  w.number(x.critical_path_s);
  w.key("gates");
  write_all(w, x.gates);
  w.key("goal");
  w.string(x.goal);
  w.key("markdown");
  w.string(x.markdown);
  // Only a report that is partial says so.
  if (x.partial) {
    w.key("partial");
    w.boolean(true);
  }
  w.key("plan");
  w.string(x.plan);
  w.key("rerun");
  w.strings(x.rerun);
  w.key("run_id");
  w.string(x.run_id);
  w.key("sequential_s");
  w.number(x.sequential_s);
  w.key("status");
  w.string(to_string(x.status));
  w.key("synthesized_by");
  w.string(x.synthesized_by);
  w.key("usage");
  write_all(w, x.usage);
  w.key("wall_s");
  w.number(x.wall_s);
  w.key("workstreams");
  write_all(w, x.workstreams);
  w.close('}');
  return out;
}

void append_json(std::string& out, const event& x) {
  writer w{out};
  w.open('{');
  w.key("at");
  w.number(x.at);
  w.key("attempt");
  w.integer(x.attempt);
  if (carries_checks(x.kind)) {
    w.key("checks");
    write_all(w, x.checks);
  }
  w.key("kind");
  w.string(to_string(x.kind));
  w.key("message");
  w.string(x.message);
  w.key("node");
  w.string(x.node);
  if (carries_result(x.kind)) {
    w.key("result");
    write(w, x.result);
  }
  w.key("run_id");
  w.string(x.run_id);
  w.key("seq");
  w.integer(x.seq);
  w.key("state");
  w.string(x.state);
  w.key("subject");
  w.string(x.subject);
  w.key("t_s");
  w.number(x.t_s);
  w.close('}');
}

std::string json_text(const event& x) {
  std::string out;
  out.reserve(256 + (carries_result(x.kind) ? x.result.output.size() : 0));
  append_json(out, x);
  return out;
}

} // namespace troupe
