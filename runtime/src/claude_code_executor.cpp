// The `claude-code` executor: the Claude Code CLI, headless, one process
// per attempt, its stream of JSON lines read as they come.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/executors.hpp"
#include "troupe/runtime/process.hpp"
#include "troupe/runtime/prompts.hpp"
#include "json_fields.hpp"
#include "process_executor.hpp"

namespace fs = std::filesystem;

namespace troupe {

namespace {

using nlohmann::json;
using detail::count_of;
using detail::field;
using detail::money_of;
using detail::text_of;

// Bytes of the reply kept as output, and as the `reply` output.
constexpr size_t output_limit = 64 * 1024;
// Bytes of one line of the CLI's stream read at most; a longer line (a big
// file in a tool's result) is cut, and only results are worth reading whole.
constexpr size_t line_limit = 8 << 20;

/// What the CLI's stream told so far; written by the runner's thread only.
struct stream_state {
  fs::path cwd;
  std::string session_id;
  /// The model the agent itself runs on, as the CLI names it.
  std::string model;
  /// Sub-agents the agent started (the CLI's Agent tool).
  int64_t sub_agents = 0;
  int64_t turns = 0;
  /// How far the agent got, told to `progress` as it goes: the assistant
  /// messages seen (by id, with their tokens), tool uses, the last tool.
  progress_notifier progress;
  /// Input tokens by message (fresh, cached and cache writes): the stream
  /// repeats a message's usage as its turn began, before its reply's
  /// tokens are known, so only what went in is counted as it goes.
  std::map<std::string, int64_t> messages;
  int64_t tool_uses = 0;
  std::string last_tool;
  std::set<std::string> files;
  /// The last `result` line, whole.
  json result;
  bool have_result = false;
  /// Lines that were not JSON: a CLI too old for stream-json, or noise.
  int64_t junk = 0;
};

// Files an edit tool touched, relative to the directory the CLI ran in
// when below it.
void note_edit(stream_state& st, const json& input) {
  auto path = text_of(input, "file_path");
  if (path.empty())
    path = text_of(input, "notebook_path");
  if (path.empty())
    return;
  fs::path p{path};
  if (p.is_absolute()) {
    auto rel = p.lexically_relative(st.cwd);
    if (!rel.empty() && *rel.begin() != "..")
      p = rel;
  }
  st.files.insert(valid_utf8(p.lexically_normal().string()));
}

// Tells whoever follows the attempt how far the agent got.
void tell_progress(stream_state& st) {
  int64_t in = 0;
  for (auto& [id, tokens] : st.messages)
    in = sum_tokens(in, tokens);
  auto n = static_cast<int64_t>(st.messages.size());
  auto text = "turn " + std::to_string(n) + ", "
              + std::to_string(st.tool_uses) + " tool use"
              + (st.tool_uses == 1 ? "" : "s")
              + (st.last_tool.empty() ? "" : " (last: " + st.last_tool + ")")
              + ", " + std::to_string(in) + " tokens in";
  if (st.sub_agents > 0)
    text += ", " + std::to_string(st.sub_agents) + " sub-agent"
            + (st.sub_agents == 1 ? "" : "s");
  st.progress(std::move(text));
}

void read_line(stream_state& st, std::string_view line) {
  auto j = detail::parse_outside(line);
  if (j.is_discarded() || !j.is_object()) {
    st.junk += 1;
    return;
  }
  auto type = text_of(j, "type");
  if (type == "system") {
    auto sid = text_of(j, "session_id");
    if (!sid.empty())
      st.session_id = sid;
    auto subtype = text_of(j, "subtype");
    if (subtype == "init") {
      st.model = valid_utf8(text_of(j, "model"));
    } else if (subtype == "task_started") {
      st.sub_agents += 1;
      tell_progress(st);
    }
  } else if (type == "assistant") {
    auto m = field(j, "message");
    if (m == nullptr)
      return;
    // A sub-agent's turns are its own: only the files it edits count here.
    auto parent = field(j, "parent_tool_use_id");
    bool own = parent == nullptr || parent->is_null();
    // A message may come in several lines, each with its usage so far.
    if (own) {
      auto& tokens = st.messages[text_of(*m, "id")];
      if (auto u = field(*m, "usage"); u && u->is_object())
        tokens = sum_tokens(
          sum_tokens(count_of(*u, "input_tokens"),
                     count_of(*u, "cache_read_input_tokens")),
          count_of(*u, "cache_creation_input_tokens"));
    }
    auto content = field(*m, "content");
    if (content == nullptr || !content->is_array()) {
      if (own)
        tell_progress(st);
      return;
    }
    for (auto& block : *content) {
      if (text_of(block, "type") != "tool_use")
        continue;
      auto name = text_of(block, "name");
      if (own) {
        st.tool_uses += 1;
        st.last_tool = utf8_head(valid_utf8(name), 64);
      }
      auto input = field(block, "input");
      if (input && (name == "Write" || name == "Edit" || name == "MultiEdit"
                    || name == "NotebookEdit"))
        note_edit(st, *input);
    }
    if (own)
      tell_progress(st);
  } else if (type == "result") {
    if (st.session_id.empty())
      st.session_id = text_of(j, "session_id");
    st.result = std::move(j);
    st.have_result = true;
    st.turns = count_of(st.result, "num_turns");
  }
}

// The tokens of a `usage` object of the CLI's (the Messages API's names),
// on `model`.
usage tokens_of(const json& u, const std::string& model) {
  usage x;
  x.model = model;
  x.input_tokens = count_of(u, "input_tokens");
  x.output_tokens = count_of(u, "output_tokens");
  x.cache_read_tokens = count_of(u, "cache_read_input_tokens");
  x.cache_write_tokens = count_of(u, "cache_creation_input_tokens");
  return x;
}

// The usage the CLI reports: one entry per model it used, with its own
// cost, which adds up to its total.
std::vector<usage> usage_of(const json& result, const std::string& model) {
  std::vector<usage> out;
  if (auto mu = field(result, "modelUsage"); mu && mu->is_object()) {
    for (auto& [name, m] : mu->items()) {
      if (!m.is_object())
        continue;
      usage u;
      u.model = valid_utf8(name);
      u.input_tokens = count_of(m, "inputTokens");
      u.output_tokens = count_of(m, "outputTokens");
      u.cache_read_tokens = count_of(m, "cacheReadInputTokens");
      u.cache_write_tokens = count_of(m, "cacheCreationInputTokens");
      u.cost_usd = money_of(m, "costUSD");
      add_usage(out, u);
    }
    if (!out.empty())
      return out;
  }
  if (auto u = field(result, "usage"); u && u->is_object()) {
    auto x = tokens_of(*u, model);
    x.cost_usd = money_of(result, "total_cost_usd");
    out.push_back(x);
  }
  return out;
}

// The sub-agents' part of `total` (the CLI's usage per model): all but
// the agent's own calls, which the result's `usage` counts, all on
// `model`, the one it runs. Where its sub-agents ran on that model too, the
// model's cost is shared by the tokens' worth at `price` (by count if
// unpriced).
std::vector<usage> sub_agent_part(const std::vector<usage>& total,
                                  const json& result, const std::string& model,
                                  const model_price& price) {
  auto u = field(result, "usage");
  if (u == nullptr || !u->is_object())
    return {};
  auto main = std::find_if(total.begin(), total.end(),
                           [&](const usage& x) { return x.model == model; });
  if (main == total.end())
    return {};
  auto own = tokens_of(*u, model);
  auto worth = [&](const usage& x) {
    double at_price = cost_usd(x, price);
    if (at_price > 0)
      return at_price;
    return static_cast<double>(x.input_tokens) + x.output_tokens
           + x.cache_read_tokens + x.cache_write_tokens;
  };
  double all = worth(*main);
  own.cost_usd = all > 0 ? main->cost_usd * std::min(1.0, worth(own) / all)
                         : main->cost_usd;
  return usage_less(total, {own});
}

workstream_result to_result(const workstream_spec& spec, process_outcome& o,
                            stream_state& st) {
  auto r = attempt_result(spec);
  r.wall_s = std::chrono::duration<double>(o.wall).count();
  r.exit_code = o.exit_code;
  make_valid_utf8(o.err);
  r.files_changed.assign(st.files.begin(), st.files.end());
  if (!o.spawn_error.empty()) {
    r.status = ws_state::failed;
    r.summary = "claude-code: " + o.spawn_error;
    r.output = r.summary;
    return r;
  }
  std::string reply;
  if (st.have_result) {
    auto& res = st.result;
    reply = valid_utf8(text_of(res, "result"));
    r.usage = usage_of(res, spec.model);
    // Sub-agents started, as the stream told them or the result counts.
    auto spawned = st.sub_agents;
    if (auto stats = field(res, "subagent_stats"))
      spawned = std::max(spawned, count_of(*stats, "spawned"));
    if (spawned > 0) {
      r.outputs["sub_agents"] = std::to_string(spawned);
      r.sub_agent_usage = sub_agent_part(
        r.usage, res, st.model.empty() ? spec.model : st.model, spec.price);
    }
    if (!st.session_id.empty())
      r.outputs["session_id"] = valid_utf8(st.session_id);
    r.outputs["num_turns"] = std::to_string(st.turns);
    auto subtype = valid_utf8(text_of(res, "subtype"));
    r.outputs["subtype"] = subtype;
    if (!reply.empty())
      r.outputs["reply"] = utf8_head(reply, output_limit);
    auto is_error = field(res, "is_error");
    bool error = (is_error && is_error->is_boolean() && is_error->get<bool>())
                 || subtype != "success" || o.exit_code != 0;
    r.status = error ? ws_state::failed : ws_state::succeeded;
    if (!error) {
      r.summary = last_line(reply);
      if (r.summary.empty())
        r.summary = "(an empty reply)";
    } else {
      // An API error is `is_error` with subtype "success" and the error as
      // the result; running out of turns or budget has no result at all.
      std::string why = subtype == "success" ? "" : subtype;
      auto detail = last_line(reply, 500);
      if (auto errs = field(res, "errors"); errs && errs->is_array())
        for (auto& e : *errs)
          if (e.is_string() && detail.empty())
            detail = utf8_clip(valid_utf8(e.get<std::string>()), 500);
      if (!detail.empty())
        why += (why.empty() ? "" : ": ") + detail;
      if (why.empty())
        why = "exit code " + std::to_string(o.exit_code);
      r.summary = "claude-code: " + why;
    }
  } else {
    r.status = ws_state::failed;
    auto why = last_line(o.err, 500);
    if (why.empty())
      why = last_line(o.out, 500);
    r.summary = "claude-code: "
                + (why.empty() ? "ended without a result (exit code "
                                   + std::to_string(o.exit_code) + ")"
                               : why);
  }
  if (o.cancelled)
    r.status = ws_state::cancelled;
  else if (o.timed_out) {
    r.status = ws_state::timed_out;
    r.summary = "timed out after " + std::to_string(spec.timeout_s) + " s";
  }
  std::string out;
  if (!o.err.empty())
    out = utf8_tail(o.err, output_limit / 4) + "\n";
  out += reply.empty() ? r.summary : reply;
  r.output = utf8_tail(out, output_limit);
  return r;
}

// The CLI's command line: the prompt goes on stdin, never in an argument
// or the environment (Linux takes none over 128 KiB).
std::string command_line(const claude_code_config& cfg,
                         const workstream_spec& spec) {
  auto& x = spec.ws.executor;
  std::string cmd = "exec " + detail::sh_quoted(cfg.program)
                    + " -p --output-format stream-json --verbose";
  if (!spec.model.empty())
    cmd += " --model " + detail::sh_quoted(spec.model);
  if (x.max_turns > 0)
    cmd += " --max-turns " + std::to_string(x.max_turns);
  if (!x.allowed_tools.empty()) {
    std::string tools;
    for (auto& t : x.allowed_tools)
      tools += (tools.empty() ? "" : ",") + t;
    // One argument with '=': a list flag would take the next word too.
    cmd += " " + detail::sh_quoted("--allowedTools=" + tools);
  }
  if (!x.permission_mode.empty())
    cmd += " --permission-mode " + detail::sh_quoted(x.permission_mode);
  if (spec.budget_usd > 0) {
    // Its share of the run's budget, never rounded up.
    char amount[32];
    std::snprintf(amount, sizeof(amount), "%.6f",
                  std::floor(spec.budget_usd * 1e6) / 1e6);
    cmd += std::string{" --max-budget-usd "} + amount;
  }
  cmd += " --append-system-prompt " + detail::sh_quoted(system_prompt_of(spec));
  return cmd;
}

// Prepares an attempt of the CLI: a directory of its own for its
// temporary files (removed when it ends), the prompt on stdin.
bool make_job(const claude_code_config& cfg, const workstream_spec& spec,
              detail::process_job& job, std::string& why) {
  std::error_code ec;
  auto base = fs::temp_directory_path(ec);
  if (ec)
    base = "/tmp";
  auto templ = (base / ("troupe-claude-" + spec.ws.id + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    why = "cannot create a directory in " + base.string() + ": "
          + std::strerror(errno);
    return false;
  }
  fs::path scratch{templ};
  job.cleanup = [scratch] {
    std::error_code ignored;
    fs::remove_all(scratch, ignored);
  };
  job.req = detail::attempt_request(spec);
  auto& req = job.req;
  req.command = command_line(cfg, spec);
  req.env["TMPDIR"] = scratch.string();
  if (!cfg.api_key.empty())
    req.env["ANTHROPIC_API_KEY"] = cfg.api_key;
  if (!cfg.base_url.empty())
    req.env["ANTHROPIC_BASE_URL"] = cfg.base_url;
  req.input = agent_prompt(spec.ws.prompt, spec.context);
  req.line_limit = line_limit;
  auto stream = std::make_shared<stream_state>();
  stream->cwd = fs::path{req.cwd}.lexically_normal();
  stream->progress = progress_notifier{spec};
  req.on_line = [stream](std::string_view line) { read_line(*stream, line); };
  job.to_result = [spec, stream](process_outcome& o) {
    return to_result(spec, o, *stream);
  };
  return true;
}

// `name` found on PATH, or as a path; empty when it is no executable file.
std::string find_program(const std::string& name) {
  auto runnable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    std::error_code ec;
    auto p = fs::absolute(name, ec);
    return !ec && runnable(p) ? p.string() : "";
  }
  auto path = std::getenv("PATH");
  std::istringstream dirs{path ? path : ""};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty())
      continue;
    auto p = fs::path{dir} / name;
    if (runnable(p))
      return p.string();
  }
  return {};
}

} // namespace

bool find_claude_code(const std::string& program,
                      const std::string& named_by, claude_code_config& out,
                      std::string& why) {
  auto name = program.empty() ? std::string{"claude"} : program;
  out.program = find_program(name);
  if (!out.program.empty())
    return true;
  why = !program.empty()
          ? named_by + " names \"" + name + "\", which is no executable file "
            "here"
          : "the Claude Code CLI (\"claude\") is not on PATH here; install "
            "it (npm install -g @anthropic-ai/claude-code), or name it in "
            "TROUPE_CLAUDE_CLI or the config file's "
            "providers.claude-code.program";
  return false;
}

executor_actor spawn_claude_code_executor(
  caf::actor_system& sys, std::shared_ptr<const claude_code_config> cfg,
  process_runner& runner) {
  return detail::spawn_process_executor(
    sys, runner,
    [cfg](const workstream_spec& spec, detail::process_job& job,
          std::string& why) { return make_job(*cfg, spec, job, why); });
}

} // namespace troupe
