#!/usr/bin/env bash
# tools/bench.sh - what `make bench` runs after building: each scenario of
# build/larkbench against a fresh lighttpd + larkd (a new temporary data
# directory and database, a free port), started the way tools/run.sh does,
# with LARK_SEND_RATE=0 so the per-user send limit does not cap the load.
# Prints each report, then a summary; the JSON lines are kept in
# $BENCH_RESULTS. docs/BENCHMARKS.md explains the figures.
#
# Environment (defaults are the figures docs/BENCHMARKS.md targets):
#   BENCH_SCENARIOS      "fanout throughput idle push"
#   FANOUT_SUBS          1000    SSE subscribers
#   FANOUT_SENDERS       50      sender connections (one user each)
#   FANOUT_RATE          1000    messages per second, in total
#   FANOUT_SECONDS       20      sending window
#   FANOUT_GRACE         5       seconds to wait for late deliveries
#   THROUGHPUT_SENDERS   64      concurrent senders
#   THROUGHPUT_SECONDS   10
#   IDLE_CONNS           9000    held SSE streams
#   BENCH_PUSH_N         5000    push: devices per provider (tools/bench_push.mjs)
#   BENCH_PORT_MIN/MAX   18000/18999: the free port is picked in this range
#   BENCH_RESULTS        $BUILD/bench-results.jsonl (appended to)
#   BENCH_KEEP=1         keep the temporary data directories (logs, database)
#   BENCH_ARGS           extra larkbench options for every scenario
#   BUILD                build (the larkd and larkbench to use)
#   LARKBENCH            the load generator, default $BUILD/larkbench
#   LARK_*               passed to larkd (e.g. LARK_WORKERS, LARK_SQLITE_SYNC)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build}

scenarios=${BENCH_SCENARIOS:-fanout throughput idle push}
results=${BENCH_RESULTS:-$build/bench-results.jsonl}
port_min=${BENCH_PORT_MIN:-18000}
port_max=${BENCH_PORT_MAX:-18999}
read -r -a extra <<<"${BENCH_ARGS:-}"
larkbench=${LARKBENCH:-$build/larkbench}

for bin in "$build/larkd" "$larkbench"; do
  [ -x "$bin" ] || { echo "bench: $bin is missing; run make all" >&2; exit 2; }
done
# lighttpd spends two descriptors per held stream; larkbench one per stream.
ulimit -n "$(ulimit -Hn)"

data='' larkd_pid='' lighttpd_pid=''

# A port in [port_min, port_max] nobody listens on (bounded tries).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((port_min + RANDOM % (port_max - port_min + 1)))
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  echo "bench: no free port in $port_min-$port_max" >&2
  return 1
}

# Stop one process: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_instance() {
  stop_pid "$lighttpd_pid"
  stop_pid "$larkd_pid"
  lighttpd_pid='' larkd_pid=''
  if [ -n "$data" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $data"; else rm -rf "$data"; fi
  fi
  data=
}
trap 'stop_instance' EXIT
trap 'exit 130' INT TERM

# GET /v1/healthz answers 200 (bash's /dev/tcp: curl is not a dependency).
healthy() {
  # shellcheck disable=SC2016 # $0 expands in the inner shell
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" &&
    printf "GET /v1/healthz HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && head -c 12 <&3' "$PORT" \
    2>/dev/null | grep -q " 200"
}

# A fresh larkd + lighttpd, as tools/run.sh starts them.
start_instance() {
  data=$(mktemp -d "${TMPDIR:-/tmp}/larkbench.XXXXXX")
  PORT=$(free_port)
  export PORT LARK_DATA=$data LARK_SOCKET=$data/larkd.sock LARK_LISTEN=$data/larkd.sock
  export LARK_WS_SOCKET=$data/larkd-ws.sock LARK_WS_LISTEN=$data/larkd-ws.sock
  export LARK_WWW=$top/www LARK_LOGDIR=$data LARK_CONF=$top/conf
  export LARK_SEND_RATE=0
  # A secret of this run (larkbench reads the same variable) rather than the
  # development one, which larkd warns about.
  [ -n "${LARK_JWT_SECRET:-}" ] || export LARK_JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM-$$"
  "$build/larkd" --migrate 2>>"$data/larkd.log"
  "$build/larkd" 2>>"$data/larkd.log" &
  larkd_pid=$!
  for _ in $(seq 100); do [ -S "$LARK_SOCKET" ] && break; sleep 0.05; done
  [ -S "$LARK_SOCKET" ] || { echo "bench: larkd did not start:" >&2; tail "$data/larkd.log" >&2; return 1; }
  lighttpd -D -f conf/lighttpd.conf 2>>"$data/lighttpd.stderr" &
  lighttpd_pid=$!
  for _ in $(seq 100); do
    healthy && return 0
    sleep 0.05
  done
  echo "bench: lighttpd did not answer on port $PORT" >&2
  return 1
}

run_scenario() {
  local name=$1; shift
  start_instance
  echo "bench: $name on port $PORT (larkd $larkd_pid, lighttpd $lighttpd_pid, data $data)"
  "$larkbench" "$name" --port "$PORT" --larkd-pid "$larkd_pid" \
    --lighttpd-pid "$lighttpd_pid" --json "$results" "$@" ${extra[@]+"${extra[@]}"} |
    tee "$data/report.txt"
  # A larkd that logged a warning under load is worth knowing about.
  if grep -qE " (WARN|ERROR) " "$data/larkd.log"; then
    echo "bench: larkd logged warnings/errors ($(grep -cE ' (WARN|ERROR) ' "$data/larkd.log")); first:"
    grep -E " (WARN|ERROR) " "$data/larkd.log" | head -3
  fi
  grep -E "^  (target|throughput|per held|delivery|LOST|new request)" "$data/report.txt" |
    sed "s/^ /$name:/" >>"$summary" || true
  stop_instance
}

mkdir -p "$(dirname "$results")"
summary=$(mktemp)
trap 'stop_instance; rm -f "$summary"' EXIT
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $scenarios; do
  case $s in
    fanout)
      run_scenario fanout --subs "${FANOUT_SUBS:-1000}" --senders "${FANOUT_SENDERS:-50}" \
        --rate "${FANOUT_RATE:-1000}" --duration "${FANOUT_SECONDS:-20}" \
        --grace "${FANOUT_GRACE:-5}" ;;
    throughput)
      run_scenario throughput --senders "${THROUGHPUT_SENDERS:-64}" \
        --duration "${THROUGHPUT_SECONDS:-10}" ;;
    idle)
      run_scenario idle --subs "${IDLE_CONNS:-9000}" ;;
    push)
      # lark-push through the fake APNs and FCM (its own stacks; Node fakes)
      if ! command -v node >/dev/null; then
        echo "bench: push needs Node.js (tools/deps.sh test); skipped"
        continue
      fi
      LARK_BUILD=$build BENCH_RESULTS=$results BENCH_PUSH_N=${BENCH_PUSH_N:-5000} \
        node tools/bench_push.mjs | tee -a "$summary" ;;
    *) echo "bench: unknown scenario $s" >&2; exit 2 ;;
  esac
done
echo
echo "== summary (JSON lines appended to $results)"
cat "$summary"
