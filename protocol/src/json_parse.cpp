// JSON text to JSON, bounded: a SAX parser that refuses what is too deep
// or too big before it is built.

#include "bounded_parse.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "troupe/protocol/utf8.hpp"
#include "text.hpp"

namespace troupe::detail {

namespace {

using json = nlohmann::json;

/// Builds JSON from nlohmann's SAX events as `json::parse` does, but
/// refuses nesting deeper than max_depth and more than max_values values.
class json_builder {
public:
  explicit json_builder(json& root, diagnostics& out) : root_(root), out_(out) {
    // nop
  }

  /// nlohmann's message for a syntax error, or "" if there was none.
  const std::string& syntax_error() const {
    return syntax_error_;
  }

  bool null() {
    return add(nullptr);
  }

  bool boolean(bool x) {
    return add(x);
  }

  bool number_integer(json::number_integer_t x) {
    return add(x);
  }

  bool number_unsigned(json::number_unsigned_t x) {
    return add(x);
  }

  bool number_float(json::number_float_t x, const std::string&) {
    return add(x);
  }

  bool string(std::string& x) {
    return add(std::move(x));
  }

  bool binary(json::binary_t& x) {
    return add(json::binary(std::move(x)));
  }

  bool start_object(size_t) {
    return add(json::object());
  }

  bool key(std::string& k) {
    keys_.back() = std::move(k);
    return true;
  }

  bool end_object() {
    return close();
  }

  bool start_array(size_t) {
    return add(json::array());
  }

  bool end_array() {
    return close();
  }

  bool parse_error(size_t, const std::string&, const json::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

private:
  /// The path of the value the innermost open collection gets next.
  std::string next_path() const {
    std::string path;
    for (size_t i = 0; i < open_.size(); ++i) {
      auto& c = *open_[i];
      // Inner collections are the last element of theirs.
      auto n = c.size() - (i + 1 < open_.size() ? 1 : 0);
      path = c.is_object() ? key_path(path, keys_[i]) : index_path(path, n);
    }
    return path;
  }

  bool add(json x) {
    if (open_.size() > max_depth) {
      out_.error(next_path(), "nested deeper than "
                                + std::to_string(max_depth) + " levels");
      return false;
    }
    if (++values_ > max_values) {
      out_.error("", "plan is too large: more than "
                       + std::to_string(max_values) + " values");
      return false;
    }
    json* slot = &root_;
    if (!open_.empty() && open_.back()->is_array()) {
      open_.back()->push_back(std::move(x));
      slot = &open_.back()->back();
    } else if (!open_.empty()) {
      slot = &(*open_.back())[keys_.back()];
      *slot = std::move(x);
    } else {
      root_ = std::move(x);
    }
    if (slot->is_structured()) {
      open_.push_back(slot);
      keys_.emplace_back();
    }
    return true;
  }

  bool close() {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }

  json& root_;
  diagnostics& out_;
  std::vector<json*> open_;
  std::vector<std::string> keys_;
  size_t values_ = 0;
  std::string syntax_error_;
};

} // namespace

bool parse_bounded_json(const std::string& text, json& result,
                        diagnostics& out) {
  json j;
  json_builder builder{j, out};
  if (json::sax_parse(text, &builder)) {
    result = std::move(j);
    return true;
  }
  if (!builder.syntax_error().empty()) {
    // what() reads "[json.exception.parse_error.101] parse error at line
    // 3, column 5: ..."; the bracket is noise to a user. It ends with the
    // bytes last read, as they are.
    auto what = valid_utf8(builder.syntax_error());
    auto close = what.find("] ");
    out.error("", "invalid JSON: "
                    + (close == std::string::npos ? what
                                                  : what.substr(close + 2)));
  }
  return false;
}

} // namespace troupe::detail
