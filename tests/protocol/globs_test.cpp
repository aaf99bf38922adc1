#include <string>

#include <catch2/catch.hpp>

#include "troupe/protocol/plan_io.hpp"

TEST_CASE("globs overlap exactly when some path matches both", "[protocol]") {
  struct row {
    const char* a;
    const char* b;
    bool overlap;
  };
  auto table = GENERATE(values<row>({
    {"src/**", "src/a/b.ts", true},
    {"*.ts", "a/b.ts", false},
    {"src/*.ts", "src/x.js", false},
    {"docs", "docs/a.md", true},
    {"a/**/z", "a/b/c/z", true},
    {"a/**/z", "a/z", true},
    {"a/**/z", "a/b/c/*.y", false},
    // A plain path owns what is below it: a/xz/z.
    {"a/**/z", "a/xz", true},
    {"a/**/z", "a/?z", false},
    {"**/b.md", "?b.md", false},
    // A plain path may be a directory: it owns a/b/c/y/z.
    {"a/**/z", "a/b/c/y", true},
    {"src/api/", "src/api/x/y.ts", true},
    {"src/api", "src/apix.ts", false},
    {"src/*.ts", "src/a*", true},
    {"src/*.ts", "src/*.js", false},
    {"src/?.ts", "src/ab.ts", false},
    {"src/?.ts", "src/a.ts", true},
    {"**/*.md", "docs/guide/readme.md", true},
    {"**/*.md", "README.md", true},
    {"tests/**", "src/**", false},
    {"auth/types.ts", "auth/jwt.ts", false},
    {"auth/types.ts", "auth/types.ts", true},
    {"a/*/c", "a/b/*", true},
    {"*", "a/b", false},
    {"**", "a/b", true},
    {"src/**/*.test.ts", "src/x/*.js", false},
    {"src/**/*.test.ts", "src/x/*.ts", true},
    {"src/**/*.test.ts", "src/**/foo.*", true},
    {"./src/x.ts", "src/*", true},
    {"src", "src.ts", false},
    {"src/*", "src/a/b", false},
  }));
  CAPTURE(table.a, table.b);
  CHECK(troupe::globs_overlap(table.a, table.b) == table.overlap);
  CHECK(troupe::globs_overlap(table.b, table.a) == table.overlap);
}

TEST_CASE("a path matches a glob as ownership reads it", "[protocol]") {
  struct row {
    const char* glob;
    const char* path;
    bool matches;
  };
  auto table = GENERATE(values<row>({
    {"a.txt", "a.txt", true},
    {"a.txt", "b.txt", false},
    // A plain path, or one ending in '/', owns what is below it.
    {"docs", "docs/guide/a.md", true},
    {"docs/", "docs/a.md", true},
    {"docs", "docs.md", false},
    {"src/*.sh", "src/greet.sh", true},
    {"src/*.sh", "src/lib/greet.sh", false},
    {"src/**", "src/lib/greet.sh", true},
    {"src/**", "srcx/a", false},
    {"**/*.md", "README.md", true},
    {"**/*.md", "a/b/README.md", true},
    {"a/**/z", "a/z", true},
    {"a/**/z", "a/b/c/z", true},
    {"a/**/z", "a/b/c/zz", false},
    // `**/` that has read something must end with its '/'.
    {"a/**/z", "a/zz", false},
    {"a/**/z", "a/xz", false},
    {"**/b", "ab", false},
    {"**/b", "a/b", true},
    {"?.txt", "a.txt", true},
    {"?.txt", "/.txt", false},
    {"./a.txt", "a.txt", true},
    {"a.txt", "./a.txt", true},
    {"**", "any/path/at/all", true},
    {"*", "top", true},
    {"*", "a/b", false},
    {"bin/", "bin/blob.bin", true},
    {"new file.txt", "new file.txt", true},
    {"caf\xc3\xa9/*", "caf\xc3\xa9/x", true},
  }));
  CAPTURE(table.glob, table.path);
  CHECK(troupe::glob_matches(table.glob, table.path) == table.matches);
  // Whatever matches a glob overlaps it.
  if (table.matches)
    CHECK(troupe::globs_overlap(table.glob, table.path));
}
