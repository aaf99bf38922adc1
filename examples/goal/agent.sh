#!/bin/sh
# A stand-in agent for the goal example, so that a goal can become a plan
# and run without any API key: it takes its workstream's task (the first
# line of its prompt) and writes what it was asked to do, by which persona
# on which tier, to goal-output/<workstream>.md. A real team runs
# --executor claude-code (or anthropic, openai) instead.
#
#   troupe run --goal "Add a login page and a logout endpoint, then write end-to-end tests" \
#     --executor command --run examples/goal/agent.sh --yes
set -eu
out=${GOAL_OUTPUT:-goal-output}
mkdir -p "$out"
task=$(head -n 1 "$TROUPE_PROMPT_FILE")
{
  printf '# %s\n\n' "$TROUPE_WORKSTREAM"
  printf '%s\n\n' "$task"
  printf 'persona %s, tier %s, attempt %s\n' "$TROUPE_PERSONA" "$TROUPE_MODEL" "$TROUPE_ATTEMPT"
} > "$out/$TROUPE_WORKSTREAM.md"
echo "$TROUPE_PERSONA ($TROUPE_MODEL): $task"
