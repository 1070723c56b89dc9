# shellcheck shell=bash
# Sourced by the shell tests: the pass/fail counters, two kinds of check and
# the summary line.
#   expect CODE PATTERN -- command...  runs the command and checks its exit
#       code and that its stdout+stderr match the extended regex PATTERN;
#   check WHAT command...              checks that the command succeeds (WHAT
#       says what should hold); a failure prints WHAT and the command's
#       output and returns 1, so that `|| printf ...` can add context;
#   finish NAME                        prints "NAME: P passed, F failed" and
#       fails when a check failed or when none ran (a test whose checks were
#       all skipped must not pass): end each test with it.
passed=0
failed=0

expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$code" ] && printf '%s' "$out" | grep -Eq -- "$pattern"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAILED: %s\n  wanted exit %s and /%s/, got exit %s:\n%s\n' "$*" "$code" "$pattern" "$rc" "$out" | head -20
  fi
}

check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $what"
    [ -n "$out" ] && printf '%s\n' "$out" | head -20
    return 1
  fi
}

finish() {
  echo "$1: $passed passed, $failed failed"
  if [ $((passed + failed)) -eq 0 ]; then
    echo "$1: no checks ran"
    return 1
  fi
  [ "$failed" -eq 0 ]
}
