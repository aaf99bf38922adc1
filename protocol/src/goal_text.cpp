// Goal text taken apart into steps and deliverables (`outline_goal`): a
// sentence by "then" and "and", a requirements document by its items and
// headings.

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "goal_words.hpp"
#include "troupe/protocol/goal.hpp"

namespace troupe {

namespace detail {

std::vector<std::string> word_list(std::string_view text) {
  std::vector<std::string> out;
  std::string w;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c >= 0x80) {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      out.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty())
    out.push_back(std::move(w));
  // Hyphens at a word's ends are dashes, not part of it.
  for (auto& x : out) {
    while (!x.empty() && x.back() == '-')
      x.pop_back();
    while (!x.empty() && x.front() == '-')
      x.erase(0, 1);
  }
  out.erase(std::remove(out.begin(), out.end(), std::string{}), out.end());
  return out;
}

bool is_verb(const std::string& word) {
  static const std::set<std::string> verbs{
    "add",          "implement",   "create",    "build",     "write",
    "make",         "fix",         "repair",    "resolve",   "debug",
    "refactor",     "restructure", "rename",    "extract",   "clean",
    "simplify",     "update",      "upgrade",   "change",    "modify",
    "improve",      "optimize",    "optimise",  "speed",     "reduce",
    "remove",       "delete",      "drop",      "migrate",   "port",
    "convert",      "replace",     "move",      "split",     "merge",
    "integrate",    "connect",     "wire",      "set",       "setup",
    "configure",    "install",     "deploy",    "release",   "ship",
    "publish",      "document",    "describe",  "explain",   "test",
    "verify",       "validate",    "check",     "review",    "audit",
    "scan",         "inspect",     "analyze",   "analyse",   "investigate",
    "explore",      "find",        "locate",    "list",      "map",
    "identify",     "measure",     "profile",   "benchmark", "reproduce",
    "design",       "plan",        "architect", "propose",   "outline",
    "specify",      "draft",       "research",  "evaluate",  "assess",
    "support",      "enable",      "allow",     "handle",    "expose",
    "introduce",    "generate",    "ingest",    "load",      "transform",
    "extend",       "harden",      "secure",    "patch",     "cache",
    "index",        "parallelize", "summarize", "translate", "provision",
    "containerize", "automate",    "schedule",  "monitor",   "rewrite",
    "tune",         "ensure",      "cover",     "export",    "import",
    "send",         "show",        "display",   "store",     "save",
    "notify",       "log",         "track",     "upload",    "download",
    "render",       "return",      "accept",    "reject",    "let",
    "keep",         "email",       "mail",      "retry",     "sort",
    "filter",       "search",      "paginate",  "encrypt",   "hash",
    "authenticate", "authorize",   "serve",     "run",       "read",
    "parse",        "format",      "lint",      "annotate",  "localize",
    "wrap",         "fetch",       "sync",      "backup",    "restore",
    "rotate",       "archive",     "bump"};
  return verbs.count(word) > 0;
}

} // namespace detail

namespace {

using detail::lower;
using detail::trim;

// A boundary found in a sentence: where it starts and ends, and whether it
// starts a step or only a deliverable.
struct cut {
  size_t begin = 0;
  size_t end = 0;
  bool step = false;
};

bool word_at(const std::string& low, size_t i, std::string_view w) {
  if (low.compare(i, w.size(), w) != 0)
    return false;
  auto before = i == 0 ? ' ' : low[i - 1];
  auto after = i + w.size() < low.size() ? low[i + w.size()] : ' ';
  auto letter = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'
           || (c & 0x80) != 0;
  };
  return !letter(before) && !letter(after);
}

// The boundaries of a sentence outside quotes and brackets.
std::vector<cut> cuts_of(const std::string& text) {
  static const std::vector<std::pair<std::string_view, bool>> words{
    {"and then", true},   {"then", true},        {"afterwards", true},
    {"after that", true}, {"followed by", true}, {"finally", true},
    {"and", false},       {"as well as", false}, {"plus", false}};
  auto low = lower(text);
  std::vector<cut> out;
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < low.size(); ++i) {
    char c = low[i];
    if (quote != 0) {
      if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '"' || c == '`' || (c == '\'' && (i == 0 || low[i - 1] == ' '))) {
      quote = c;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') {
      ++depth;
      continue;
    }
    if ((c == ')' || c == ']' || c == '}') && depth > 0) {
      --depth;
      continue;
    }
    if (depth > 0)
      continue;
    if (c == ',' || c == ';') {
      out.push_back({i, i + 1, false});
      continue;
    }
    if (c == ':' && i + 1 < low.size() && low[i + 1] == ' ') {
      out.push_back({i, i + 1, false});
      continue;
    }
    // A sentence's end: a full stop before a space.
    if (c == '.' && i + 1 < low.size() && low[i + 1] == ' ') {
      out.push_back({i, i + 1, false});
      continue;
    }
    for (auto& [w, step] : words)
      if (word_at(low, i, w)) {
        out.push_back({i, i + w.size(), step});
        i += w.size() - 1;
        break;
      }
  }
  return out;
}

std::string clean_fragment(std::string s) {
  s = trim(s);
  // Leading glue a split leaves behind.
  for (std::string_view lead : {"also ", "to ", "and ", "then "})
    if (lower(s).compare(0, lead.size(), lead) == 0)
      s = trim(s.substr(lead.size()));
  while (!s.empty()
         && (s.back() == '.' || s.back() == ',' || s.back() == ';'
             || s.back() == ':' || s.back() == '!'))
    s.pop_back();
  return trim(s);
}

std::string first_word(const std::string& s) {
  auto w = detail::word_list(s.substr(0, std::min<size_t>(s.size(), 64)));
  return w.empty() ? "" : w.front();
}

// Gives fragments without a verb of their own the verb before them.
void lend_verbs(std::vector<std::vector<std::string>>& steps) {
  std::string verb;
  for (auto& step : steps)
    for (auto& part : step) {
      auto w = first_word(part);
      if (detail::is_verb(w)) {
        verb = part.substr(0, part.find_first_of(" \t") == std::string::npos
                                ? part.size()
                                : part.find_first_of(" \t"));
      } else if (!verb.empty()) {
        auto v = lower(verb);
        v[0]
          = static_cast<char>(std::toupper(static_cast<unsigned char>(v[0])));
        part = v + " " + part;
      }
      if (!part.empty())
        part[0] = static_cast<char>(
          std::toupper(static_cast<unsigned char>(part[0])));
    }
}

bool is_pronoun(const std::string& w) {
  return w == "it" || w == "them" || w == "this" || w == "that" || w == "these"
         || w == "those";
}

bool is_preposition(const std::string& w) {
  static const std::set<std::string> words{
    "with", "in", "to", "for",  "from",  "on",     "into",    "by",   "using",
    "via",  "at", "of", "over", "under", "across", "through", "when", "so"};
  return words.count(w) > 0;
}

// What a deliverable is about: the words after its verb, up to the first
// preposition after them ("the memory leak" of "investigate the memory
// leak in the worker").
std::string object_of(const std::string& part) {
  auto space = part.find(' ');
  if (space == std::string::npos)
    return part;
  auto rest = part.substr(space + 1);
  size_t pos = 0;
  bool first = true;
  while (pos < rest.size()) {
    auto end = rest.find(' ', pos);
    auto word
      = lower(rest.substr(pos, end == std::string::npos ? end : end - pos));
    if (!first && is_preposition(word))
      return trim(rest.substr(0, pos));
    first = false;
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return rest;
}

// "implement it" after "design the cache layer" is "implement the cache
// layer", and comes after it: a step of its own.
void resolve_pronouns(std::vector<std::vector<std::string>>& steps) {
  std::vector<std::vector<std::string>> out;
  std::string prev;
  for (auto& step : steps) {
    out.emplace_back();
    for (auto& part : step) {
      auto words = detail::word_list(part.substr(0, 64));
      auto verb_end = part.find(' ');
      // Written "verb pronoun", one space apart.
      if (words.size() >= 2 && detail::is_verb(words[0]) && is_pronoun(words[1])
          && !prev.empty() && verb_end != std::string::npos
          && lower(part.substr(verb_end + 1, words[1].size())) == words[1]) {
        auto object = object_of(prev);
        auto pronoun_end = part.find_first_of(" ,;.", verb_end + 1);
        auto rest = pronoun_end == std::string::npos ? std::string{}
                                                     : part.substr(pronoun_end);
        part = part.substr(0, verb_end) + " " + object + rest;
        if (!out.back().empty())
          out.emplace_back();
      }
      out.back().push_back(part);
      prev = part;
    }
    if (out.back().empty())
      out.pop_back();
  }
  steps = std::move(out);
}

// The text of a Markdown heading line ("## Phase 2" is "Phase 2").
std::string heading_text(const std::string& line) {
  auto text = line.find_first_not_of('#');
  return trim(text == std::string::npos ? "" : line.substr(text));
}

goal_outline outline_sentence(const std::string& text) {
  goal_outline o;
  o.title = text;
  std::vector<std::vector<std::string>> steps(1);
  auto cuts = cuts_of(text);
  // "Audit the API: injection, auth bypass and secrets": what comes before
  // a colon heads each item after it that has no verb of its own.
  size_t from = 0;
  std::string head;
  auto colon = std::find_if(cuts.begin(), cuts.end(),
                            [&](const cut& c) { return text[c.begin] == ':'; });
  if (colon != cuts.end()) {
    if (colon == cuts.begin() && std::next(colon) != cuts.end()) {
      head = clean_fragment(text.substr(0, colon->begin));
      from = colon->end;
      cuts.erase(colon);
    } else {
      // Several deliverables before it, or one part after it: what
      // follows details the deliverable just before.
      cuts.erase(colon);
    }
  }
  auto take = [&](size_t to, bool sentence_end) {
    auto part = clean_fragment(text.substr(from, to - from));
    if (part.empty())
      return;
    // A sentence that does not start with a verb says more about the
    // deliverable before it ("It happens when ..."); it is no new one.
    if (sentence_end && !steps.back().empty()
        && !detail::is_verb(first_word(part))) {
      steps.back().back() += ". " + part;
      return;
    }
    if (!head.empty() && !detail::is_verb(first_word(part))) {
      // "Add endpoints for: users, orders" is "Add endpoints for users";
      // "Build a shop: a catalog API, a storefront" is "Build a catalog
      // API".
      auto words = detail::word_list(head);
      if (!words.empty() && is_preposition(words.back()))
        part = head + " " + part;
      else if (!words.empty() && detail::is_verb(words.front()))
        part = head.substr(0, head.find(' ')) + " " + part;
      else
        part = head + ": " + part;
    }
    steps.back().push_back(std::move(part));
  };
  bool sentence_end = false;
  for (auto& c : cuts) {
    take(c.begin, sentence_end);
    sentence_end = text[c.begin] == '.';
    from = c.end;
    if (c.step && !steps.back().empty())
      steps.emplace_back();
  }
  take(text.size(), sentence_end);
  if (steps.back().empty())
    steps.pop_back();
  lend_verbs(steps);
  resolve_pronouns(steps);
  o.steps = std::move(steps);
  return o;
}

// `- item`, `* item`, `+ item`, `1. item`, `1) item`: the item's text, or
// nothing.
bool item_text(const std::string& line, std::string& out) {
  auto s = trim(line);
  if (s.size() >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+')
      && s[1] == ' ') {
    out = trim(s.substr(2));
    // A task list's box.
    if (out.rfind("[ ] ", 0) == 0 || out.rfind("[x] ", 0) == 0)
      out = trim(out.substr(4));
    return !out.empty();
  }
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  if (i > 0 && i + 1 < s.size() && (s[i] == '.' || s[i] == ')')
      && s[i + 1] == ' ') {
    out = trim(s.substr(i + 2));
    return !out.empty();
  }
  return false;
}

size_t indent_of(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
    ++i;
  return i;
}

bool names_phase(const std::string& heading) {
  auto w = first_word(heading);
  return w == "phase" || w == "step" || w == "stage" || w == "milestone"
         || w == "then";
}

goal_outline outline_document(const std::vector<std::string>& lines) {
  goal_outline o;
  o.document = true;
  struct section {
    bool phase = false;
    std::vector<std::string> items;
  };
  std::vector<section> sections(1);
  size_t item_indent = std::string::npos;
  bool last_was_item = false;
  for (auto& line : lines) {
    auto t = trim(line);
    if (t.empty()) {
      last_was_item = false;
      continue;
    }
    std::string item;
    if (t[0] == '#') {
      auto heading = heading_text(t);
      if (o.title.empty())
        o.title = heading;
      else
        sections.push_back({names_phase(heading), {}});
      last_was_item = false;
    } else if (item_text(line, item)) {
      auto indent = indent_of(line);
      if (item_indent == std::string::npos)
        item_indent = indent;
      auto& items = sections.back().items;
      // A nested item details the one above it; one of punctuation alone
      // says nothing.
      auto fragment = clean_fragment(item);
      if (fragment.empty())
        ;
      else if (indent > item_indent && !items.empty())
        items.back() += "; " + fragment;
      else
        items.push_back(std::move(fragment));
      last_was_item = true;
    } else if (last_was_item && indent_of(line) > 0
               && !sections.back().items.empty()) {
      sections.back().items.back() += " " + t;
    } else if (o.title.empty()) {
      o.title = clean_fragment(t);
    }
  }
  bool phased = std::any_of(sections.begin(), sections.end(),
                            [](const section& s) { return s.phase; });
  for (auto& s : sections) {
    if (s.items.empty())
      continue;
    if (phased || o.steps.empty())
      o.steps.emplace_back();
    for (auto& item : s.items)
      o.steps.back().push_back(item);
  }
  if (o.title.empty() && !o.steps.empty())
    o.title = o.steps.front().front();
  lend_verbs(o.steps);
  return o;
}

} // namespace

goal_outline outline_goal(const std::string& text) {
  std::vector<std::string> lines;
  size_t items = 0;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    auto line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::string item;
    if (item_text(line, item))
      ++items;
    lines.push_back(std::move(line));
    start = end + 1;
  }
  if (items >= 2)
    return outline_document(lines);
  // A sentence, however it was wrapped.
  std::string joined;
  for (auto& l : lines) {
    auto t = trim(l);
    if (t.empty())
      continue;
    if (t[0] == '#')
      t = heading_text(t) + ".";
    if (!joined.empty())
      joined += ' ';
    joined += t;
  }
  return outline_sentence(joined);
}

} // namespace troupe
