#!/bin/sh
# The scatter step of examples/subplan: it finds its shards only now, at run
# time (here, the files under the folders given), and prints a plan with one
# workstream per shard. Troupe runs that plan as this workstream's children
# (`scatter/<shard>`), and `gather` waits for all of them.
set -eu
echo "name: count-shards"
echo "workstreams:"
for dir in "$@"; do
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    id=$(printf '%s' "$f" | tr -c 'A-Za-z0-9_.-' '-')
    printf '  - id: %s\n' "$id"
    printf '    title: Count lines of %s\n' "$f"
    printf '    agent: explore\n'
    printf '    executor: {kind: command, run: "wc -l < %s | tr -d \\" \\""}\n' "$f"
  done
done
