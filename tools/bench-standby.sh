#!/usr/bin/env bash
# tools/bench-standby.sh - what a standby costs a send (issue 17,
# docs/BENCHMARKS.md "A synchronous standby"): tools/bench.sh on
# PostgreSQL with no standby, an asynchronous one and a synchronous one
# (BENCH_PG_STANDBY), on the same machine, in the same run, alternating
# (round r runs the configurations in a rotated order, so that a burst of
# other load does not land on one of them only). Each run is a fresh
# cluster (primary and standby with PostgreSQL's defaults: fsync,
# synchronous_commit on) and two scenarios:
#   throughput  64 senders in a closed loop for THROUGHPUT_SECONDS (10):
#               stored msg/s and POST p50/p99 at saturation
#   fanout      FANOUT_RATE (200) msg/s for FANOUT_SECONDS (10) to
#               FANOUT_SUBS (100) SSE subscribers: POST and delivery
#               p50/p99 at a rate the machine sustains
# then prints, per configuration, the median over the rounds and the
# median of the per-round ratios to "none".
#
#   STANDBY_ROUNDS   3
#   STANDBY_CONFIGS  "none async sync"
#   BUILD            build
# Everything tools/bench.sh reads passes through (LARK_*, BENCH_PORT_*).
# Results: $BUILD/bench-standby-<config>.jsonl (appended; each run's lines
# are told apart by their time), and the table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
rounds=${STANDBY_ROUNDS:-3}
read -r -a configs <<<"${STANDBY_CONFIGS:-none async sync}"
export THROUGHPUT_SECONDS=${THROUGHPUT_SECONDS:-10}
export FANOUT_SUBS=${FANOUT_SUBS:-100} FANOUT_RATE=${FANOUT_RATE:-200}
export FANOUT_SECONDS=${FANOUT_SECONDS:-10} FANOUT_GRACE=${FANOUT_GRACE:-3}
command -v node >/dev/null || { echo "bench-standby: needs Node.js for the summary (tools/deps.sh test)" >&2; exit 2; }

since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
n=${#configs[@]}
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    c=${configs[$(((r + k) % n))]}
    echo "=== round $((r + 1)) of $rounds: standby $c"
    BENCH_DB=postgres BENCH_PG_STANDBY=$c BENCH_SCENARIOS="throughput fanout" \
      BENCH_RESULTS="$build/bench-standby-$c.jsonl" BUILD=$build tools/bench.sh |
      grep -E '^(bench:|  (throughput|POST|delivery|errors|CPU|LOST|target))' || true
  done
done

echo
echo "== standby: medians of $rounds rounds since $since (ratios: the median of per-round ratios to 'none')"
node - "$build" "$since" "${configs[@]}" <<'EOF'
const fs = require('fs');
const [build, since, ...configs] = process.argv.slice(2);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const runs = {};
for (const c of configs) {
  const file = `${build}/bench-standby-${c}.jsonl`;
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  const mine = lines.filter((j) => j.time >= since);
  runs[c] = { tp: mine.filter((j) => j.scenario === 'throughput'), fan: mine.filter((j) => j.scenario === 'fanout') };
}
const fig = {
  'throughput msg/s': (c) => runs[c].tp.map((j) => j.msg_per_s),
  'throughput POST p50 ms': (c) => runs[c].tp.map((j) => j.post_latency.p50_ms),
  'throughput POST p99 ms': (c) => runs[c].tp.map((j) => j.post_latency.p99_ms),
  'fanout POST p50 ms': (c) => runs[c].fan.map((j) => j.post_latency.p50_ms),
  'fanout POST p99 ms': (c) => runs[c].fan.map((j) => j.post_latency.p99_ms),
  'fanout delivery p99 ms': (c) => runs[c].fan.map((j) => j.delivery_latency.p99_ms),
  'fanout lost': (c) => runs[c].fan.map((j) => j.lost),
  'others CPU %': (c) => runs[c].tp.map((j) => j.cpu_pct.others),
};
const fmt = (x) => (x === undefined || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
console.log(['figure', ...configs].map((s, i) => (i ? s.padStart(16) : s.padEnd(26))).join(''));
for (const [name, get] of Object.entries(fig)) {
  const base = get('none');
  const cells = configs.map((c) => {
    const xs = get(c);
    if (!xs.length) return '-';
    let cell = fmt(med(xs));
    if (c !== 'none' && base.length === xs.length && base.every((b) => b > 0) && !name.includes('lost') && !name.includes('CPU'))
      cell += ` (${med(xs.map((x, i) => x / base[i])).toFixed(2)}x)`;
    return cell;
  });
  console.log([name.padEnd(26), ...cells.map((s) => s.padStart(16))].join(''));
}
console.log(`runs: ${configs.map((c) => `${c} ${runs[c].tp.length} throughput + ${runs[c].fan.length} fanout`).join(', ')}`);
EOF
