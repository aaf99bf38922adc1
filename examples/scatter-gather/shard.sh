#!/bin/sh
# Sums the squares of FROM..TO and hands the partial sum over.
set -eu
sum=$(seq "$1" "$2" | awk '{s += $1 * $1} END {printf "%.0f", s}')
echo "squares of $1..$2 sum to $sum"
[ -z "${TROUPE_RESULT:-}" ] || printf '{"outputs": {"sum": "%s"}}\n' "$sum" > "$TROUPE_RESULT"
