# Sourced by the shell tests: counters and `expect CODE PATTERN -- command...`,
# which runs the command, checks its exit code and that stdout+stderr match
# the extended regex PATTERN, and reports a mismatch with the output.
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
