// YAML text to JSON, bounded: a survey of the events first, then a
// conversion that counts what aliases expand to.

#include "bounded_parse.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "troupe/protocol/utf8.hpp"
#include "text.hpp"

namespace troupe::detail {

namespace {

using json = nlohmann::json;

bool all_of_chars(const std::string& s, size_t from, const char* chars) {
  return from < s.size()
    && s.find_first_not_of(chars, from) == std::string::npos;
}

/// True for YAML 1.2 core floats: [-+]? (.digits | digits[.digits?])
/// [e[-+]?digits]?
bool is_float(const std::string& s) {
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  auto digits = [&] {
    auto start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i;
    return i > start;
  };
  bool mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa = digits() || mantissa;
  }
  if (!mantissa)
    return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+'))
      ++i;
    if (!digits())
      return false;
  }
  return i == s.size();
}

/// A plain YAML scalar as YAML 1.2's core schema reads it.
json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  auto as_integer = [&](const char* digits, int base) -> json {
    errno = 0;
    auto x = std::strtoll(digits, nullptr, base);
    if (errno != ERANGE)
      return x;
    // Too big for an integer; past the largest double, no number at all,
    // as with floats below.
    auto d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d))
      return d;
    return s;
  };
  size_t sign = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (all_of_chars(s, sign, "0123456789"))
    return as_integer(s.c_str(), 10);
  if (s.compare(0, 2, "0x") == 0
      && all_of_chars(s, 2, "0123456789abcdefABCDEF"))
    return as_integer(s.c_str() + 2, 16);
  if (s.compare(0, 2, "0o") == 0 && all_of_chars(s, 2, "01234567"))
    return as_integer(s.c_str() + 2, 8);
  if (is_float(s)) {
    auto x = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(x))
      return x;
  }
  return s;
}

std::string line_and_column(const YAML::Mark& m) {
  return "line " + std::to_string(m.line + 1) + ", column "
    + std::to_string(m.column + 1);
}

/// A first pass over the events of a YAML document, before yaml-cpp builds
/// any node: refuses nesting deeper than max_depth and more than max_values
/// values as written, and anchors defined twice.
class yaml_survey final : public YAML::EventHandler {
public:
  /// Thrown to stop the parser once a limit is hit; the survey has reported
  /// which.
  struct stop {};

  explicit yaml_survey(diagnostics& out) : out_(out) {
    // nop
  }

  void OnDocumentStart(const YAML::Mark&) override {
    // nop
  }

  void OnDocumentEnd() override {
    // nop
  }

  void OnNull(const YAML::Mark& m, YAML::anchor_t) override {
    node(m);
  }

  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override {
    node(m);
  }

  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(m);
  }

  void OnSequenceStart(const YAML::Mark& m, const std::string&,
                       YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
    open_.push_back({false, false});
  }

  void OnSequenceEnd() override {
    open_.pop_back();
  }

  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(m);
    open_.push_back({true, true});
  }

  void OnMapEnd() override {
    open_.pop_back();
  }

  void OnAnchor(const YAML::Mark& m, const std::string& name) override {
    // YAML lets an anchor be defined again, aliases after it meaning the
    // new node; in a plan that is a slip.
    auto [first, fresh] = anchors_.emplace(name, m);
    if (!fresh)
      out_.error("", "anchor &" + valid_utf8(name) + " defined again at "
                       + line_and_column(m) + " (first at "
                       + line_and_column(first->second)
                       + "); give each anchor its own name");
  }

private:
  struct collection {
    bool map;
    bool key_next;
  };

  void node(const YAML::Mark& m) {
    if (open_.size() > max_depth) {
      out_.error("", "nested deeper than " + std::to_string(max_depth)
                       + " levels at " + line_and_column(m));
      throw stop{};
    }
    // Map entries alternate key and value; keys are no values of their own.
    if (!open_.empty() && open_.back().map) {
      bool key = open_.back().key_next;
      open_.back().key_next = !key;
      if (key)
        return;
    }
    if (++values_ > max_values) {
      out_.error("", "plan is too large: more than "
                       + std::to_string(max_values) + " values");
      throw stop{};
    }
  }

  diagnostics& out_;
  std::vector<collection> open_;
  size_t values_ = 0;
  std::map<std::string, YAML::Mark> anchors_;
};

/// What converting a YAML document to JSON may still produce. The survey
/// bounded the document as written, so only aliases can exhaust this.
struct yaml_budget {
  size_t values = max_values;
  /// Set once a limit is hit: the conversion stops.
  bool stopped = false;
};

bool yaml_to_json(const YAML::Node& n, const std::string& path, size_t depth,
                  yaml_budget& budget, json& result, diagnostics& out) {
  auto where = [&](const YAML::Node& x) {
    auto m = x.Mark();
    return m.is_null() ? std::string{}
                       : " (line " + std::to_string(m.line + 1) + ")";
  };
  if (budget.values == 0) {
    out.error("", "plan is too large: more than " + std::to_string(max_values)
                    + " values after expanding YAML aliases");
    budget.stopped = true;
    return false;
  }
  --budget.values;
  if (depth > max_depth) {
    out.error(path, "nested deeper than " + std::to_string(max_depth)
                      + " levels after expanding YAML aliases" + where(n));
    budget.stopped = true;
    return false;
  }
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      // yaml-cpp passes any bytes through; JSON strings must be UTF-8.
      auto s = n.Scalar();
      make_valid_utf8(s);
      // Quoted and block scalars carry the non-specific tag "!": strings,
      // whatever they spell.
      auto& tag = n.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str")
        result = std::move(s);
      else
        result = plain_scalar(s);
      return true;
    }
    case YAML::NodeType::Sequence: {
      result = json::array();
      bool ok = true;
      size_t i = 0;
      for (auto item : n) {
        json x;
        ok = yaml_to_json(item, index_path(path, i++), depth + 1, budget, x, out)
          && ok;
        if (budget.stopped)
          return false;
        result.push_back(std::move(x));
      }
      return ok;
    }
    case YAML::NodeType::Map: {
      result = json::object();
      bool ok = true;
      for (auto kv : n) {
        if (!kv.first.IsScalar()) {
          out.error(path, "keys must be strings" + where(kv.first));
          ok = false;
          continue;
        }
        auto key = kv.first.Scalar();
        make_valid_utf8(key);
        if (result.contains(key)) {
          out.error(key_path(path, key), "duplicate key" + where(kv.first));
          ok = false;
          continue;
        }
        json x;
        ok = yaml_to_json(kv.second, key_path(path, key), depth + 1, budget, x,
                          out)
          && ok;
        if (budget.stopped)
          return false;
        result[key] = std::move(x);
      }
      return ok;
    }
    default:
      result = nullptr;
      return true;
  }
}

/// The `*name` an alias starting at `pos` spells.
std::string alias_at(const std::string& text, size_t pos) {
  auto end = text.find_first_of(" \t\r\n,[]{}", pos + 1);
  return text.substr(pos, end == std::string::npos ? end : end - pos);
}

/// The blanks that start the line holding `pos`.
std::string indentation_at(const std::string& text, size_t pos) {
  auto start = std::min(pos, text.size());
  while (start > 0 && text[start - 1] != '\n')
    --start;
  auto end = text.find_first_not_of(" \t", start);
  return text.substr(start, end == std::string::npos ? end : end - start);
}

/// yaml-cpp's message for a syntax error with its line and column, and a
/// word on the likely cause where the message names a parser state.
std::string explain(const YAML::Exception& e, const std::string& text) {
  namespace msg = YAML::ErrorMsg;
  std::string what = e.msg.empty() ? std::string{e.what()} : e.msg;
  auto pos = e.mark.is_null() ? text.size() : static_cast<size_t>(e.mark.pos);
  std::string hint;
  if (dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr) {
    // Its message is "bad file"; the survey stops nesting long before.
    what = "nested too deeply";
  } else if (what == msg::UNKNOWN_ANCHOR && pos < text.size()
             && text[pos] == '*') {
    // A plain scalar starting with '*' reads as an alias: `owns: [**/x]`.
    what += ": " + alias_at(text, pos);
    hint = "quote values that start with '*', such as globs";
  } else if (what == msg::ALIAS_NOT_FOUND) {
    hint = "quote values that start with '*', such as globs";
  } else if (what == msg::TAB_IN_INDENTATION
             || indentation_at(text, pos).find('\t') != std::string::npos) {
    hint = "indent with spaces, not tabs";
  } else if (what == msg::END_OF_MAP || what == msg::END_OF_SEQ
             || what == msg::BLOCK_ENTRY) {
    hint = "check the indentation of this line";
  } else if (what == msg::MAP_VALUE) {
    hint = "check the indentation, and quote values that contain ': '";
  } else if (what == msg::END_OF_SEQ_FLOW) {
    hint = "a '[' before it is not closed";
  } else if (what == msg::END_OF_MAP_FLOW) {
    hint = "a '{' before it is not closed";
  } else if (what == msg::FLOW_END) {
    hint = "a ']' or '}' here closes nothing";
  } else if (what == msg::EOF_IN_SCALAR) {
    hint = "a quote is not closed";
  }
  std::string result = "invalid YAML";
  if (!e.mark.is_null())
    result += " at " + line_and_column(e.mark);
  result += ": " + what;
  if (!hint.empty())
    result += " (" + hint + ")";
  return result;
}

} // namespace

bool parse_bounded_yaml(const std::string& text, json& result,
                        diagnostics& out) {
  try {
    // The survey bounds the document before yaml-cpp builds a node for
    // each value in it.
    auto errors = out.error_count();
    yaml_survey survey{out};
    std::istringstream in{text};
    YAML::Parser parser{in};
    parser.HandleNextDocument(survey);
    if (out.error_count() > errors)
      return false;
    auto root = YAML::Load(text);
    json j;
    yaml_budget budget;
    if (!yaml_to_json(root, "", 0, budget, j, out))
      return false;
    result = std::move(j);
    return true;
  } catch (const yaml_survey::stop&) {
    return false;
  } catch (const YAML::Exception& e) {
    // Messages may quote the text, whatever its bytes.
    out.error("", valid_utf8(explain(e, text)));
    return false;
  } catch (const std::exception& e) {
    out.error("", "invalid YAML: " + valid_utf8(e.what()));
    return false;
  }
}

} // namespace troupe::detail
