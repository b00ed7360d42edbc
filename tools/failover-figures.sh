#!/usr/bin/env bash
# tools/failover-figures.sh - the failover figures of docs/BENCHMARKS.md
# ("Failover"), from the failover suites themselves: runs
# tests/integration/test_failover.mjs and test_patroni.mjs ROUNDS times
# (default 5) on PostgreSQL and prints, per scenario, the median and the
# range of
#   kill     kill -9 of the primary, pg_ctl promote of its synchronous
#            standby right after: ms from the primary's death (every
#            process gone) to the first 201 of a send begun after it, and
#            how long pg_ctl promote took
#   zone     the primary's zone cut off (links down), pg_ctl promote right
#            after: ms from the cut to the first 201
#   patroni  the primary's host cut off, Patroni promotes by itself: ms
#            from the cut to the promotion and to the first 201
# PATRONI_TIMING="ttl,loop_wait,retry_timeout" (default "10,1,3", the
# suite's; "30,10,10" is Patroni's default). Needs root (network
# namespaces), patroni and etcd (tools/deps.sh test). LARK_BUILD selects
# the build (default build). Each round's output is kept in
# $LARK_BUILD/failover-figures.log.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
build=${LARK_BUILD:-build}
log=$build/failover-figures.log
: >"$log"
for ((r = 1; r <= rounds; r++)); do
  echo "=== round $r of $rounds" | tee -a "$log"
  LARK_BUILD=$build LARK_TEST_PATRONI_TIMING=${PATRONI_TIMING:-10,1,3} \
    node tests/integration/run.mjs --backend=postgres failover patroni 2>&1 |
    grep -vE 'INFO: no action' | tee -a "$log" | grep -E '^(ok|FAIL|integration)' || true
done
node - "$log" "${PATRONI_TIMING:-10,1,3}" <<'JS'
const fs = require('fs');
const [log, timing] = process.argv.slice(2);
const text = fs.readFileSync(log, 'utf8');
const grab = (re) => [...text.matchAll(re)].map((m) => m.slice(1).map(Number));
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const show = (name, xs) => console.log(`${name.padEnd(58)} ${xs.length ? `median ${med(xs)} ms, ${Math.min(...xs)}-${Math.max(...xs)} ms (n=${xs.length})` : 'no samples'}`);
const kill = grab(/primary gone after (\d+) ms, standby promoted after (\d+) ms; first 201 of a send begun after that: (\d+) ms/g);
show('kill: pg_ctl promote took', kill.map(([g, p]) => p - g));
show('kill: death -> first 201', kill.map((x) => x[2]));
const zone = grab(/zone a cut off after (\d+) ms, standby promoted after (\d+) ms; first 201 of a send begun after the cut: (\d+) ms/g);
show('zone: cut -> first 201', zone.map((x) => x[2]));
const pat = grab(/db1 cut off after (\d+) ms; Patroni promoted pg2 after (\d+) ms; first 201 of a send begun after the cut: (\d+) ms/g);
show(`patroni (ttl,loop_wait,retry_timeout ${timing}): cut -> promoted`, pat.map(([c, p]) => p - c));
show(`patroni (ttl,loop_wait,retry_timeout ${timing}): cut -> first 201`, pat.map((x) => x[2]));
const fails = (text.match(/^FAIL /gm) || []).length;
console.log(`failed tests: ${fails}`);
JS
