#!/bin/sh
# Every header in the tree opens with #pragma once.
set -eu
bad=0
for h in $(find protocol runtime actors nodes -name '*.hpp'); do
  if ! grep -q '^#pragma once' "$h"; then
    echo "missing #pragma once: $h"
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "all headers have #pragma once"
exit "$bad"
