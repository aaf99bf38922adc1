// A scored goal shaped into a plan: the strategy's first step, the
// deliverables (parallel within a step, chained across steps, in waves no
// wider than a phase may be), a gate, tests or a check, docs last.

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "goal_words.hpp"
#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe::detail {

namespace {

// Bytes of the goal quoted in each workstream's prompt.
constexpr size_t goal_excerpt_bytes = 2000;

std::string capitalized(std::string s) {
  if (!s.empty())
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string sentence(std::string s) {
  s = capitalized(trim(s));
  if (!s.empty() && s.back() != '.' && s.back() != '?' && s.back() != '!')
    s += '.';
  return s;
}

std::string title_of(const std::string& text) {
  auto t = capitalized(trim(text));
  if (t.size() > 100)
    t = utf8_head(t, 97) + "...";
  return t;
}

} // namespace

std::string strategy_persona(const std::string& strategy) {
  if (strategy == "bug investigation")
    return "debugger";
  if (strategy == "security audit")
    return "security";
  if (strategy == "performance")
    return "performance";
  if (strategy == "refactor")
    return "refactorer";
  if (strategy == "deployment")
    return "devops";
  if (strategy == "data pipeline")
    return "data_engineer";
  return "backend";
}

namespace {

bool user_facing(const std::string& goal) {
  for (auto& w : word_list(goal))
    for (const char* k :
         {"api", "cli", "command", "commands", "endpoint", "endpoints",
          "config", "configuration", "option", "options", "flag", "flags",
          "interface", "public", "user", "users"})
      if (w == k)
        return true;
  return false;
}

struct builder {
  const goal_assessment& a;
  const goal_options& opts;
  plan p;
  std::set<std::string> taken;
  std::string excerpt;

  std::string fresh_id(const std::string& wanted) {
    auto base = wanted.empty() ? std::string{"work"} : wanted;
    auto id = base;
    for (int n = 2; taken.count(id) > 0; ++n)
      id = base + "-" + std::to_string(n);
    taken.insert(id);
    return id;
  }

  model_tier tier(agent_kind k) const {
    return opts.fixed_tier ? opts.tier : routed_tier(k);
  }

  std::string add(const std::string& id_hint, std::string title,
                  std::string persona, agent_kind kind, std::string prompt,
                  std::vector<std::string> deps,
                  std::vector<std::string> owns = {}) {
    auto& w = p.workstreams.emplace_back();
    w.id = fresh_id(id_hint);
    w.title = std::move(title);
    w.persona = std::move(persona);
    w.agent = kind;
    w.model = tier(kind);
    w.prompt = std::move(prompt);
    w.depends_on = std::move(deps);
    if (kind == agent_kind::general)
      w.owns = std::move(owns);
    w.executor = opts.executor;
    return w.id;
  }

  std::string with_goal(const std::string& task) const {
    return task + "\n\nThis is part of the goal: " + excerpt;
  }

  /// Adds one workstream per text, each depending on `deps`, in waves no
  /// wider than a phase may be: the one `width` places later waits for
  /// it. Returns the ids of those that nothing added waits for.
  std::vector<std::string>
  add_wave(const std::vector<std::string>& texts,
           const std::vector<std::string>& deps, const std::string& fallback,
           std::vector<std::string>* all = nullptr,
           std::function<std::string(const std::string&)> persona_of = {}) {
    auto width = static_cast<size_t>(std::max(opts.max_phase_width, 1));
    std::vector<std::string> ids;
    for (size_t i = 0; i < texts.size(); ++i) {
      auto& t = texts[i];
      auto kind = goal_agent_kind(t);
      // A strategy's own persona (debugger, devops, ...) wins ties; a
      // feature's goes by the deliverable's words alone.
      auto persona = persona_of
                       ? persona_of(t)
                       : goal_persona(t, fallback, a.strategy != "feature");
      // An audit is a security reviewer's, whatever it reads.
      if (a.strategy == "security audit" && kind == agent_kind::explore
          && !persona_of)
        persona = "security";
      auto d = i >= width ? std::vector<std::string>{ids[i - width]} : deps;
      // "implement the cache layer" after "design the cache layer".
      auto id = goal_slug(t);
      if (taken.count(id) > 0)
        id = goal_slug(t, 4, true);
      ids.push_back(add(id, title_of(t), persona, kind, with_goal(sentence(t)),
                        d, goal_file_patterns(t)));
      if (all != nullptr)
        all->push_back(ids.back());
    }
    auto first_sink = ids.size() > width ? ids.size() - width : 0;
    return {ids.begin() + static_cast<std::ptrdiff_t>(first_sink), ids.end()};
  }

  /// Makes later writers wait for earlier ones whose files they share,
  /// where nothing ordered them yet: validation refuses two workstreams
  /// that can run at once owning the same files.
  void order_overlapping_writers() {
    auto n = p.workstreams.size();
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < n; ++i)
      at.emplace(p.workstreams[i].id, i);
    // before[j][i]: i comes before j, through dependencies.
    std::vector<std::vector<bool>> before(n, std::vector<bool>(n, false));
    auto follow = [&](size_t j, size_t i) {
      before[j][i] = true;
      for (size_t k = 0; k < n; ++k)
        if (before[i][k])
          before[j][k] = true;
    };
    for (size_t j = 0; j < n; ++j) {
      auto& b = p.workstreams[j];
      for (auto& d : b.depends_on)
        if (auto i = at.find(d); i != at.end())
          follow(j, i->second);
      // The nearest writer first: the ones before it it already follows.
      for (size_t i = j; i-- > 0;) {
        if (before[j][i] || before[i][j])
          continue;
        auto& a = p.workstreams[i];
        bool overlap = false;
        for (auto& x : a.owns)
          for (auto& y : b.owns)
            overlap = overlap || globs_overlap(x, y);
        if (overlap) {
          b.depends_on.push_back(a.id);
          follow(j, i);
        }
      }
    }
  }
};

} // namespace

plan shape_goal(const std::string& goal, const goal_outline& o,
                const goal_assessment& a, const goal_options& opts) {
  builder b{a, opts, {}, {}, {}};
  b.excerpt = utf8_head(trim(goal), goal_excerpt_bytes);
  if (b.excerpt.size() < trim(goal).size())
    b.excerpt += " [...]";
  auto& p = b.p;
  p.name = goal_slug(o.title, 5);
  if (p.name.empty())
    p.name = "goal";
  p.goal = trim(goal);
  p.settings.max_phase_width = opts.max_phase_width;
  auto lead = strategy_persona(a.strategy);
  auto agents = is_agent_executor(opts.executor.kind);
  if (agents) {
    p.synthesis.executor = opts.executor;
    p.synthesis.model = opts.fixed_tier ? opts.tier : model_tier::deep;
  }

  if (a.level == complexity::simple) {
    auto id = goal_slug(o.title);
    b.add(id.empty() ? "goal" : id, title_of(o.title), goal_persona(goal, lead),
          goal_agent_kind(o.title), trim(goal), {}, goal_file_patterns(goal));
    return p;
  }

  // Tests and docs the goal names come after the work they are about.
  std::vector<std::vector<std::string>> work;
  std::vector<std::string> tests, docs;
  for (auto& step : o.steps) {
    auto& w = work.emplace_back();
    for (auto& part : step) {
      auto persona = goal_persona(part, lead, a.strategy != "feature");
      (persona == "qa" ? tests : persona == "docs" ? docs : w).push_back(part);
    }
    if (w.empty())
      work.pop_back();
  }
  if (work.empty()) {
    work = o.steps;
    tests.clear();
    docs.clear();
  }
  // "... and tests", "... and docs": the generic workstreams do it.
  auto bare = [](std::vector<std::string>& parts, const char* kind) {
    static const std::set<std::string> test_words{
      "test", "tests",      "testing",  "unit", "integration",
      "e2e",  "end-to-end", "coverage", "some", "more"};
    static const std::set<std::string> doc_words{
      "doc",  "docs", "documentation", "readme",   "some",
      "more", "user", "api",           "reference"};
    auto& known = std::string{kind} == "qa" ? test_words : doc_words;
    parts.erase(std::remove_if(parts.begin(), parts.end(),
                               [&](const std::string& part) {
                                 auto words = word_list(part);
                                 if (!words.empty() && is_verb(words[0]))
                                   words.erase(words.begin());
                                 return !words.empty()
                                        && std::all_of(
                                          words.begin(), words.end(),
                                          [&](const std::string& w) {
                                            return known.count(w) > 0;
                                          });
                               }),
                parts.end());
  };
  auto docs_asked = !docs.empty();
  bare(tests, "qa");
  bare(docs, "docs");

  // The strategy's first step.
  std::vector<std::string> prev;
  auto& s = a.strategy;
  // Unless the goal's own first deliverable does that already. The
  // persona is the strategy's, or for a feature the one most of its work
  // needs.
  auto opens_with = goal_agent_kind(work.front().front());
  auto first_persona = lead;
  if (s == "feature") {
    std::map<std::string, int> count;
    int most = 0;
    for (auto& step : work)
      for (auto& part : step) {
        auto n = ++count[goal_persona(part, lead)];
        if (n > most) {
          most = n;
          first_persona = goal_persona(part, lead);
        }
      }
  }
  auto first = [&](const char* id, const char* title, agent_kind kind,
                   const std::string& task) {
    if (opens_with != kind)
      prev = {b.add(id, title, first_persona, kind, b.with_goal(task), {})};
  };
  if (s == "bug investigation")
    first("reproduce", "Reproduce the problem and find its cause",
          agent_kind::explore,
          "Reproduce the problem and find its cause, changing nothing. Hand "
          "over how to reproduce it, where the fault lies and why.");
  else if (s == "performance")
    first("measure", "Measure before changing anything", agent_kind::explore,
          "Measure before anything changes: profile what the goal is about "
          "and hand over the numbers, how you got them and the hot spots.");
  else if (s == "refactor")
    first("map", "Map the code the refactoring touches", agent_kind::explore,
          "Map the code this refactoring touches, changing nothing: its "
          "structure, its callers and the tests that cover it.");
  else if (s != "security audit" && a.level >= complexity::complex)
    first("design", "Design the parts and their interfaces", agent_kind::plan,
          "Design how to reach the goal before anyone writes code: the "
          "parts, their interfaces, the files each one owns and the order "
          "to build them in. Hand over the design; change no file.");

  std::vector<std::string> implementation;
  for (auto& step : work)
    prev = b.add_wave(step, prev, lead, &implementation);

  // Then what checks the work.
  std::vector<std::string> checks;
  if (s == "security audit") {
    prev = {b.add("findings", "Rank the findings and propose fixes", "security",
                  agent_kind::plan,
                  b.with_goal("Rank what the audits found by severity, "
                              "with where each finding is and how to fix "
                              "it."),
                  prev)};
  } else {
    auto& g = p.gates.emplace_back();
    g.id = b.fresh_id("implementation");
    g.after = implementation;
    g.checks = {gate_check{"completion", "", "", 0},
                gate_check{"conflicts", "", "", 0}};
    if (agents) {
      g.remediate.persona = "debugger";
      g.remediate.max_attempts = 2;
      g.remediate.executor = opts.executor;
    }
    auto qa = [](const std::string&) { return std::string{"qa"}; };
    if (!tests.empty()) {
      prev = b.add_wave(tests, prev, "qa", nullptr, qa);
    } else if (s == "performance") {
      prev = {b.add("verify", "Measure again and compare", "performance",
                    agent_kind::explore,
                    b.with_goal("Measure again as the first measurement "
                                "did and compare: hand over the numbers "
                                "before and after."),
                    prev)};
    } else if (s == "deployment") {
      prev = {b.add("verify", "Check the deployment works", "devops",
                    agent_kind::explore,
                    b.with_goal("Check that what was deployed works: it "
                                "starts, answers and reports healthy."),
                    prev)};
    } else {
      auto task = s == "bug investigation"
                    ? "Add a regression test that fails without the fix and "
                      "passes with it, then run the tests."
                    : "Write tests for what the work before changed and run "
                      "them; report what fails.";
      prev = {b.add("tests", "Test the changes", "qa", agent_kind::general,
                    b.with_goal(task), prev)};
    }
  }

  // Docs last, where the goal asks for them or a feature calls for them.
  auto docs_persona = [](const std::string&) { return std::string{"docs"}; };
  if (!docs.empty())
    b.add_wave(docs, prev, "docs", nullptr, docs_persona);
  else if (docs_asked
           || (s == "feature"
               && (a.level >= complexity::complex || user_facing(goal))))
    b.add("docs", "Document the changes", "docs", agent_kind::general,
          b.with_goal("Document what changed for the people who use it: "
                      "what is new, how to use it, and an example."),
          prev);
  b.order_overlapping_writers();
  return p;
}

} // namespace troupe::detail

namespace troupe {

plan plan_from_tasks(const std::vector<std::string>& tasks,
                     const goal_options& opts) {
  using namespace detail;
  goal_assessment a;
  builder b{a, opts, {}, {}, {}};
  auto& p = b.p;
  p.name = "parallel";
  // As many at once as there are tasks: the run's limit is what holds them.
  p.settings.max_parallel_agents = static_cast<int32_t>(
    std::max<size_t>(1, std::min<size_t>(tasks.size(), 64)));
  auto agents = is_agent_executor(opts.executor.kind);
  if (agents) {
    p.synthesis.executor = opts.executor;
    p.synthesis.model = opts.fixed_tier ? opts.tier : model_tier::deep;
  }
  for (auto& task : tasks) {
    auto text = trim(valid_utf8(task));
    auto kind = agent_kind::general;
    auto colon = text.find(':');
    if (colon != std::string::npos) {
      auto prefix = lower(trim(text.substr(0, colon)));
      if (from_string(prefix, kind))
        text = trim(text.substr(colon + 1));
      else
        kind = agent_kind::general;
    }
    if (!p.goal.empty())
      p.goal += "; ";
    p.goal += text;
    auto fallback = kind == agent_kind::general ? "backend" : "analyzer";
    b.add(goal_slug(text), title_of(text), goal_persona(text, fallback), kind,
          text, {});
    auto& w = p.workstreams.back();
    // A command with no command of its own runs the task's text.
    if (w.executor.kind == "command" && w.executor.run.empty())
      w.executor.run = text;
  }
  return p;
}

} // namespace troupe
