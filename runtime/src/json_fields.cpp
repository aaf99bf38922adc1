#include "json_fields.hpp"

namespace troupe::detail {

namespace {

// The four hexadecimal digits at `text[i]`, if there are four.
bool hex4(std::string_view text, size_t i, unsigned& out) {
  if (i + 4 > text.size())
    return false;
  out = 0;
  for (size_t k = i; k < i + 4; ++k) {
    auto c = text[k];
    unsigned d = c >= '0' && c <= '9'   ? c - '0'
                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                        : 16;
    if (d == 16)
      return false;
    out = out * 16 + d;
  }
  return true;
}

bool high_surrogate(unsigned x) {
  return x >= 0xD800 && x <= 0xDBFF;
}

bool low_surrogate(unsigned x) {
  return x >= 0xDC00 && x <= 0xDFFF;
}

} // namespace

std::string without_lone_surrogates(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned x = 0;
    if (text[i] != '\\' || i + 1 >= text.size()) {
      out += text[i++];
    } else if (text[i + 1] != 'u' || !hex4(text, i + 2, x)) {
      // Any other escape, the escaped character included.
      out.append(text.substr(i, 2));
      i += 2;
    } else if (unsigned y = 0; high_surrogate(x) && i + 12 <= text.size()
                               && text[i + 6] == '\\' && text[i + 7] == 'u'
                               && hex4(text, i + 8, y) && low_surrogate(y)) {
      out.append(text.substr(i, 12));
      i += 12;
    } else if (high_surrogate(x) || low_surrogate(x)) {
      out += "\\ufffd";
      i += 6;
    } else {
      out.append(text.substr(i, 6));
      i += 6;
    }
  }
  return out;
}

nlohmann::json parse_outside(std::string_view text, int max_depth) {
  auto shallow = [max_depth](int depth, nlohmann::json::parse_event_t,
                             nlohmann::json&) { return depth <= max_depth; };
  auto j = nlohmann::json::parse(text.begin(), text.end(), shallow, false);
  if (j.is_discarded() && text.find("\\u") != std::string_view::npos) {
    auto fixed = without_lone_surrogates(text);
    if (fixed != text)
      j = nlohmann::json::parse(fixed, shallow, false);
  }
  return j;
}

} // namespace troupe::detail
