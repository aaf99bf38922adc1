#include "process_executor.hpp"

#include <chrono>
#include <filesystem>
#include <utility>

#include <caf/all.hpp>

#include "troupe/protocol/errors.hpp"
#include "troupe/runtime/executors.hpp"

namespace troupe::detail {

namespace {

using process_executor_actor = executor_actor::extend<
  caf::reacts_to<done_atom, workstream_result>>;

struct process_state {
  static inline const char* name = "troupe.process_executor";
  process_runner* runner = nullptr;
  job_maker make;
  uint64_t process_id = 0;
  bool started = false;
  bool cancel_requested = false;
  caf::response_promise rp;
  std::function<void()> cleanup;
};

process_executor_actor::behavior_type
process_executor(process_executor_actor::stateful_pointer<process_state> self,
                 process_runner* runner, job_maker make) {
  self->state.runner = runner;
  self->state.make = std::move(make);
  return {
    [=](run_atom, const workstream_spec& spec)
      -> caf::result<workstream_result> {
      auto& st = self->state;
      process_job job;
      std::string why;
      if (!st.make(spec, job, why)) {
        if (job.cleanup)
          job.cleanup();
        self->quit();
        return caf::make_error(errc::executor_failed, why);
      }
      st.rp = self->make_response_promise();
      st.cleanup = std::move(job.cleanup);
      auto me = caf::actor_cast<process_executor_actor>(self);
      st.process_id = st.runner->start(
        std::move(job.req),
        [me, to_result = std::move(job.to_result)](process_outcome o) {
          caf::anon_send(me, done_atom_v, to_result(o));
        });
      st.started = true;
      if (st.cancel_requested)
        st.runner->cancel(st.process_id);
      return st.rp;
    },
    [=](cancel_atom) {
      auto& st = self->state;
      st.cancel_requested = true;
      if (st.started)
        st.runner->cancel(st.process_id);
    },
    [=](done_atom, workstream_result& r) {
      auto& st = self->state;
      if (st.cleanup)
        st.cleanup();
      st.rp.deliver(std::move(r));
      self->quit();
    },
  };
}

} // namespace

executor_actor spawn_process_executor(caf::actor_system& sys,
                                      process_runner& runner, job_maker make) {
  return sys.spawn(process_executor, &runner, std::move(make));
}

process_request attempt_request(const workstream_spec& spec) {
  namespace fs = std::filesystem;
  process_request req;
  std::error_code ec;
  fs::path cwd = spec.workdir.empty() ? fs::current_path(ec)
                                      : fs::path{spec.workdir};
  if (!spec.ws.executor.cwd.empty())
    cwd /= spec.ws.executor.cwd;
  req.cwd = cwd.string();
  req.env = spec.ws.executor.env;
  req.env["TROUPE_WORKSTREAM"] = spec.ws.id;
  req.env["TROUPE_RUN_ID"] = spec.run_id;
  if (spec.timeout_s > 0)
    req.timeout = std::chrono::milliseconds(
      static_cast<int64_t>(spec.timeout_s * 1000));
  // A plan on stdout is read whole, not only its tail.
  if (spec.ws.makes_plan())
    req.output_limit = max_plan_output_bytes;
  return req;
}

std::string sh_quoted(const std::string& s) {
  std::string out = "'";
  for (auto c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

} // namespace troupe::detail
