#!/bin/sh
# Makes the small repository the coding example works on: two shell
# "modules", a README and a test script, in one commit.
#   examples/coding/make-repo.sh DIR
set -eu
dir=${1:?usage: make-repo.sh DIR}
if [ -e "$dir" ]; then
  echo "make-repo.sh: $dir exists already" >&2
  exit 2
fi
mkdir -p "$dir/src"
cd "$dir"
git init -q -b main .
cat > src/greet.sh <<'SH'
# greet NAME: a greeting for NAME.
greet() {
  echo "Hello, $1"
}
SH
cat > src/math.sh <<'SH'
# add A B: the sum of A and B.
add() {
  echo $(($1 + $2))
}
SH
cat > test.sh <<'SH'
#!/bin/sh
# The project's tests: every function, and what it must print.
. ./src/greet.sh
. ./src/math.sh
failed=0
check() {
  if [ "$2" != "$3" ]; then
    echo "FAIL $1: expected '$3', got '$2'"
    failed=1
  else
    echo "ok   $1"
  fi
}
check "greet" "$(greet Ada)" "Hello, Ada!"
check "add" "$(add 2 3)" "5"
if command -v mul >/dev/null 2>&1; then
  check "mul" "$(mul 4 5)" "20"
else
  echo "FAIL mul: not defined"
  failed=1
fi
exit $failed
SH
chmod +x test.sh
cat > README.md <<'MD'
# calc

A tiny shell library: `greet`, `add`.
MD
git add -A
git -c user.name=Example -c user.email=example@localhost commit -q -m "calc: greet and add"
echo "$dir: a repository with src/greet.sh, src/math.sh, test.sh and README.md"
