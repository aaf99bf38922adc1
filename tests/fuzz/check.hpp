#pragma once

#include <cstdio>
#include <cstdlib>

/// Stops a fuzz run, naming the property that failed, when `cond` is false:
/// what the code under test promises beyond not crashing.
#define TROUPE_FUZZ_CHECK(cond)                                                \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,    \
                   #cond);                                                     \
      std::abort();                                                            \
    }                                                                          \
  } while (false)
