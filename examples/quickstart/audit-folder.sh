#!/bin/sh
# Audits one folder: files, lines of C++ and open TODOs. Hands its numbers to
# later workstreams through $TROUPE_RESULT.
set -eu
dir=$1
[ -d "$dir" ] || { echo "no folder $dir" >&2; exit 1; }
files=$(find "$dir" -type f | wc -l)
lines=$(find "$dir" -type f \( -name '*.cpp' -o -name '*.hpp' \) -exec cat {} + | wc -l)
todos=$(grep -rn 'TODO' "$dir" | wc -l || true)
tests=$(grep -rn '^TEST_CASE' "$dir" | wc -l || true)
echo "$dir: $files files, $lines lines of C++, $todos TODOs, $tests test cases"
if [ -n "${TROUPE_RESULT:-}" ]; then
  printf '{"summary": "%s: %s files, %s lines, %s TODOs", "outputs": {"files": "%s", "lines": "%s", "todos": "%s"}}\n' \
    "$dir" "$files" "$lines" "$todos" "$files" "$lines" "$todos" > "$TROUPE_RESULT"
fi
