#include "troupe/runtime/executors.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/config.hpp"
#include "troupe/runtime/http_client.hpp"
#include "troupe/runtime/log.hpp"
#include "troupe/runtime/process.hpp"
#include "troupe/runtime/result_file.hpp"
#include "process_executor.hpp"

namespace fs = std::filesystem;

namespace troupe {

std::shared_ptr<executor_registry> executor_registry::with_builtins() {
  return executors_for(default_config());
}

std::shared_ptr<executor_registry> executors_for(const troupe_config& cfg) {
  auto reg = std::make_shared<executor_registry>();
  reg->add("command", [](caf::actor_system& sys) {
    return spawn_command_executor(sys, process_runner::shared());
  });
  reg->add("sleep",
           [](caf::actor_system& sys) { return spawn_sleep_executor(sys); });
  for (auto* endpoint : {&cfg.anthropic, &cfg.openai}) {
    auto ep = std::make_shared<const llm_endpoint>(*endpoint);
    reg->add(to_string(endpoint->provider), [ep](caf::actor_system& sys) {
      return spawn_llm_executor(sys, ep, http_client::shared());
    });
  }
  claude_code_config cc;
  std::string why;
  auto source = cfg.sources.find("providers.claude-code.program");
  std::string named_by =
    source == cfg.sources.end() || source->second == "config"
      ? "providers.claude-code.program in " + cfg.path
      : source->second.substr(source->second.find(' ') + 1);
  if (find_claude_code(cfg.claude_program, named_by, cc, why)) {
    // The CLI talks to Anthropic itself: it gets what the config file
    // says of it (the environment's, when it says nothing, it has anyway).
    auto set = [&](const char* key) {
      auto i = cfg.sources.find(std::string{"providers.anthropic."} + key);
      return i != cfg.sources.end() && i->second.rfind("env ", 0) != 0;
    };
    if (set("api_key"))
      cc.api_key = cfg.anthropic.api_key;
    if (set("base_url"))
      cc.base_url = cfg.anthropic.base_url;
    auto cfg = std::make_shared<const claude_code_config>(std::move(cc));
    reg->add("claude-code", [cfg](caf::actor_system& sys) {
      return spawn_claude_code_executor(sys, cfg, process_runner::shared());
    });
  } else {
    reg->unavailable("claude-code", why);
  }
  return reg;
}

void executor_registry::add(std::string kind, executor_factory f) {
  factories_[std::move(kind)] = std::move(f);
}

const executor_factory*
executor_registry::find(const std::string& kind) const {
  auto i = factories_.find(kind);
  return i == factories_.end() ? nullptr : &i->second;
}

void executor_registry::unavailable(std::string kind, std::string why) {
  unavailable_[std::move(kind)] = std::move(why);
}

validation_options executor_registry::validation() const {
  validation_options v;
  v.executor_kinds = kinds();
  v.unavailable_executors = unavailable_;
  return v;
}

std::set<std::string> executor_registry::kinds() const {
  std::set<std::string> result{"noop"};
  for (auto& [k, f] : factories_)
    result.insert(k);
  return result;
}

workstream_result attempt_result(const workstream_spec& spec) {
  workstream_result r;
  r.id = spec.ws.id;
  r.persona = spec.ws.persona;
  r.title = spec.ws.title;
  r.attempts = spec.attempt;
  return r;
}

progress_notifier::progress_notifier(const workstream_spec& spec)
  : to_(spec.progress),
    run_id_(spec.run_id),
    ws_id_(spec.ws.id),
    attempt_(spec.attempt),
    key_(spec.key) {
  // Nothing.
}

void progress_notifier::operator()(std::string how_far) const {
  if (to_)
    caf::anon_send(caf::actor_cast<progress_actor>(to_), progress_atom_v,
                   run_id_, ws_id_, attempt_, key_, std::move(how_far));
}

std::string last_line(const std::string& text, size_t max) {
  auto end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos)
    return {};
  auto begin = text.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return utf8_clip(valid_utf8(text.substr(begin, end - begin + 1)), max);
}

namespace {

// Bytes of a result file read at most; a bigger one is ignored.
constexpr size_t result_file_limit = 1 << 20;
// Bytes of a prompt also passed in TROUPE_PROMPT, beside its file: the
// environment and the arguments of a command share a few hundred KiB, and
// Linux takes no single string over 128 KiB.
constexpr size_t prompt_env_limit = 32 * 1024;
// Bytes of a command given to `/bin/sh -c` as an argument; a longer one is
// run from a file.
constexpr size_t command_arg_limit = 64 * 1024;

// UTF-8 continuation bytes, which never start a character.
const std::string continuation_bytes = [] {
  std::string s;
  for (int b = 0x80; b <= 0xBF; ++b)
    s += static_cast<char>(b);
  return s;
}();

// Where an attempt keeps its context and result files: a directory of its
// own in one per run.
fs::path scratch_dir(const workstream_spec& spec) {
  std::error_code ec;
  auto base = fs::temp_directory_path(ec);
  if (ec)
    base = "/tmp";
  auto run = spec.run_id.empty() ? std::string{"adhoc"} : spec.run_id;
  return base / ("troupe-" + run)
         / (spec.ws.id + "-" + std::to_string(spec.attempt) + "."
            + std::to_string(spec.dispatch));
}

// Creates an attempt's scratch directory and the run's above it.
std::error_code make_scratch_dir(const fs::path& dir) {
  std::error_code ec;
  // Another attempt of the run, ending, removes the run's directory when
  // it finds it empty: that can happen between our creating (or finding)
  // it and creating ours inside. Then both are made again.
  for (int tries = 0; tries < 100; ++tries) {
    fs::create_directories(dir, ec);
    if (ec != std::errc::no_such_file_or_directory)
      return ec;
  }
  return ec;
}

// Removes an attempt's scratch directory, and the run's when no other
// attempt has one there any more.
void remove_scratch_dir(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  // remove() takes an empty directory only; one that is not empty belongs
  // to attempts still running, and the last of them removes it.
  fs::remove(dir.parent_path(), ec);
}

// Writes `text` to `file`; false when it could not.
bool write_scratch_file(const fs::path& file, const std::string& text) {
  std::ofstream out{file, std::ios::binary};
  out << text;
  out.close();
  return !out.fail();
}

// Reads at most `limit` bytes of a regular file; says why not in `why`.
// Opening without blocking and checking the type first keeps a FIFO or a
// link to a device from hanging the executor or feeding it forever.
bool read_small_file(const fs::path& file, size_t limit, std::string& text,
                     std::string& why) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    why = errno == ENOENT ? "" : std::strerror(errno);
    return false;
  }
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  if (ok && !S_ISREG(st.st_mode)) {
    why = "not a regular file";
    ok = false;
  } else if (ok && static_cast<size_t>(st.st_size) > limit) {
    why = "larger than " + std::to_string(limit) + " bytes";
    ok = false;
  }
  char buf[65536];
  while (ok) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n == 0)
      break;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      why = std::strerror(errno);
      ok = false;
    } else if (text.size() + static_cast<size_t>(n) > limit) {
      why = "larger than " + std::to_string(limit) + " bytes";
      ok = false;
    } else {
      text.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return ok;
}

// Reads the optional result file a command wrote; one that cannot be read
// is reported in the output and otherwise ignored.
void read_result_file(const fs::path& file, workstream_result& r) {
  std::string text;
  std::string why;
  if (!read_small_file(file, result_file_limit, text, why)) {
    if (!why.empty())
      r.output += "\n[troupe] ignored TROUPE_RESULT: " + why;
    return;
  }
  apply_result_file(text, r);
}

workstream_result to_result(const workstream_spec& spec,
                            process_outcome& o, const fs::path& scratch) {
  auto r = attempt_result(spec);
  r.wall_s = std::chrono::duration<double>(o.wall).count();
  r.exit_code = o.exit_code;
  if (!o.spawn_error.empty()) {
    r.status = ws_state::failed;
    r.output = o.spawn_error;
    r.summary = o.spawn_error;
    return r;
  }
  if (o.cancelled)
    r.status = ws_state::cancelled;
  else if (o.timed_out)
    r.status = ws_state::timed_out;
  else
    r.status = o.exit_code == 0 ? ws_state::succeeded : ws_state::failed;
  // Commands print any bytes, and a kept tail may begin inside a
  // character: from here on it is text.
  for (auto* text : {&o.out, &o.err}) {
    if (o.dropped > 0)
      text->erase(0, text->find_first_not_of(continuation_bytes));
    make_valid_utf8(*text);
  }
  r.output = o.out;
  if (!o.err.empty()) {
    if (!r.output.empty() && r.output.back() != '\n')
      r.output += '\n';
    r.output += o.err;
  }
  if (o.dropped > 0)
    r.output = "[troupe] " + std::to_string(o.dropped)
               + " bytes of output dropped\n" + r.output;
  r.summary = last_line(o.out);
  // A plan is what the command printed, unless its result file says.
  if (spec.ws.makes_plan() && r.status == ws_state::succeeded) {
    if (o.dropped > 0) {
      r.status = ws_state::failed;
      r.summary = "the plan printed is longer than "
                  + std::to_string(max_plan_output_bytes) + " bytes";
    } else {
      r.outputs["plan"] = o.out;
    }
    r.output = utf8_tail(r.output, 64 * 1024);
  }
  read_result_file(scratch / "result.json", r);
  if (r.status == ws_state::timed_out)
    r.summary = "timed out after " + std::to_string(spec.timeout_s) + " s";
  else if (r.status == ws_state::failed && r.summary.empty())
    r.summary = last_line(o.err);
  if (r.status == ws_state::failed && o.signal != 0 && r.summary.empty())
    r.summary = "killed by signal " + std::to_string(o.signal);
  return r;
}

// Prepares an attempt of a command: its scratch files, its environment.
bool make_command_job(const workstream_spec& spec, detail::process_job& job,
                      std::string& why) {
  auto scratch = scratch_dir(spec);
  job.cleanup = [scratch] { remove_scratch_dir(scratch); };
  auto ec = make_scratch_dir(scratch);
  if (ec) {
    why = "cannot create " + scratch.string() + ": " + ec.message();
    return false;
  }
  auto context_file = scratch / "context.json";
  auto prompt_file = scratch / "prompt.txt";
  auto command_file = scratch / "command.sh";
  auto& run = spec.ws.executor.run;
  bool long_command = run.size() > command_arg_limit;
  auto context = spec.context.empty() ? std::string{"{}"} : spec.context;
  std::vector<std::pair<fs::path, const std::string*>> files{
    {context_file, &context}, {prompt_file, &spec.ws.prompt}};
  if (long_command)
    files.emplace_back(command_file, &run);
  for (auto& [file, text] : files) {
    if (!write_scratch_file(file, *text)) {
      why = "cannot write " + file.string();
      return false;
    }
  }
  fs::remove(scratch / "result.json", ec);
  job.req = detail::attempt_request(spec);
  auto& req = job.req;
  // Linux starts no program with an argument over 128 KiB: a long command
  // runs from its file.
  req.command = long_command ? "exec /bin/sh "
                                 + detail::sh_quoted(command_file.string())
                             : run;
  req.env["TROUPE_PROMPT_FILE"] = prompt_file.string();
  // A big prompt is in its file only. The variable is unset rather than
  // left out, or one this process inherited would pose as the prompt.
  if (spec.ws.prompt.size() <= prompt_env_limit)
    req.env["TROUPE_PROMPT"] = spec.ws.prompt;
  else
    req.command = "unset TROUPE_PROMPT; " + req.command;
  req.env["TROUPE_CONTEXT"] = context_file.string();
  req.env["TROUPE_RESULT"] = (scratch / "result.json").string();
  req.env["TROUPE_ATTEMPT"] = std::to_string(spec.attempt);
  req.env["TROUPE_PERSONA"] = spec.ws.persona;
  req.env["TROUPE_MODEL"] = to_string(spec.ws.model);
  job.to_result = [spec, scratch](process_outcome& o) {
    return to_result(spec, o, scratch);
  };
  return true;
}

struct sleep_state {
  static inline const char* name = "troupe.sleep_executor";
  caf::response_promise rp;
  workstream_result result;
  bool done = false;
};

using sleep_executor_actor = executor_actor::extend<caf::reacts_to<done_atom>>;

sleep_executor_actor::behavior_type
sleep_executor(sleep_executor_actor::stateful_pointer<sleep_state> self) {
  return {
    [=](run_atom, const workstream_spec& spec)
      -> caf::result<workstream_result> {
      auto& st = self->state;
      st.rp = self->make_response_promise();
      st.result = attempt_result(spec);
      auto& r = st.result;
      auto want = spec.ws.executor.seconds;
      if (spec.timeout_s > 0 && spec.timeout_s < want) {
        want = spec.timeout_s;
        r.status = ws_state::timed_out;
        r.summary = "timed out after " + std::to_string(spec.timeout_s)
                    + " s";
      } else {
        r.status = ws_state::succeeded;
        r.exit_code = 0;
        r.summary = "slept " + std::to_string(want) + " s";
      }
      r.wall_s = want;
      self->delayed_send(self,
                         std::chrono::microseconds(
                           static_cast<int64_t>(want * 1e6)),
                         done_atom_v);
      return st.rp;
    },
    [=](cancel_atom) {
      auto& st = self->state;
      if (st.done)
        return;
      st.result.status = ws_state::cancelled;
      st.result.summary = "cancelled";
      st.done = true;
      st.rp.deliver(st.result);
      self->quit();
    },
    [=](done_atom) {
      auto& st = self->state;
      if (st.done)
        return;
      st.done = true;
      st.rp.deliver(st.result);
      self->quit();
    },
  };
}

} // namespace

executor_actor spawn_command_executor(caf::actor_system& sys,
                                      process_runner& runner) {
  return detail::spawn_process_executor(sys, runner, make_command_job);
}

executor_actor spawn_sleep_executor(caf::actor_system& sys) {
  return sys.spawn(sleep_executor);
}

} // namespace troupe
