#include "progress.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <cctype>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "troupe/actors/run_tracker.hpp"
#include "troupe/protocol/utf8.hpp"
#include "troupe/runtime/files.hpp"

namespace troupe::cli {

namespace {

using tick_atom = caf::atom_constant<caf::atom("tick")>;
constexpr tick_atom tick_atom_v{};

constexpr auto redraw_interval = std::chrono::milliseconds(200);

using progress_actor_t
  = progress_view_actor::extend<caf::reacts_to<tick_atom>>;

struct running_ws {
  std::string persona;
  std::string title;
  std::string state;
  double since = 0;
  double estimate = 0;
  int32_t attempt = 0;
  /// How far its agent got, as it last said.
  std::string detail;
};

struct progress_state {
  static inline const char* name = "troupe.progress";
  progress_config cfg;
  std::unordered_map<std::string, const workstream*> defs;
  /// Workstreams of sub-plans seen so far (`parent/child`): they count as
  /// the plan's.
  std::unordered_set<std::string> children;
  std::map<std::string, running_ws> running;
  /// What the events said so far, for a partial report (always set).
  std::optional<run_tracker> tracker;
  size_t total = 0;
  size_t done = 0;
  size_t failed = 0;
  size_t blocked = 0;
  double done_time = 0;
  double t = 0;
  size_t drawn = 0;
  bool finished = false;
  std::chrono::steady_clock::time_point start
      = std::chrono::steady_clock::now();
};

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Characters (code points) in well-formed UTF-8 text.
size_t width(const std::string& s) {
  size_t n = 0;
  for (auto c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// `s` as exactly `n` characters of one terminal line: cut with "~", or
// padded with spaces.
std::string fit(const std::string& text, size_t n) {
  auto s = terminal_text(text);
  auto w = width(s);
  if (w > n) {
    // Keep n - 1 characters, then the mark.
    size_t kept = 0;
    size_t i = 0;
    for (; i < s.size(); ++i) {
      if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && kept++ == n - 1)
        break;
    }
    return s.substr(0, i) + "~";
  }
  s.append(n - w, ' ');
  return s;
}

void clear_live(progress_state& st) {
  for (size_t i = 0; i < st.drawn; ++i)
    std::fputs("\x1b[1A\x1b[2K", stderr);
  st.drawn = 0;
}

void draw_live(progress_state& st) {
  clear_live(st);
  auto now = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                           - st.start)
                 .count();
  for (auto& [id, r] : st.running) {
    auto elapsed = now - r.since;
    std::string bar;
    int pct = -1;
    if (r.estimate > 0) {
      pct = std::min(99, static_cast<int>(100 * elapsed / r.estimate));
      auto filled = pct / 10;
      for (int i = 0; i < 10; ++i)
        bar += i < filled ? "\xe2\x96\x88" : "\xe2\x96\x91";
    } else {
      auto pos = static_cast<int>(elapsed * 5) % 10;
      for (int i = 0; i < 10; ++i)
        bar += i == pos ? "\xe2\x96\x88" : "\xe2\x96\x91";
    }
    char line[640];
    std::snprintf(line, sizeof(line), " %s [%s] %s %s %6.1fs %s%s%s\n",
                  fit(upper(r.persona), 10).c_str(), bar.c_str(),
                  pct >= 0 ? (std::to_string(pct) + "%").c_str() : "  ?",
                  fit(id + (r.title != id ? " - " + r.title : ""), 40).c_str(),
                  elapsed, r.state.c_str(),
                  r.attempt > 1
                      ? (" (attempt " + std::to_string(r.attempt) + ")").c_str()
                      : "",
                  r.detail.empty()
                      ? ""
                      : (": " + fit(terminal_text(r.detail), 60)).c_str());
    std::fputs(line, stderr);
    ++st.drawn;
  }
  char totals[256];
  std::string eta = "-";
  if (st.done > 0 && st.done < st.total) {
    auto avg = st.done_time / st.done;
    auto left = avg * (st.total - st.done)
                / std::max<int32_t>(1, st.cfg.max_parallel);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "~%.0fs", left);
    eta = buf;
  }
  std::snprintf(totals, sizeof(totals),
                " %zu/%zu done, %zu running, %zu failed, %zu blocked, "
                "%.1fs elapsed, ETA %s\n",
                st.done, st.total, st.running.size(), st.failed, st.blocked,
                now, eta.c_str());
  std::fputs(totals, stderr);
  ++st.drawn;
  std::fflush(stderr);
}

// What an event is about, as a line names it.
const char* topic(event_kind k) {
  if (k == event_kind::ws_iterating || k == event_kind::ws_expanded)
    return "workstream";
  if (k >= event_kind::node_joined)
    return "node";
  if (k >= event_kind::gate_evaluating)
    return "gate";
  if (k >= event_kind::ws_ready)
    return "workstream";
  return "run";
}

bool is_workstream_event(event_kind k) {
  return std::string_view{topic(k)} == "workstream";
}

// A gate's command check (`g.check1`) or fixer (`g.fix2`).
bool gate_work(const std::string& id) {
  auto dot = id.rfind('.');
  if (dot == std::string::npos || dot < id.rfind('/'))
    return false;
  auto tail = id.substr(dot + 1);
  for (std::string_view kind : {"check", "fix"})
    if (tail.size() > kind.size() && tail.compare(0, kind.size(), kind) == 0
        && std::all_of(tail.begin() + kind.size(), tail.end(),
                       [](unsigned char c) { return std::isdigit(c); }))
      return true;
  return false;
}

} // namespace

std::string event_line(const event& ev) {
  std::string line;
  char t[32];
  std::snprintf(t, sizeof(t), "[%7.2fs] ", ev.t_s);
  line = t;
  line += std::string{topic(ev.kind)} + " " + ev.subject + " " + ev.state;
  if (ev.attempt > 0)
    line
      += (ev.kind == event_kind::ws_iterating ? " (iteration " : " (attempt ")
         + std::to_string(ev.attempt)
         + (ev.node.empty() ? "" : ", node " + ev.node) + ")";
  if (!ev.message.empty())
    line += ": " + ev.message;
  return terminal_text(line) + '\n';
}

namespace {

void print_line(progress_state& st, const event& ev) {
  auto line = event_line(ev);
  if (st.cfg.live)
    clear_live(st);
  std::fputs(line.c_str(), stderr);
}

// A run followed from the middle: its state so far.
void on_snapshot(progress_state& st, const run_snapshot& snap) {
  st.tracker->add(snap);
  st.done = st.failed = st.blocked = 0;
  st.running.clear();
  for (auto& w : snap.workstreams) {
    if (w.status == ws_state::dispatched || w.status == ws_state::running) {
      auto& r = st.running[w.id];
      r.persona = w.persona;
      r.title = w.title;
      r.state = to_string(w.status);
      r.attempt = w.attempts;
      if (auto d = st.defs.find(w.id); d != st.defs.end())
        r.estimate = d->second->estimate_s;
      continue;
    }
    if (!is_terminal(w.status) || st.defs.count(w.id) == 0)
      continue;
    st.done += 1;
    st.done_time += w.wall_s;
    st.failed += w.status == ws_state::failed || w.status == ws_state::timed_out;
    st.blocked
      += w.status == ws_state::blocked || w.status == ws_state::cancelled;
  }
  if (st.cfg.quiet)
    return;
  char line[256];
  std::snprintf(line, sizeof(line),
                "[%7.2fs] run %s %s: %lld of %lld workstreams ended",
                snap.t_s, snap.run_id.c_str(), snap.status.c_str(),
                static_cast<long long>(snap.ended),
                static_cast<long long>(snap.total));
  if (st.cfg.live)
    clear_live(st);
  std::fputs((terminal_text(line) + "\n").c_str(), stderr);
}

void on_event(progress_state& st, const event& ev) {
  if (st.cfg.events)
    st.cfg.events->write(json_text(ev) + "\n");
  if (st.cfg.on_event)
    st.cfg.on_event(ev);
  st.tracker->add(ev);
  bool notable = true;
  auto d = st.defs.find(ev.subject);
  // Plan ids have no '/': a sub-plan's workstream does (its gates' checks
  // and fixers are the gates').
  bool child = d == st.defs.end() && is_workstream_event(ev.kind)
               && ev.subject.find('/') != std::string::npos
               && !gate_work(ev.subject);
  if (child && st.children.insert(ev.subject).second)
    st.total += 1;
  switch (ev.kind) {
    case event_kind::ws_dispatched:
    case event_kind::ws_running: {
      auto& r = st.running[ev.subject];
      if (d != st.defs.end()) {
        r.persona = d->second->persona;
        r.title = d->second->title;
        r.estimate = d->second->estimate_s > 0
                         ? d->second->estimate_s
                         : (d->second->executor.kind == "sleep"
                                ? d->second->executor.seconds
                                : 0);
      } else if (child) {
        r.persona = "sub-plan";
        r.title = ev.subject;
      } else if (st.cfg.p && is_synthesis(*st.cfg.p, ev.subject)) {
        r.persona = st.cfg.p->synthesis.persona;
        r.title = "the run's synthesis";
      } else {
        // Not the plan's: a gate's check (`g.check1`) or fixer (`g.fix1`).
        r.persona = ev.subject.find(".check") != std::string::npos
                      ? "gate"
                      : "remediate";
        r.title = ev.subject;
      }
      if (ev.kind == event_kind::ws_dispatched)
        r.since = ev.t_s;
      r.state = ev.state;
      r.attempt = ev.attempt;
      notable = !st.cfg.live;
      break;
    }
    case event_kind::ws_ready:
      notable = !st.cfg.live;
      break;
    case event_kind::ws_progress:
      if (auto r = st.running.find(ev.subject); r != st.running.end())
        r->second.detail = ev.message;
      notable = !st.cfg.live;
      break;
    case event_kind::ws_retrying:
    case event_kind::ws_iterating:
    case event_kind::ws_requeued:
      st.running.erase(ev.subject);
      break;
    case event_kind::ws_ended: {
      auto r = st.running.find(ev.subject);
      if (r != st.running.end()) {
        st.done_time += ev.t_s - r->second.since;
        st.running.erase(r);
      }
      if (d != st.defs.end() || child) {
        st.done += 1;
        auto s = ev.result.status;
        if (s == ws_state::failed || s == ws_state::timed_out)
          st.failed += 1;
        if (s == ws_state::blocked || s == ws_state::cancelled)
          st.blocked += 1;
      }
      notable = !st.cfg.live || ev.result.status != ws_state::succeeded;
      break;
    }
    default:
      break;
  }
  if (!st.cfg.quiet && notable)
    print_line(st, ev);
}

progress_actor_t::behavior_type
progress(progress_actor_t::stateful_pointer<progress_state> self,
         progress_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  static const plan no_plan;
  st.tracker.emplace(st.cfg.p ? *st.cfg.p : no_plan);
  if (st.cfg.p) {
    st.total = st.cfg.p->workstreams.size();
    for (auto& w : st.cfg.p->workstreams)
      st.defs.emplace(w.id, &w);
  }
  if (st.cfg.live && !st.cfg.quiet)
    self->delayed_send(self, redraw_interval, tick_atom_v);
  return {
      [=](const run_snapshot& snap) {
        auto& st = self->state;
        on_snapshot(st, snap);
        if (st.cfg.live && !st.cfg.quiet && !st.finished)
          draw_live(st);
      },
      [=](const std::vector<event>& batch) {
        auto& st = self->state;
        for (auto& ev : batch)
          on_event(st, ev);
        // After each batch, so a user can follow the partial file.
        if (st.cfg.events)
          st.cfg.events->flush();
        if (st.cfg.live && !st.cfg.quiet && !st.finished)
          draw_live(st);
      },
      [=](run_report& r) {
        auto& st = self->state;
        st.finished = true;
        // The file is the caller's to commit from here on.
        st.cfg.events = nullptr;
        if (st.cfg.live && !st.cfg.quiet)
          clear_live(st);
        if (st.cfg.on_report)
          st.cfg.on_report(std::move(r));
        self->quit();
      },
      [=](partial_atom, const std::string& why) -> run_report {
        auto& st = self->state;
        st.finished = true;
        // The file is the caller's to commit from here on.
        st.cfg.events = nullptr;
        if (st.cfg.live && !st.cfg.quiet)
          clear_live(st);
        auto wall = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - st.start)
                      .count();
        return st.tracker->partial_report(wall, why);
      },
      [=](tick_atom) {
        auto& st = self->state;
        if (st.finished)
          return;
        draw_live(st);
        self->delayed_send(self, redraw_interval, tick_atom_v);
      },
  };
}

} // namespace

progress_view_actor spawn_progress(caf::actor_system& sys,
                                   progress_config cfg) {
  return sys.spawn(progress, std::move(cfg));
}

} // namespace troupe::cli
