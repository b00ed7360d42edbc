#!/usr/bin/env bash
# tools/bench-peers.sh - what `make bench-peers` runs after building: lark
# side by side with Nchan, the pub/sub server users would pick instead
# (docs/BENCHMARKS.md, "Side by side with Nchan"; issue 10).
#
# For each round, transport and rate, build/larkbench's fanout (1,000
# one-to-one subscribers, 50 senders, open-loop rate) runs against a fresh
# Nchan and against a fresh lark, one after the other (which goes first
# alternates between rounds), so that each lark/Nchan ratio is taken
# minutes apart at most on a machine others share:
#   Nchan  Debian's nginx-light + libnginx-mod-nchan (installed when
#          missing), configured by tools/nchan.conf (messages in memory,
#          2 workers, a channel per user), in the foreground on a free port
#   lark   lighttpd + larkd started as tools/bench.sh starts them: SQLite
#          with larkd's defaults (sqlite_sync = FULL: every message
#          fsync'd before its 201), LARK_SEND_RATE=0, a fresh data
#          directory
# Each measurement's report goes to $PEERS_LOG, its JSON line (with
# "round": "<run>/<n>") to $BENCH_RESULTS; at the end `larkbench compare`
# prints, per transport and rate, Nchan's and lark's p50 / p99 (medians
# over rounds), achieved rate, send lag, lost, duplicated and the
# lark/Nchan ratios of p50 and p99, and appends one "peers" JSON line per
# row to $BENCH_RESULTS.
#
# Environment:
#   PEERS_ROUNDS        3           rounds (each: every transport and rate, both servers)
#   PEERS_SECONDS       20          sending window of each measurement
#   PEERS_RATES         "1000 3000" messages per second, in total
#   PEERS_TRANSPORTS    "sse poll ws"
#   PEERS_SUBS          1000        subscribers (one user and channel each)
#   PEERS_SENDERS       50          sender connections
#   PEERS_GRACE         5           seconds to wait for late deliveries
#   PEERS_FSYNC_SECONDS 5           seconds of tools/fsyncbench per rate and round
#   PEERS_LOG           $BUILD/bench-peers.log (reports, appended to)
#   BENCH_RESULTS       $BUILD/bench-results.jsonl (appended to)
#   BENCH_PORT_MIN/MAX  18000/18999: free ports are picked in this range
#   BENCH_ARGS          extra larkbench options for every measurement
#   BUILD, LARKBENCH    as tools/bench.sh
#   LARK_*              passed to larkd
# Everything started is stopped, and every temporary directory removed, at
# exit (also on Ctrl-C); every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/benchlib.sh
. tools/benchlib.sh
top=$PWD
build=${BUILD:-build}
rounds=${PEERS_ROUNDS:-3}
seconds=${PEERS_SECONDS:-20}
fsync_seconds=${PEERS_FSYNC_SECONDS:-5}
read -r -a rates <<<"${PEERS_RATES:-1000 3000}"
read -r -a transports <<<"${PEERS_TRANSPORTS:-sse poll ws}"
subs=${PEERS_SUBS:-1000}
senders=${PEERS_SENDERS:-50}
grace=${PEERS_GRACE:-5}
results=${BENCH_RESULTS:-$build/bench-results.jsonl}
log=${PEERS_LOG:-$build/bench-peers.log}
port_min=${BENCH_PORT_MIN:-18000}
port_max=${BENCH_PORT_MAX:-18999}
read -r -a extra <<<"${BENCH_ARGS:-}"
larkbench=${LARKBENCH:-$build/larkbench}

for bin in "$build/larkd" "$larkbench"; do
  [ -x "$bin" ] || { echo "bench-peers: $bin is missing; run make all" >&2; exit 2; }
done
for t in "${transports[@]}"; do
  case $t in sse|poll|ws) ;; *) echo "bench-peers: unknown transport $t" >&2; exit 2 ;; esac
done

# ---- Nchan: Debian's packages --------------------------------------------

nchan_module() {
  dpkg -L libnginx-mod-nchan 2>/dev/null | grep -m1 '/ngx_nchan_module\.so$' || true
}

if ! command -v nginx >/dev/null || [ -z "$(nchan_module)" ]; then
  # An nginx already there (nginx-core, nginx-full...) only needs the module:
  # Debian's nginx flavours replace one another.
  pkgs=(libnginx-mod-nchan)
  command -v nginx >/dev/null || pkgs=(nginx-light "${pkgs[@]}")
  echo "bench-peers: installing ${pkgs[*]}"
  sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # Another engineer's apt may hold the lock: wait for it, bounded.
  $sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${pkgs[@]}"
  # Debian starts its nginx on port 80; the bench runs its own.
  if command -v service >/dev/null; then $sudo service nginx stop >/dev/null 2>&1 || true; fi
fi
module=$(nchan_module)
[ -n "$module" ] || { echo "bench-peers: ngx_nchan_module.so not found" >&2; exit 2; }

ulimit -n "$(ulimit -Hn)"
[ -n "${LARK_JWT_SECRET:-}" ] || export LARK_JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM-$$"

# The server of the measurement under way.
dir='' srv_port='' pids=() bench_pid=''

# Stop what the measurement started (lighttpd before larkd; nginx's
# workers are stopped by their master, or killed if they outlive it).
stop_server() {
  local pid workers=()
  for pid in "${pids[@]}"; do
    read -r -a workers <<<"$(pgrep -P "$pid" -x nginx 2>/dev/null | tr '\n' ' ' || true)"
    stop_pid "$pid"
    for w in "${workers[@]}"; do kill -KILL "$w" 2>/dev/null || true; done
  done
  pids=()
  if [ -n "$dir" ]; then rm -rf "$dir"; dir=''; fi
}

cleanup() {
  stop_pid "$bench_pid"
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Any HTTP answer to GET $2 on port $1 within a second.
answers() { http_head "$1" "$2" | grep -q "^HTTP/1"; }

wait_answers() {
  for _ in $(seq 100); do
    answers "$1" "$2" && return 0
    sleep 0.05
  done
  return 1
}

start_nchan() {
  dir=$(mktemp -d "${TMPDIR:-/tmp}/larkbench-nchan.XXXXXX")
  chmod 755 "$dir" # nginx's workers (www-data) use its temp paths
  srv_port=$(free_port)
  sed -e "s|@PORT@|$srv_port|g" -e "s|@DIR@|$dir|g" -e "s|@MODULE@|$module|g" \
    tools/nchan.conf >"$dir/nginx.conf"
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>>"$dir/nginx.stderr" &
  pids=($!)
  wait_answers "$srv_port" /pub/none || { echo "bench-peers: nginx did not start:" >&2; tail "$dir/error.log" "$dir/nginx.stderr" >&2; return 1; }
}

# As tools/bench.sh's start_instance: the same environment and order.
start_lark() {
  local env larkd
  dir=$(mktemp -d "${TMPDIR:-/tmp}/larkbench.XXXXXX")
  srv_port=$(free_port)
  env=(PORT="$srv_port" LARK_DATA="$dir" LARK_SOCKET="$dir/larkd.sock" LARK_LISTEN="$dir/larkd.sock"
       LARK_WS_SOCKET="$dir/larkd-ws.sock" LARK_WS_LISTEN="$dir/larkd-ws.sock"
       LARK_WWW="$top/www" LARK_LOGDIR="$dir" LARK_CONF="$top/conf" LARK_SEND_RATE=0
       LARK_MEDIA_DIR="$dir/media")
  env "${env[@]}" "$build/larkd" --migrate 2>>"$dir/larkd.log"
  env "${env[@]}" "$build/larkd" 2>>"$dir/larkd.log" &
  larkd=$!
  for _ in $(seq 100); do [ -S "$dir/larkd.sock" ] && break; sleep 0.05; done
  [ -S "$dir/larkd.sock" ] || { echo "bench-peers: larkd did not start:" >&2; tail "$dir/larkd.log" >&2; stop_pid "$larkd"; return 1; }
  env "${env[@]}" lighttpd -D -f conf/lighttpd.conf 2>>"$dir/lighttpd.stderr" &
  pids=($! "$larkd")
  wait_answers "$srv_port" /v1/healthz || { echo "bench-peers: lighttpd did not answer on $srv_port" >&2; return 1; }
}

# measure TARGET TRANSPORT RATE ROUND: one fanout, its report to the log.
measure() {
  local target=$1 tr=$2 rate=$3 round=$4 opts out
  "start_$target"
  opts=(--target "$target" --transport "$tr" --port "$srv_port" --subs "$subs"
        --senders "$senders" --rate "$rate" --duration "$seconds" --grace "$grace"
        --prefix "r$round" --round "$run/$round" --json "$results")
  if [ "$target" = nchan ]; then opts+=(--nginx-pid "${pids[0]}")
  else opts+=(--lighttpd-pid "${pids[0]}" --larkd-pid "${pids[1]}"); fi
  out="$dir/report.txt"
  # In the background: a trapped signal interrupts `wait` at once.
  "$larkbench" fanout "${opts[@]}" ${extra[@]+"${extra[@]}"} >"$out" 2>&1 &
  bench_pid=$!
  wait "$bench_pid" || true
  bench_pid=''
  cat "$out" >>"$log"
  printf 'bench-peers: round %s %-5s %-4s %5s msg/s: %s\n' "$round" "$target" "$tr" "$rate" \
    "$(grep -E '^  delivery \(POST->event\)' "$out" | sed -E 's/^  delivery \(POST->event\) +//')"
  grep -E '^  LOST|^  POST|^  send lag|^  event after' "$out" | sed 's/^ */             /' || true
  # A server that logged trouble under load is worth knowing about.
  if [ "$target" = lark ] && grep -qE " (WARN|ERROR) " "$dir/larkd.log"; then
    echo "             larkd logged $(grep -cE ' (WARN|ERROR) ' "$dir/larkd.log") warnings/errors; first: $(grep -m1 -E ' (WARN|ERROR) ' "$dir/larkd.log")"
  fi
  if [ "$target" = nchan ] && grep -qE "\[(error|crit|alert|emerg)\]" "$dir/error.log"; then
    echo "             nginx logged $(grep -cE '\[(error|crit|alert|emerg)\]' "$dir/error.log") errors; first: $(grep -m1 -E '\[(error|crit|alert|emerg)\]' "$dir/error.log")"
  fi
  stop_server
}

run="peers-$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$(dirname "$results")" "$(dirname "$log")"
echo "bench-peers: run $run: $rounds rounds x (${transports[*]}) x (${rates[*]} msg/s) x (nchan, lark), $subs subscribers, $senders senders, ${seconds} s each"
echo "bench-peers: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-peers: $(nginx -v 2>&1), Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan), $(lighttpd -v 2>/dev/null | head -1 | cut -d' ' -f1), SQLite $(sqlite3 --version 2>/dev/null | awk '{print $1}'), larkd from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- core fcgi 2>/dev/null || echo '+changes')"
echo "bench-peers: reports in $log, JSON lines in $results"
echo "== $run" >>"$log"
for ((round = 1; round <= rounds; round++)); do
  # The floor a durable message stands on, now, on the disk lark writes to:
  # lark can come within one fsync of Nchan, not below (tools/fsyncbench.c).
  for rate in "${rates[@]}"; do
    printf 'bench-peers: round %s ' "$round"
    "$build/fsyncbench" --rate "$rate" --seconds "$fsync_seconds" --dir "${TMPDIR:-/tmp}" \
      --round "$run/$round" --json "$results" || echo "fsyncbench failed"
  done
  for tr in "${transports[@]}"; do
    for rate in "${rates[@]}"; do
      if ((round % 2)); then order=(nchan lark); else order=(lark nchan); fi
      for target in "${order[@]}"; do measure "$target" "$tr" "$rate" "$round"; done
    done
  done
done
echo
echo "== lark / Nchan, $rounds rounds of ${seconds} s, $subs one-to-one subscribers (delivery latency in ms: POST written -> event read; medians over rounds)"
"$larkbench" compare "$results" --round-prefix "$run/" --json "$results"
