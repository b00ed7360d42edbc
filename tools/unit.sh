#!/usr/bin/env bash
# tools/unit.sh BUILD_DIR test... - run C unit test programs (Check).
#
#   tools/unit.sh build test_buf test_json        # release build
#   tools/unit.sh build-asan test_buf test_json   # ASan + UBSan build
#
# Runs BUILD_DIR/tests/<test> for each name, one after another (the store
# tests start threads and time things; the machine may be small). Prints
# one line per program; a failing program's output follows its line. A
# program fails if it exits non-zero, runs past UNIT_TIMEOUT seconds
# (default 300), or prints a sanitizer report even with exit status 0.
# Ends with "unit (BUILD_DIR): N passed, N failed"; exits 1 on any failure.
#
# LeakSanitizer is on (detect_leaks=1): the programs run their tests in
# one process (CK_NOFORK, see tests/unit/unit.h), so a leak anywhere fails
# the program and the report's stack names the test.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: tools/unit.sh BUILD_DIR test..." >&2
  exit 2
fi
build=$1
shift

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
timeout_s=${UNIT_TIMEOUT:-300}
logs=$(mktemp -d "${TMPDIR:-/tmp}/lark-unit-logs.XXXXXX")
trap 'rm -rf "$logs"' EXIT

sanitizer_report='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer'
passed=0
failed=0
for t in "$@"; do
  bin=$build/tests/$t
  log=$logs/$t.log
  if [ ! -x "$bin" ]; then
    printf 'FAIL  %-16s not built: %s\n' "$t" "$bin"
    failed=$((failed + 1))
    continue
  fi
  start=$(date +%s%N)
  timeout --kill-after=10 "$timeout_s" "$bin" >"$log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  summary=$(grep -oE 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
  why=
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    why="timed out after ${timeout_s} s"
  elif [ $rc -ne 0 ]; then
    why="exit status $rc"
  elif grep -qE "$sanitizer_report" "$log"; then
    why="sanitizer report"
  fi
  if [ -z "$why" ]; then
    printf 'ok    %-16s %s (%d.%d s)\n' "$t" "${summary:-no summary}" $((ms / 1000)) $((ms % 1000 / 100))
    passed=$((passed + 1))
  else
    printf 'FAIL  %-16s %s%s\n' "$t" "$why" "${summary:+; $summary}"
    # The failed checks and the sanitizer report, else the end of the output.
    if grep -qE ":[FE]:|$sanitizer_report" "$log"; then
      grep -E ":[FE]:|$sanitizer_report|^    #[0-9]|SUMMARY:" "$log" | head -n 60 | sed 's/^/      /'
    else
      tail -n 20 "$log" | sed 's/^/      /'
    fi
    failed=$((failed + 1))
  fi
done

echo "unit ($build): $passed passed, $failed failed"
[ $failed -eq 0 ]
