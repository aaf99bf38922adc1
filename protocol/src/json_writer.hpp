#pragma once

// Appending JSON to a string without building nlohmann's tree: for
// json_out.cpp (events and reports) and plan_json_out.cpp (plans), which
// write what the `to_json` functions make, key for key.

#include <charconv>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/protocol/utf8.hpp"

namespace troupe::detail {

// Appends JSON to a string; `item` starts a value in an array or object,
// with the comma it needs.
class writer {
public:
  explicit writer(std::string& out) : out_(out) {
  }

  void open(char c) {
    item();
    out_ += c;
    first_ = true;
  }

  void close(char c) {
    out_ += c;
    first_ = false;
  }

  // A key of the writer's own: plain ASCII, taken as it is.
  void key(std::string_view k) {
    item();
    out_ += '"';
    raw(k);
    raw("\":");
    first_ = true; // its value takes no comma
  }

  // A key from the data.
  void key_text(std::string_view k) {
    string(k);
    out_ += ':';
    first_ = true;
  }

  void string(std::string_view s) {
    item();
    if (plain_ascii(s)) {
      out_ += '"';
      raw(s);
      out_ += '"';
    } else if (is_valid_utf8(s)) {
      escaped(s);
    } else {
      escaped(valid_utf8(s));
    }
  }

  template <class Int>
  void integer(Int x) {
    item();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    out_.append(buf, r.ptr);
  }

  // As nlohmann writes doubles: null when not finite, else the shortest
  // text that reads back as the same double, with a fraction or an
  // exponent so that it reads back as a double.
  void number(double x) {
    item();
    if (!std::isfinite(x)) {
      raw("null");
      return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    std::string_view text{buf, static_cast<size_t>(r.ptr - buf)};
    raw(text);
    if (text.find_first_of(".e") == std::string_view::npos)
      raw(".0");
  }

  void boolean(bool x) {
    item();
    raw(x ? "true" : "false");
  }

  void strings(const std::vector<std::string>& xs) {
    open('[');
    for (auto& x : xs)
      string(x);
    close(']');
  }

  void strings(const std::map<std::string, std::string>& xs) {
    open('{');
    for (auto& [k, v] : xs) {
      key_text(k);
      string(v);
    }
    close('}');
  }

private:
  void raw(std::string_view s) {
    out_.append(s.data(), s.size());
  }

  // ASCII that needs no escape, as most text here is: one pass without a
  // branch per byte.
  static bool plain_ascii(std::string_view s) {
    unsigned bad = 0;
    for (unsigned char c : s)
      bad |= static_cast<unsigned>(c < 0x20) | (c >> 7)
             | static_cast<unsigned>(c == '"')
             | static_cast<unsigned>(c == '\\');
    return bad == 0;
  }

  void item() {
    if (!first_)
      out_ += ',';
    first_ = false;
  }

  void escaped(std::string_view s) {
    out_ += '"';
    size_t plain = 0; // where the characters taken as they are start
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      out_.append(s.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"': raw("\\\""); break;
        case '\\': raw("\\\\"); break;
        case '\b': raw("\\b"); break;
        case '\f': raw("\\f"); break;
        case '\n': raw("\\n"); break;
        case '\r': raw("\\r"); break;
        case '\t': raw("\\t"); break;
        default: {
          static constexpr char hex[] = "0123456789abcdef";
          char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
          out_.append(u, sizeof(u));
        }
      }
    }
    out_.append(s.data() + plain, s.size() - plain);
    out_ += '"';
  }

  std::string& out_;
  bool first_ = true;
};

/// Writes each of `xs` with the `write` found for it.
template <class T>
void write_all(writer& w, const std::vector<T>& xs) {
  w.open('[');
  for (auto& x : xs)
    write(w, x);
  w.close(']');
}

} // namespace troupe::detail
