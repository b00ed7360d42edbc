#!/usr/bin/env bash
# tools/test.sh - every test, as `make test` runs it (after building the
# release build in build/, the ASan + UBSan build in build-asan/ and the
# fuzzers in build-fuzz/):
#
#   0. make lint (tools/lint.sh: clang-format, clang-tidy, cppcheck, headers,
#      banned calls, core/ not including fcgi/ or push/); a missing tool fails
#   1. C unit tests (Check), release, ASan and ThreadSanitizer builds
#      (TSan: the unit tests - test_hub and test_store run the hub, its
#      reader pool and the store's threads - and a short integration subset,
#      LARK_TSAN_SUITES, default test_held test_ws test_stream: the cap
#      taken by workers and WebSocket threads and given back by the hub,
#      WebSocket command threads, SSE and long-poll through the hub)
#   2. each fuzzer briefly on its seed corpus (FUZZ_SECONDS, default 10);
#      the browser client's transport state machine (www/lark.js under a
#      fake clock, tests/js/, Node's test runner; about a second)
#   3. integration tests against real lighttpd + larkd, on each store
#      (LARK_TEST_BACKENDS, default "sqlite postgres") and each build:
#        sqlite    release, ASan
#        postgres  release, ASan: every suite on a fresh database in one
#                  throwaway cluster (tests/integration/lib/pg.mjs), plus
#                  the PostgreSQL-only scale suites (two larkd, restart,
#                  hosts in network namespaces, failover to a synchronous
#                  standby by pg_ctl promote and by Patroni: about 30-45 s
#                  and 30-55 s of each run, issue 17; the whole release
#                  run on PostgreSQL took 6.4 minutes on 2 busy cores)
#      test_cgi runs larkd as a CGI program behind lighttpd's mod_cgi and a
#      throwaway Apache with mod_cgid (about 25 s a run).
#      The SQLite and PostgreSQL runs of one build run side by side.
#      All four: the ASan runs catch memory errors in each back end, the
#      release runs are faster and so the likelier to show races in the
#      concurrency suites. Measured on 2 shared cores: about 45 s each on
#      SQLite and 85 s each on PostgreSQL, under 5 minutes together (see
#      docs/OPERATIONS.md, "Testing on PostgreSQL").
#   4. browser tests: the demo page in headless Chromium (Debian's
#      /usr/bin/chromium through playwright-core) against the ASan build;
#      a missing Chromium fails this step (tools/deps.sh test installs it).
#      They include the proxy matrix (test_proxies.mjs, about a minute):
#      squid, tinyproxy, privoxy, nginx and HAProxy from Debian's packages
#      on loopback in front of one shared stack; raw SSE and long-poll
#      checks through each, and the demo page behind each
#   5. the Debian package (tests/package/run.sh): make deb, apt-get install,
#      systemd-analyze verify, the services started as their units say and
#      smoke-tested over HTTP and TLS, apt-get purge leaving nothing; about
#      15 s, as root (skipped, saying so, otherwise)
#
# Ends with one summary line; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then echo "=== $name: ok"; else echo "=== $name: FAILED"; failed+=("$name"); fi
}

units=$(make -s print-unit-tests)
fuzzers=$(make -s print-fuzzers)
step "lint" tools/lint.sh
if [ -n "$units" ]; then
  step "unit (release)" tools/unit.sh build $units
  step "unit (asan)" tools/unit.sh build-asan $units
  step "unit (tsan)" env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" tools/unit.sh build-tsan $units
fi
# shellcheck disable=SC2086
step "integration (tsan, sqlite, subset)" env LARK_BUILD=build-tsan TSAN_OPTIONS="halt_on_error=1" \
  node tests/integration/run.mjs --backend=sqlite ${LARK_TSAN_SUITES:-test_held test_ws test_stream}
[ -n "$fuzzers" ] && step "fuzz (${FUZZ_SECONDS:-10} s each)" tools/fuzz.sh "${FUZZ_SECONDS:-10}" $fuzzers
step "lark.js unit (fake clock)" node --test tests/js/test_*.mjs
# The two stores' runs of one build side by side: they mostly wait (held
# requests, timeouts, restarts, failovers), not compute, and share nothing
# (each stack its own kernel-given ports and temporary directory; the
# PostgreSQL run its own cluster), so together they take about the time of
# the longer one. LARK_TEST_SERIAL=1 runs them one after the other.
logs=$(mktemp -d "${TMPDIR:-/tmp}/lark-test.XXXXXX")
for kind in release asan; do
  [ "$kind" = release ] && b=build || b=build-asan
  pids=() names=()
  for backend in ${LARK_TEST_BACKENDS:-sqlite postgres}; do
    name="integration ($kind, $backend)"
    run_one=(env LARK_BUILD="$b" node tests/integration/run.mjs --backend="$backend")
    if [ "${LARK_TEST_SERIAL:-0}" = 1 ]; then step "$name" "${run_one[@]}"; continue; fi
    echo "=== $name: started (its output follows when it ends)"
    "${run_one[@]}" >"$logs/$backend.log" 2>&1 &
    pids+=("$!") names+=("$name:$backend")
  done
  for i in "${!pids[@]}"; do
    name=${names[$i]%:*} backend=${names[$i]##*:}
    if wait "${pids[$i]}"; then rc=ok; else rc=FAILED; failed+=("$name"); fi
    echo "=== $name"; cat "$logs/$backend.log"; echo "=== $name: $rc"
  done
done
rm -rf "$logs"
step "browser (asan)" env LARK_BUILD=build-asan node tests/browser/run.mjs
step "package (deb)" tests/package/run.sh
step "valgrind" tools/valgrind.sh

if [ ${#failed[@]} -eq 0 ]; then
  echo "make test: all steps passed"
else
  echo "make test: FAILED: ${failed[*]}"
  exit 1
fi
