#!/bin/sh
# Adds up the numbers the folder audits handed over in $TROUPE_CONTEXT.
set -eu
ctx=${TROUPE_CONTEXT:?run me from troupe}
sum() { grep -o "\"$1\":\"[0-9]*\"" "$ctx" | grep -o '[0-9]*' | awk '{s += $1} END {print s + 0}'; }
deps=$(grep -o '"files":"' "$ctx" | wc -l)
echo "$deps folders: $(sum files) files, $(sum lines) lines of C++, $(sum todos) TODOs"
