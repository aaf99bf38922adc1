// Reading the journal: runs, plans, events and reports.

#include <algorithm>
#include "troupe/runtime/journal.hpp"

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "troupe/protocol/diagnostics.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

#include "sqlite.hpp"

namespace troupe {

using sqlite::reset_on_exit;
using sqlite::statement;

namespace {

using json = nlohmann::json;

journaled_run read_run(statement& s) {
  journaled_run r;
  r.id = s.text(0);
  r.plan_name = s.text(1);
  r.status = s.text(2);
  r.started_at = s.real(3);
  r.finished_at = s.real(4);
  r.workstreams = s.integer(5);
  r.ended = s.integer(6);
  r.max_parallel = static_cast<int32_t>(s.integer(7));
  r.workdir = s.text(8);
  r.last_seq = static_cast<uint64_t>(s.integer(9));
  return r;
}

constexpr const char* run_columns
  = "id, plan_name, status, started_at, finished_at, workstreams, ended, "
    "max_parallel, workdir, last_seq";

event read_event(const std::string& path, std::string_view line) {
  try {
    return json::parse(line).get<event>();
  } catch (const json::exception& e) {
    throw journal_error("journal " + path + " holds an event it cannot read ("
                        + e.what() + ")");
  }
}

// Calls `f` with each line of a batch's body.
template <class F>
void each_line(std::string_view body, F f) {
  while (!body.empty()) {
    auto end = body.find('\n');
    if (end == std::string_view::npos)
      end = body.size();
    if (end > 0)
      f(body.substr(0, end));
    body.remove_prefix(std::min(body.size(), end + 1));
  }
}

} // namespace

std::vector<journaled_run> journal::runs() {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  auto sql = std::string{"SELECT "} + run_columns
             + " FROM runs ORDER BY started_at DESC, id";
  statement s{db_, path_, sql.c_str()};
  std::vector<journaled_run> out;
  while (s.step("listing runs"))
    out.push_back(read_run(s));
  return out;
}

std::optional<journaled_run> journal::find_run(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  auto sql = std::string{"SELECT "} + run_columns
             + " FROM runs WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 "
               "ORDER BY id = ?1 DESC LIMIT 2";
  statement s{db_, path_, sql.c_str()};
  s.bind(1, run_id);
  std::vector<journaled_run> found;
  while (s.step("finding a run"))
    found.push_back(read_run(s));
  if (found.empty() || run_id.empty())
    return std::nullopt;
  // An exact id wins; a prefix must name one run only.
  if (found.front().id == run_id || found.size() == 1)
    return found.front();
  throw journal_error("run id " + run_id + " is ambiguous in journal " + path_
                      + ": more than one run starts with it");
}

plan journal::load_plan(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_, "SELECT body FROM plans WHERE run = (SELECT key FROM runs "
                          "WHERE id = ?1)"};
  s.bind(1, run_id);
  if (!s.step("reading a plan"))
    throw journal_error("journal " + path_ + " has no run " + run_id);
  auto text = s.text(0);
  diagnostics diags;
  nlohmann::json j;
  plan p;
  if (parse_plan_text(text, "json", j, diags))
    p = decode_plan(j, diags);
  if (!diags.ok()) {
    std::string why;
    for (auto& d : diags.items())
      if (!d.warning)
        why += (why.empty() ? "" : "; ") + to_string(d);
    throw journal_error("journal " + path_ + " holds a plan for run " + run_id
                        + " that does not decode: " + why);
  }
  return p;
}

std::vector<event> journal::events(const std::string& run_id,
                                   uint64_t after_seq) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_,
              "SELECT body FROM event_batches WHERE run = (SELECT key FROM "
              "runs WHERE id = ?1) AND last_seq > ?2 ORDER BY first_seq"};
  s.bind(1, run_id).bind(2, static_cast<int64_t>(after_seq));
  std::vector<event> out;
  while (s.step("reading events"))
    each_line(s.text(0), [&](std::string_view line) {
      auto ev = read_event(path_, line);
      if (ev.seq > after_seq)
        out.push_back(std::move(ev));
    });
  return out;
}

std::vector<event> journal::results(const std::string& run_id,
                                    const std::string& subject) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_,
              "SELECT body FROM event_batches WHERE run = (SELECT key FROM "
              "runs WHERE id = ?1) ORDER BY first_seq"};
  s.bind(1, run_id);
  std::vector<event> out;
  while (s.step("reading results"))
    each_line(s.text(0), [&](std::string_view line) {
      // Events are written compact: only these lines can carry a result.
      static constexpr std::string_view kinds[]{
        "\"kind\":\"ws_ended\"", "\"kind\":\"ws_retrying\"",
        "\"kind\":\"ws_iterating\"", "\"kind\":\"ws_expanded\""};
      if (std::none_of(std::begin(kinds), std::end(kinds), [&](auto k) {
            return line.find(k) != std::string_view::npos;
          }))
        return;
      auto ev = read_event(path_, line);
      if (carries_result(ev.kind) && ev.subject == subject)
        out.push_back(std::move(ev));
    });
  return out;
}

std::optional<run_report> journal::report(const std::string& run_id) {
  std::lock_guard<std::recursive_mutex> lock{mtx_};
  statement s{db_, path_, "SELECT body FROM reports WHERE run = (SELECT key FROM "
                          "runs WHERE id = ?1)"};
  s.bind(1, run_id);
  if (!s.step("reading a report") || s.is_null(0))
    return std::nullopt;
  try {
    return json::parse(s.text(0)).get<run_report>();
  } catch (const json::exception& e) {
    throw journal_error("journal " + path_ + " holds a report for run "
                        + run_id + " it cannot read (" + e.what() + ")");
  }
}

} // namespace troupe
