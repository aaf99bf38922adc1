// The heuristic planner: a goal's outline (goal_text.cpp) scored for
// complexity and shaped into a plan by its strategy (DESIGN.md,
// "Planning").

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "goal_words.hpp"
#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/models.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/utf8.hpp"

namespace troupe {

namespace {

using detail::lower;
using detail::word_list;

// -- what a deliverable is about ---------------------------------------------

bool matches(const std::string& word, const std::string& key) {
  if (key.back() == '*')
    return word.compare(0, key.size() - 1, key, 0, key.size() - 1) == 0;
  return word == key;
}

// Keywords by persona, most specific first: ties go to the earlier one.
const std::vector<std::pair<std::string, std::vector<std::string>>>&
persona_keywords() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>>
    table{
      {"security",
       {"secur*", "vulnerab*", "cve*", "xss", "csrf", "injection", "sanitiz*",
        "encrypt*", "secret*", "owasp", "threat*", "pentest*", "audit*"}},
      {"performance",
       {"perf", "performan*", "latenc*", "throughput", "optimi*", "slow*",
        "speed*", "profiling", "profiler", "benchmark*", "bottleneck*",
        "memory", "cpu"}},
      {"qa",
       {"test", "tests", "testing", "e2e", "coverage", "qa", "spec", "specs",
        "fixture*"}},
      {"docs",
       {"doc", "docs", "document", "documentation", "documented", "readme*",
        "guide*", "tutorial*", "changelog*", "manual*"}},
      {"devops",
       {"deploy*", "ci", "cd", "docker*", "container*", "kubernetes", "k8s",
        "helm", "terraform", "infrastructure", "infra", "workflow*", "release*",
        "monitoring", "systemd", "nginx", "ansible", "provision*"}},
      {"data_engineer",
       {"pipeline*", "etl", "sql", "schema*", "migration*", "ingest*",
        "dataset*", "warehouse*", "spark", "kafka", "airflow", "dbt", "parquet",
        "csv", "table*", "query", "queries", "data"}},
      {"frontend", {"ui",      "ux",         "frontend", "front-end", "page*",
                    "react",   "vue",        "angular",  "svelte",    "css",
                    "html",    "component*", "button*",  "form",      "forms",
                    "layout*", "dashboard*", "style*",   "browser",   "screen*",
                    "modal*",  "widget*"}},
      {"refactorer",
       {"refactor*", "restructur*", "cleanup", "clean", "simplif*", "dedup*",
        "extract", "rename*", "reorganiz*", "modulari*", "decoupl*", "tidy"}},
      {"debugger",
       {"bug*", "crash*", "fix", "fixes", "debug*", "regress*", "error*",
        "failing", "fails", "broken", "leak*", "segfault*", "exception*",
        "hang*", "flaky"}},
      {"agent", {"agent*", "llm*", "prompt*", "chatbot*", "rag", "embedding*"}},
      {"analyzer",
       {"analy*", "investigat*", "review", "reviewing", "report*", "assess*",
        "evaluat*", "research*", "summar*", "compare"}},
      {"backend", {"api*",        "endpoint*", "server*", "backend", "back-end",
                   "service*",    "handler*",  "route*",  "rest",    "graphql",
                   "auth*",       "jwt",       "login*",  "logout",  "session*",
                   "middleware*", "database*", "cache*",  "queue*",  "webhook*",
                   "grpc",        "password*"}},
    };
  return table;
}

bool has_extension(const std::string& path, const std::set<std::string>& exts,
                   std::string* ext = nullptr) {
  auto slash = path.find_last_of('/');
  auto file = slash == std::string::npos ? path : path.substr(slash + 1);
  auto dot = file.find_last_of('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == file.size())
    return false;
  auto e = lower(file.substr(dot + 1));
  if (ext != nullptr)
    *ext = e;
  return exts.count(e) > 0;
}

const std::set<std::string>& source_extensions() {
  static const std::set<std::string> exts{
    "c",      "cc",   "cpp",   "cxx",   "h",     "hpp",    "hh",   "py",
    "js",     "jsx",  "ts",    "tsx",   "go",    "rs",     "java", "kt",
    "rb",     "php",  "cs",    "swift", "scala", "sql",    "sh",   "bash",
    "yaml",   "yml",  "json",  "toml",  "ini",   "cfg",    "md",   "rst",
    "txt",    "html", "css",   "scss",  "vue",   "svelte", "tf",   "proto",
    "gradle", "xml",  "cmake", "lua",   "ex",    "exs",    "dart", "r"};
  return exts;
}

/// File patterns a deliverable names: paths with a slash, files with a
/// source extension, and the files tools are known by.
std::vector<std::string> file_patterns(const std::string& text) {
  static const std::set<std::string> bare{
    "Dockerfile",   "Makefile",   "CMakeLists.txt",
    "Jenkinsfile",  "Procfile",   "docker-compose.yml",
    "package.json", "Cargo.toml", "go.mod"};
  std::vector<std::string> out;
  std::string token;
  auto take = [&] {
    auto t = token;
    token.clear();
    while (!t.empty()
           && std::string("`'\"(<[").find(t.front()) != std::string::npos)
      t.erase(0, 1);
    while (!t.empty()
           && std::string("`'\".,;:!?)>]").find(t.back()) != std::string::npos)
      t.pop_back();
    if (t.empty() || t.find("://") != std::string::npos || t == "and/or"
        || t.size() > 200)
      return;
    bool pattern = bare.count(t) > 0 || has_extension(t, source_extensions())
                   || (t.find('/') != std::string::npos
                       && std::any_of(t.begin(), t.end(), [](unsigned char c) {
                            return std::isalpha(c);
                          }));
    for (unsigned char c : t)
      if (!(std::isalnum(c)
            || std::string("/._-*?").find(static_cast<char>(c))
                 != std::string::npos))
        pattern = false;
    if (pattern && std::find(out.begin(), out.end(), t) == out.end())
      out.push_back(t);
  };
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)))
      take();
    else
      token += c;
  }
  take();
  return out;
}

/// The persona a file pattern points at, or nothing.
std::string persona_of_pattern(const std::string& pattern) {
  auto p = lower(pattern);
  auto has = [&](const char* s) { return p.find(s) != std::string::npos; };
  auto starts = [&](const char* s) { return p.rfind(s, 0) == 0; };
  std::string ext;
  has_extension(p, source_extensions(), &ext);
  if (starts("tests/") || starts("test/") || starts("spec/") || has("/tests/")
      || has("/test/") || has("_test.") || has(".test.") || has("_spec.")
      || has(".spec.") || p.rfind("test_", 0) == 0 || has("/test_"))
    return "qa";
  if (starts(".github/") || starts(".gitlab") || has("dockerfile")
      || has("docker-compose") || ext == "tf" || starts("k8s/")
      || starts("deploy/") || starts("helm/") || has("jenkinsfile"))
    return "devops";
  if (starts("docs/") || starts("doc/") || ext == "md" || ext == "rst"
      || starts("readme"))
    return "docs";
  if (ext == "tsx" || ext == "jsx" || ext == "vue" || ext == "svelte"
      || ext == "css" || ext == "scss" || ext == "html" || has("components/")
      || starts("web/") || starts("frontend/") || starts("ui/"))
    return "frontend";
  if (ext == "sql" || has("migrations/") || starts("etl/")
      || starts("pipelines/") || starts("dags/"))
    return "data_engineer";
  if (has("api/") || starts("server/") || starts("backend/") || has("handlers/")
      || has("routes/"))
    return "backend";
  return "";
}

/// The persona a text's words and file patterns point at; `fallback`
/// when none does.
std::string persona_of(const std::string& text,
                       const std::vector<std::string>& patterns,
                       const std::string& fallback, bool fallback_wins_ties) {
  std::map<std::string, int> score;
  for (auto& w : word_list(text))
    for (auto& [persona, keys] : persona_keywords())
      for (auto& k : keys)
        if (matches(w, k)) {
          score[persona] += 1;
          break;
        }
  for (auto& p : patterns)
    if (auto persona = persona_of_pattern(p); !persona.empty())
      score[persona] += 2;
  std::string best = fallback;
  int best_score
    = fallback_wins_ties && score.count(fallback) > 0 ? score[fallback] : 0;
  for (auto& [persona, keys] : persona_keywords()) {
    (void)keys;
    if (auto i = score.find(persona);
        i != score.end() && i->second > best_score) {
      best = persona;
      best_score = i->second;
    }
  }
  return best;
}

/// The domain a text is about, whatever else it is about: frontend,
/// backend, data or infrastructure, by the personas' words and file
/// patterns; nothing when none shows.
std::string domain_of(const std::string& text,
                      const std::vector<std::string>& patterns) {
  static const std::vector<std::pair<std::string, std::string>> domains{
    {"frontend", "frontend"},
    {"backend", "backend"},
    {"data_engineer", "data"},
    {"devops", "infrastructure"}};
  std::map<std::string, int> score;
  auto words = word_list(text);
  for (auto& [persona, name] : domains)
    for (auto& [p, keys] : persona_keywords())
      if (p == persona)
        for (auto& w : words)
          for (auto& k : keys)
            if (matches(w, k)) {
              score[name] += 1;
              break;
            }
  for (auto& pattern : patterns)
    for (auto& [persona, name] : domains)
      if (persona_of_pattern(pattern) == persona)
        score[name] += 2;
  std::string best;
  int best_score = 0;
  for (auto& [persona, name] : domains)
    if (score[name] > best_score) {
      best = name;
      best_score = score[name];
    }
  return best;
}

std::string leading_verb(const std::string& text) {
  auto w = word_list(text.substr(0, std::min<size_t>(text.size(), 64)));
  return !w.empty() && detail::is_verb(w.front()) ? w.front() : "";
}

agent_kind kind_of(const std::string& text) {
  static const std::set<std::string> reading{
    "explore",   "find",      "locate",      "list",     "map",     "identify",
    "analyze",   "analyse",   "investigate", "review",   "audit",   "inspect",
    "scan",      "assess",    "evaluate",    "research", "measure", "profile",
    "reproduce", "summarize", "check",       "verify"};
  static const std::set<std::string> planning{
    "design", "plan", "architect", "propose", "outline", "specify", "draft"};
  auto v = leading_verb(text);
  if (reading.count(v) > 0)
    return agent_kind::explore;
  if (planning.count(v) > 0)
    return agent_kind::plan;
  return agent_kind::general;
}

/// Lines a deliverable is expected to change, by what its verb does.
int32_t lines_of(const std::string& text) {
  static const std::set<std::string> small{
    "fix",      "repair",    "rename",  "remove", "delete", "drop",  "document",
    "test",     "configure", "set",     "setup",  "update", "patch", "tune",
    "describe", "explain",   "install", "enable", "check",  "verify"};
  static const std::set<std::string> medium{
    "refactor", "optimize", "optimise",    "improve",  "extend",
    "convert",  "replace",  "restructure", "simplify", "clean",
    "harden",   "upgrade",  "modify",      "change",   "speed",
    "reduce",   "secure",   "move",        "split",    "merge"};
  auto v = leading_verb(text);
  if (kind_of(text) != agent_kind::general)
    return 0;
  if (small.count(v) > 0)
    return 60;
  if (medium.count(v) > 0)
    return 150;
  return 200;
}

// -- ids and text ------------------------------------------------------------

std::string slug(const std::string& text, size_t max_words, bool keep_verb) {
  static const std::set<std::string> stop{
    "the",   "a",     "an",    "of",    "for",  "to",   "in",      "on",
    "with",  "and",   "our",   "my",    "its",  "into", "from",    "by",
    "all",   "new",   "that",  "this",  "so",   "it",   "is",      "are",
    "be",    "at",    "as",    "their", "them", "we",   "us",      "your",
    "any",   "every", "each",  "when",  "then", "up",   "through", "via",
    "using", "over",  "under", "across"};
  auto words = word_list(text);
  std::string verb;
  if (!keep_verb && !words.empty() && detail::is_verb(words.front())) {
    verb = words.front();
    words.erase(words.begin());
  }
  std::string out;
  size_t taken = 0;
  for (auto& w : words) {
    if (stop.count(w) > 0)
      continue;
    std::string clean;
    for (unsigned char c : w)
      if (std::isalnum(c) || c == '_' || c == '-')
        clean += static_cast<char>(c);
    if (clean.empty())
      continue;
    if (out.size() + clean.size() + 1 > 40)
      break;
    out += (out.empty() ? "" : "-") + clean;
    if (++taken == max_words)
      break;
  }
  // "Implement it": the verb is all there is.
  return out.empty() ? verb : out;
}

// -- scoring -----------------------------------------------------------------

struct deliverable {
  std::string text;
  std::string persona;
  std::vector<std::string> patterns;
  size_t step = 0;
};

std::string join(const std::vector<std::string>& xs, const char* sep = ", ") {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

goal_assessment score_goal(const std::string& goal, const goal_outline& o,
                           const std::vector<deliverable>& ds,
                           goal_assessment a) {
  auto point = [&](bool holds, std::string why) {
    if (holds) {
      ++a.score;
      a.reasons.push_back(std::move(why));
    }
  };
  point(ds.size() >= 2,
        "several distinct deliverables (" + std::to_string(ds.size()) + ")");
  std::vector<std::string> personas;
  for (auto& d : ds)
    if (std::find(personas.begin(), personas.end(), d.persona)
        == personas.end())
      personas.push_back(d.persona);
  point(personas.size() >= 2,
        "cross-cutting concerns (" + join(personas) + ")");
  for (auto& d : ds)
    a.estimated_lines += lines_of(d.text);
  static const std::set<std::string> broad{
    "entire",   "whole",   "complete", "full",       "system",
    "platform", "rewrite", "across",   "everything", "end-to-end"};
  std::set<std::string> broad_words;
  for (auto& w : word_list(goal))
    if (broad.count(w) > 0)
      broad_words.insert(w);
  a.estimated_lines += 300 * static_cast<int32_t>(broad_words.size());
  point(a.estimated_lines > 500, "more than 500 lines likely to change (about "
                                   + std::to_string(a.estimated_lines) + ")");
  std::set<std::string> exts;
  std::vector<std::string> domains;
  for (auto& d : ds) {
    for (auto& p : d.patterns) {
      std::string e;
      if (has_extension(p, source_extensions(), &e))
        exts.insert("." + e);
    }
    auto domain = domain_of(d.text, d.patterns);
    if (!domain.empty()
        && std::find(domains.begin(), domains.end(), domain) == domains.end())
      domains.push_back(domain);
  }
  if (exts.size() >= 2)
    point(true, "several file types or domains ("
                  + join(std::vector<std::string>(exts.begin(), exts.end()))
                  + ")");
  else
    point(domains.size() >= 2,
          "several file types or domains (" + join(domains) + ")");
  std::vector<std::string> joins;
  for (auto& w : word_list(goal))
    if ((matches(w, "integrat*") || w == "end-to-end" || w == "e2e"
         || matches(w, "connect*") || w == "wire" || w == "together")
        && std::find(joins.begin(), joins.end(), w) == joins.end())
      joins.push_back(w);
  if (o.steps.size() >= 2)
    point(true, "integration requirements (" + std::to_string(o.steps.size())
                  + " steps in sequence)");
  else
    point(!joins.empty(), "integration requirements (" + join(joins) + ")");
  point(ds.size() > 7, "more than 7 deliverables");
  point(o.steps.size() > 3, "more than 3 steps in sequence");
  a.level = a.score <= 1   ? complexity::simple
            : a.score <= 3 ? complexity::moderate
            : a.score <= 5 ? complexity::complex
                           : complexity::epic;
  return a;
}

} // namespace

goal_plan plan_from_goal(const std::string& goal, const goal_options& opts) {
  auto text = valid_utf8(goal);
  auto o = outline_goal(text);
  if (o.steps.empty())
    o.steps.push_back({detail::trim(text)});
  size_t parts = 0;
  for (auto& step : o.steps)
    parts += step.size();
  if (parts > max_goal_deliverables) {
    goal_plan out;
    out.error = std::to_string(parts) + " deliverables, more than "
                + std::to_string(max_goal_deliverables)
                + " in one goal: split it into several goals";
    return out;
  }
  goal_assessment a;
  a.strategy = strategy_of_text(text, &a.strategy_words);
  // As the plan will have them (goal_shape.cpp).
  auto lead = detail::strategy_persona(a.strategy);
  std::vector<deliverable> ds;
  for (size_t s = 0; s < o.steps.size(); ++s)
    for (auto& part : o.steps[s]) {
      auto patterns = file_patterns(part);
      ds.push_back({part,
                    persona_of(part, patterns, lead, a.strategy != "feature"),
                    patterns, s});
    }
  goal_plan out;
  out.assessment = score_goal(text, o, ds, std::move(a));
  out.p = detail::shape_goal(text, o, out.assessment, opts);
  return out;
}

namespace detail {

std::string goal_persona(const std::string& text, const std::string& fallback,
                         bool fallback_wins_ties) {
  return persona_of(text, file_patterns(text), fallback, fallback_wins_ties);
}

std::vector<std::string> goal_file_patterns(const std::string& text) {
  return file_patterns(text);
}

agent_kind goal_agent_kind(const std::string& text) {
  return kind_of(text);
}

std::string goal_slug(const std::string& text, size_t max_words,
                      bool keep_verb) {
  return slug(text, max_words, keep_verb);
}

} // namespace detail

} // namespace troupe
