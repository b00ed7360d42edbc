#!/usr/bin/env bash
# tools/valgrind.sh - memcheck over the release build: the unit tests that
# do not start threads by the hundred, then larkd itself under valgrind for
# the integration suites that drive most of its code. Any memcheck error or
# definite leak fails the run (larkd exits 23; the harness also looks for
# "ERROR SUMMARY: N" with N > 0 in larkd's stderr).
set -uo pipefail
cd "$(dirname "$0")/.."
vg=(valgrind -q --error-exitcode=23 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite)
fail=0

for t in test_buf test_json test_query test_auth test_ids test_fcgirec test_events test_heap test_pgnote test_hub \
         test_hmap test_router test_config test_media test_sigv4 test_blob test_ticket test_quota; do
  if "${vg[@]}" "build/tests/$t" >/tmp/lark-vg-$$.log 2>&1; then
    echo "ok    $t (valgrind)"
  else
    echo "FAIL  $t (valgrind)"; tail -30 /tmp/lark-vg-$$.log; fail=1
  fi
done
rm -f /tmp/lark-vg-$$.log

LARK_LARKD_WRAPPER="${vg[*]}" LARK_BUILD=build node tests/integration/run.mjs \
  test_api test_ws test_chat test_errors test_media || fail=1
# larkd as a CGI program (the waiting, the limits in the store): the
# direct runs and the lighttpd half of test_cgi (the Apache half runs the
# same code; about 90 s under valgrind)
LARK_LARKD_WRAPPER="${vg[*]}" LARK_BUILD=build LARK_TEST_ONLY='^CGI:|\[lighttpd\]' \
  node tests/integration/run.mjs test_cgi || fail=1

[ $fail -eq 0 ] && echo "valgrind: clean" || { echo "valgrind: FAILED"; exit 1; }
