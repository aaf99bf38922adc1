#!/bin/sh
# Adds up the line counts the shards of examples/subplan handed over: the
# scatter step's result in TROUPE_CONTEXT lists each child with its summary
# (outputs.children, a line "- ID (STATUS): SUMMARY" each).
set -eu
python3 - "$TROUPE_CONTEXT" <<'PY'
import json, re, sys
ctx = json.load(open(sys.argv[1]))
account = ctx["dependencies"][0]
total = 0
shards = 0
for line in account["outputs"].get("children", "").splitlines():
    m = re.match(r"- (\S+) \(succeeded\): (\d+)$", line)
    if m:
        shards += 1
        total += int(m.group(2))
print(f"{shards} shards, {total} lines")
PY
