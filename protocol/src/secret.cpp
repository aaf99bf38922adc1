#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include <sys/random.h>

#include "troupe/protocol/result.hpp"

namespace troupe {

std::string make_secret() {
  uint8_t bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    auto n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(bytes)) {
    // No getrandom (an old kernel): the library's source, which reads the
    // kernel's pool another way.
    std::random_device rd;
    for (auto& b : bytes)
      b = static_cast<uint8_t>(rd());
  }
  std::string out;
  char hex[3];
  for (auto b : bytes) {
    std::snprintf(hex, sizeof(hex), "%02x", b);
    out += hex;
  }
  return out;
}

} // namespace troupe
