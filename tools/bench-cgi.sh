#!/usr/bin/env bash
# tools/bench-cgi.sh - what `make bench-cgi` runs: larkd as a plain CGI
# program (lighttpd's mod_cgi, conf/lighttpd-cgi.conf, as `make run-cgi`)
# beside its peer, larkd as a FastCGI daemon (conf/lighttpd.conf, as
# `make run`), both on SQLite, in the same run (docs/BENCHMARKS.md "CGI
# mode"). Bounded: a few minutes with the defaults.
#
#   1. long-poll delivery: larkbench fanout --transport poll (SUBS held
#      polls, RATE msg/s in total for SECONDS s), CGI and FastCGI taking
#      turns, ROUNDS rounds each; delivery latency p50/p99 (POST written ->
#      event read) per round, their medians, and CGI / FastCGI ratios.
#   2. memory: HOLD long-polls (timeout 60 s) held on each; under CGI
#      the RSS and PSS of every waiting larkd process (/proc/PID/smaps_rollup;
#      PSS shares the pages they have in common), under FastCGI larkd's
#      VmRSS growth divided by HOLD. Then the clients hang up, and the time
#      until the last CGI process has exited is reported.
#
# Environment: CGI_BENCH_ROUNDS (3; 0: the memory part only), CGI_BENCH_SUBS (100), CGI_BENCH_RATE
# (20), CGI_BENCH_SECONDS (20), CGI_BENCH_HOLD (100), BUILD (build),
# BENCH_RESULTS ($BUILD/bench-cgi.jsonl, larkbench's JSON lines appended),
# BENCH_KEEP=1 keeps the data directories.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/benchlib.sh
. tools/benchlib.sh
top=$PWD
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
# shellcheck disable=SC2034 # benchlib.sh's free_port reads them
port_min=${BENCH_PORT_MIN:-18000} port_max=${BENCH_PORT_MAX:-18999}
rounds=${CGI_BENCH_ROUNDS:-3} subs=${CGI_BENCH_SUBS:-100} rate=${CGI_BENCH_RATE:-20}
secs=${CGI_BENCH_SECONDS:-20} hold=${CGI_BENCH_HOLD:-100}
results=${BENCH_RESULTS:-$build/bench-cgi.jsonl}
export LARK_JWT_SECRET=${LARK_JWT_SECRET:-bench-cgi-$RANDOM-$RANDOM-$$}
for bin in "$build/larkd" "$build/larkbench" "$build/lark-token"; do
  [ -x "$bin" ] || { echo "bench-cgi: $bin missing (make)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"

dirs=() pids=() curls=()
cleanup() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do stop_pid "$p"; done
  [ "${BENCH_KEEP:-0}" = 1 ] || for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start MODE (fcgi|cgi): a fresh lighttpd (+ larkd daemon for fcgi) on
# SQLite; sets port, web_pid, daemon_pid (fcgi) and dir.
start() {
  local mode=$1
  dir=$(mktemp -d /tmp/lark-bench-cgi-XXXXXX)
  dirs+=("$dir")
  port=$(free_port)
  local env=(PORT="$port" LARK_DATA="$dir" LARK_SOCKET="$dir/larkd.sock" LARK_LISTEN="$dir/larkd.sock"
             LARK_WS_SOCKET="$dir/larkd-ws.sock" LARK_WS_LISTEN="$dir/larkd-ws.sock"
             LARK_WWW="$top/www" LARK_LOGDIR="$dir" LARK_CONF="$top/conf" LARK_CGI="$build/larkd"
             LARK_MEDIA_DIR="$dir/media" LARK_SEND_RATE=0 LARK_MAX_HELD_PER_USER=0)
  mkdir -p "$dir/media"
  env "${env[@]}" "$build/larkd" --migrate 2>>"$dir/larkd.log"
  daemon_pid=
  if [ "$mode" = fcgi ]; then
    env "${env[@]}" "$build/larkd" 2>>"$dir/larkd.log" &
    daemon_pid=$!
    pids+=("$daemon_pid")
    for _ in $(seq 100); do [ -S "$dir/larkd.sock" ] && break; sleep 0.05; done
    env "${env[@]}" lighttpd -D -f conf/lighttpd.conf 2>>"$dir/lighttpd.stderr" &
  else
    env "${env[@]}" lighttpd -D -f conf/lighttpd-cgi.conf 2>>"$dir/lighttpd.stderr" &
  fi
  web_pid=$!
  pids+=("$web_pid")
  for _ in $(seq 100); do [ "$(http_head "$port" /v1/healthz)" = "HTTP/1.0 200" ] && return 0; sleep 0.05; done
  echo "bench-cgi: $mode server did not answer on $port" >&2
  exit 1
}

stop() {
  stop_pid "$web_pid"
  [ -n "$daemon_pid" ] && stop_pid "$daemon_pid"
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# The larkd CGI processes of the current data directory: started by the
# web server as the file itself, no arguments (pgrep, one process for the
# whole listing: a thousand of them are listed many times), and with this
# LARK_DATA in their environment.
cgi_pids() {
  local p
  for p in $(pgrep -f "^$build/larkd\$"); do
    grep -qzx "LARK_DATA=$dir" "/proc/$p/environ" 2>/dev/null && echo "$p"
  done
  return 0
}

# median of the numbers on stdin
median() { grep . | sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "-"}'; }

# ---- 1. delivery latency -------------------------------------------------
echo "bench-cgi: $rounds rounds of $subs held long-polls, $rate msg/s for $secs s, CGI and FastCGI in turn"
declare -A p50 p99 q50 q99
for r in $(seq "$rounds"); do
  for mode in cgi fcgi; do
    start "$mode"
    measured=${daemon_pid:-$web_pid}
    out=$("$build/larkbench" fanout --transport poll --port "$port" --subs "$subs" --senders 10 \
          --rate "$rate" --duration "$secs" --warmup 0 --prefix "b$r$mode" --larkd-pid "$measured" \
          --lighttpd-pid "$web_pid" --round "cgi-bench-$mode-$r" --json "$results" 2>&1 | tail -n 1)
    stop
    l50=$(sed -n 's/.*"delivery_latency":{[^}]*"p50_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    l99=$(sed -n 's/.*"delivery_latency":{[^}]*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    w50=$(sed -n 's/.*"event_after_answer":{[^}]*"p50_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    w99=$(sed -n 's/.*"event_after_answer":{[^}]*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    lost=$(sed -n 's/.*"lost":\([0-9]*\).*/\1/p' <<<"$out")
    echo "round $r $mode: delivery p50 ${l50:-?} ms, p99 ${l99:-?} ms; wake p50 ${w50:-?} ms, p99 ${w99:-?} ms; lost ${lost:-?}"
    p50[$mode]+="${l50:-} " p99[$mode]+="${l99:-} " q50[$mode]+="${w50:-} " q99[$mode]+="${w99:-} "
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.1fx", a/b; else print "-"}'; }
for what in p50 p99 q50 q99; do
  [ "$rounds" -gt 0 ] || break # CGI_BENCH_ROUNDS=0: the memory part only
  declare -n arr=$what
  c=$(tr ' ' '\n' <<<"${arr[cgi]}" | median); f=$(tr ' ' '\n' <<<"${arr[fcgi]}" | median)
  echo "median over $rounds rounds, $what: CGI $c ms, FastCGI $f ms, CGI/FastCGI $(ratio "$c" "$f")"
  unset -n arr
done

# ---- 2. memory per held long-poll ----------------------------------------
hold_polls() {
  local i tok
  curls=()
  for i in $(seq "$hold"); do
    tok=$("$build/lark-token" "hold-$i")
    # a client holding one long-poll (bash's /dev/tcp, as http_head)
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 70 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" &&
      printf "GET /v1/poll?since=0&timeout=60 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" "$1" >&3 &&
      cat <&3 >/dev/null' "$port" "$tok" 2>/dev/null &
    curls+=($!)
  done
}
release_polls() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${curls[@]}" 2>/dev/null || true
  curls=()
}

start cgi
hold_polls
for _ in $(seq 300); do [ "$(cgi_pids | wc -l)" -ge "$hold" ] && break; sleep 0.1; done
sleep 2
mapfile -t held < <(cgi_pids)
rss=() pss=()
for p in "${held[@]}"; do
  # (a process may have ended meanwhile: nothing to count)
  rss+=("$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)")
  pss+=("$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)")
done
rss_med=$(printf '%s\n' "${rss[@]}" | median)
pss_med=$(printf '%s\n' "${pss[@]}" | median)
pss_sum=$(printf '%s\n' "${pss[@]}" | awk '{s+=$1} END {print s}')
healthz=$(http_head "$port" /v1/healthz || true) # no answer within 1 s: empty
t0=$(date +%s%N)
release_polls
for _ in $(seq 600); do [ "$(cgi_pids | wc -l)" -eq 0 ] && break; sleep 0.05; done
left=$(cgi_pids | wc -l)
freed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
stop
echo "CGI: ${#held[@]} waiting larkd processes: RSS median $rss_med KiB, PSS median $pss_med KiB," \
     "PSS total $((pss_sum / 1024)) MiB; /v1/healthz while held: ${healthz:-no answer};" \
     "all exited ${freed_ms} ms after the clients hung up ($left left)"

start fcgi
before=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")
hold_polls
sleep 3
after=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")
release_polls
stop
echo "FastCGI: larkd VmRSS $before -> $after KiB with $hold held polls:" \
     "$(awk -v a="$after" -v b="$before" -v n="$hold" 'BEGIN{printf "%.1f", (a-b)/n}') KiB per held poll;" \
     "CGI PSS per held poll / FastCGI: $(awk -v p="$pss_med" -v a="$after" -v b="$before" -v n="$hold" \
        'BEGIN{d=(a-b)/n; if (d > 0) printf "%.0fx", p/d; else print "-"}')"
