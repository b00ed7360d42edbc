#!/usr/bin/env bash
# tools/bench.sh - what `make bench` runs after building: each scenario of
# build/larkbench against a fresh lighttpd + larkd (a new temporary data
# directory and database, a free port), started the way tools/run.sh does,
# with LARK_SEND_RATE=0 so the per-user send limit does not cap the load.
# Prints each report, then a summary; the JSON lines are kept in
# $BENCH_RESULTS. docs/BENCHMARKS.md explains the figures.
#
# Scenarios (BENCH_SCENARIOS, run in the order given):
#   fanout throughput idle group   larkbench's scenarios, subscribers on SSE
#   ws<name>                       the same with WebSocket subscribers
#                                  (wsidle, wsfanout, wsgroup)
#   poll<name>                     the same with long-poll subscribers
#                                  (pollfanout, pollgroup, pollidle)
#   <name>2                        two larkd on one PostgreSQL, each behind its
#                                  own lighttpd: senders on the first,
#                                  subscribers on the second (fanout2, group2);
#                                  throughput2: half the senders on each
#
# Environment (defaults are the figures docs/BENCHMARKS.md targets):
#   BENCH_DB             sqlite | postgres. postgres: a throwaway cluster
#                        (initdb/pg_ctl as the postgres user, unix socket in
#                        a temp dir) with a fresh database per scenario,
#                        removed at the end
#   BENCH_PG_STANDBY     none | sync | async (postgres): a streaming standby
#                        of that cluster on the same machine (pg_basebackup
#                        -R over the unix socket), synchronous
#                        (synchronous_standby_names = '*': a commit waits
#                        for the standby's flush) or not; default none.
#                        tools/bench-standby.sh compares them
#   BENCH_SCENARIOS      "fanout throughput idle group wsidle push"
#                        (+ "fanout2" with BENCH_DB=postgres)
#   FANOUT_SUBS          1000    subscribers
#   FANOUT_SENDERS       50      sender connections (one user each)
#   FANOUT_RATE          1000    messages per second, in total
#   FANOUT_SECONDS       20      sending window
#   FANOUT_GRACE         5       seconds to wait for late deliveries
#   THROUGHPUT_SENDERS   64      concurrent senders
#   THROUGHPUT_SECONDS   10
#   IDLE_CONNS           9000    held SSE streams
#   BENCH_PUSH_N         5000    push: devices per provider (tools/bench_push.mjs)
#   WS_IDLE_CONNS        4000    held WebSocket sessions (wsidle)
#   GROUP_MEMBERS        10,100,300,500   group sizes, one after the other
#   GROUP_RATE           20      messages per second from the group's creator
#   GROUP_SECONDS        10      sending window per size
#   GROUP_GRACE          5
#   BENCH_PORT_MIN/MAX   18000/18999: free ports are picked in this range
#   BENCH_RESULTS        $BUILD/bench-results.jsonl (appended to)
#   BENCH_KEEP=1         keep the temporary data directories (logs, database)
#   BENCH_ARGS           extra larkbench options for every scenario
#   BUILD                build (the larkd and larkbench to use)
#   LARKBENCH            the load generator, default $BUILD/larkbench
#   LARK_*               passed to larkd (e.g. LARK_WORKERS, LARK_SQLITE_SYNC)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/benchlib.sh
. tools/benchlib.sh
top=$PWD
build=${BUILD:-build}

db_kind=${BENCH_DB:-sqlite}
case $db_kind in
  sqlite) default_scenarios="fanout throughput idle group wsidle push" ;;
  postgres) default_scenarios="fanout throughput idle group wsidle fanout2" ;;
  *) echo "bench: BENCH_DB must be sqlite or postgres" >&2; exit 2 ;;
esac
scenarios=${BENCH_SCENARIOS:-$default_scenarios}
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
# A secret of this run (larkbench reads the same variable) rather than the
# development one, which larkd warns about.
[ -n "${LARK_JWT_SECRET:-}" ] || export LARK_JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM-$$"

# Instances: index 0 (senders, and everything in one-process runs) and 1
# (the subscribers' side of a two-process run).
data=() port=() larkd_pid=() lighttpd_pid=()
pg_dir='' pg_port='' pg_pid='' pg_db='' bench_pid='' sb_port='' sb_pid=''
standby=${BENCH_PG_STANDBY:-none}
case $standby in none|sync|async) ;; *) echo "bench: BENCH_PG_STANDBY must be none, sync or async" >&2; exit 2 ;; esac

# ---- PostgreSQL: one throwaway cluster per bench run ----------------------

# initdb and pg_ctl refuse to run as root: run them as postgres.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local b
  b=$(command -v initdb 2>/dev/null || true)
  # through a symlink (e.g. /usr/local/bin/initdb) to the directory with
  # the other server tools (pg_basebackup)
  if [ -n "$b" ]; then dirname "$(readlink -f "$b")"; return; fi
  b=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1)
  [ -n "$b" ] || { echo "bench: PostgreSQL (initdb) is not installed" >&2; return 1; }
  echo "$b"
}

pg_psql() {
  timeout 30 psql -X -q -h "$pg_dir" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"
}

pg_start() {
  local bin
  bin=$(pg_bin)
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/larkbench-pg.XXXXXX")
  [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
  pg_port=$(free_port)
  as_pg "$bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
  # Unix socket only, in the temp dir; otherwise PostgreSQL's defaults
  # (fsync and synchronous_commit on: a 201 is durable, as with SQLite FULL).
  as_pg "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 30 \
    -o "-k $pg_dir -c listen_addresses= -p $pg_port" start >/dev/null ||
    { tail "$pg_dir/postgres.log" >&2; return 1; }
  pg_pid=$(head -1 "$pg_dir/data/postmaster.pid")
  echo "bench: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $pg_dir port $pg_port (pid $pg_pid)"
  [ "$standby" = none ] || pg_start_standby "$bin"
}

# A streaming standby of the cluster, on the same machine: cloned over the
# unix socket (initdb's pg_hba trusts local replication), its own port in
# the same socket directory, PostgreSQL's defaults like the primary.
pg_start_standby() {
  local bin=$1 state=''
  sb_port=$(free_port)
  as_pg "$bin/pg_basebackup" -D "$pg_dir/standby" -R -X stream -c fast -h "$pg_dir" -p "$pg_port" \
    -U postgres >"$pg_dir/basebackup.log" 2>&1 || { cat "$pg_dir/basebackup.log" >&2; return 1; }
  as_pg "$bin/pg_ctl" -D "$pg_dir/standby" -l "$pg_dir/standby.log" -w -t 30 \
    -o "-k $pg_dir -c listen_addresses= -p $sb_port" start >/dev/null ||
    { tail "$pg_dir/standby.log" >&2; return 1; }
  sb_pid=$(head -1 "$pg_dir/standby/postmaster.pid")
  if [ "$standby" = sync ]; then
    pg_psql "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
    pg_psql "SELECT pg_reload_conf()" >/dev/null
  fi
  for _ in $(seq 100); do
    state=$(timeout 5 psql -X -A -t -h "$pg_dir" -p "$pg_port" -U postgres -d postgres \
      -c "SELECT sync_state FROM pg_stat_replication" 2>/dev/null || true)
    [ "$state" = "$standby" ] && break
    sleep 0.1
  done
  [ "$state" = "$standby" ] || { echo "bench: the standby is '$state', not $standby" >&2; return 1; }
  echo "bench: standby on port $sb_port (pid $sb_pid), $standby"
}

pg_stop() {
  [ -n "$pg_dir" ] || return 0
  if [ -n "$sb_pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/standby" -m fast -w -t 20 stop >/dev/null 2>&1 ||
      kill -KILL "$sb_pid" 2>/dev/null || true
    sb_pid=''
  fi
  as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w -t 20 stop >/dev/null 2>&1 ||
    kill -KILL "$pg_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $pg_dir"; else rm -rf "$pg_dir"; fi
  pg_dir=''
}

# A fresh database for one scenario: LARK_DB points at it.
pg_new_db() {
  pg_db="bench_$(date +%s)_$RANDOM"
  pg_psql "CREATE DATABASE $pg_db" >/dev/null
  export LARK_DB="postgresql:///$pg_db?host=$pg_dir&port=$pg_port&user=postgres"
}

pg_drop_db() {
  [ -n "$pg_db" ] || return 0
  pg_psql "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true
  pg_db=''
}

# ---- lighttpd + larkd instances -------------------------------------------

stop_instances() {
  local i
  for i in 1 0; do
    stop_pid "${lighttpd_pid[$i]:-}"
    stop_pid "${larkd_pid[$i]:-}"
    if [ -n "${data[$i]:-}" ]; then
      if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept ${data[$i]}"; else rm -rf "${data[$i]}"; fi
    fi
  done
  data=() port=() larkd_pid=() lighttpd_pid=()
  pg_drop_db
}

cleanup() {
  stop_pid "$bench_pid"
  stop_instances
  pg_stop
  rm -f "${summary:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GET /v1/healthz on port $1 answers 200.
healthy() { http_head "$1" /v1/healthz | grep -q " 200"; }

# Instance $1: a fresh larkd + lighttpd, as tools/run.sh starts them, on the
# database in LARK_DB (default: SQLite in its own data directory).
start_instance() {
  local i=$1 d p env
  d=$(mktemp -d "${TMPDIR:-/tmp}/larkbench.XXXXXX")
  p=$(free_port)
  data[i]=$d port[i]=$p
  env=(PORT="$p" LARK_DATA="$d" LARK_SOCKET="$d/larkd.sock" LARK_LISTEN="$d/larkd.sock"
       LARK_WS_SOCKET="$d/larkd-ws.sock" LARK_WS_LISTEN="$d/larkd-ws.sock"
       LARK_WWW="$top/www" LARK_LOGDIR="$d" LARK_CONF="$top/conf" LARK_SEND_RATE=0
       LARK_MEDIA_DIR="$d/media")
  env "${env[@]}" "$build/larkd" --migrate 2>>"$d/larkd.log"
  env "${env[@]}" "$build/larkd" 2>>"$d/larkd.log" &
  larkd_pid[i]=$!
  for _ in $(seq 100); do [ -S "$d/larkd.sock" ] && break; sleep 0.05; done
  [ -S "$d/larkd.sock" ] || { echo "bench: larkd did not start:" >&2; tail "$d/larkd.log" >&2; return 1; }
  env "${env[@]}" lighttpd -D -f conf/lighttpd.conf 2>>"$d/lighttpd.stderr" &
  lighttpd_pid[i]=$!
  for _ in $(seq 100); do
    healthy "$p" && return 0
    sleep 0.05
  done
  echo "bench: lighttpd did not answer on port $p" >&2
  return 1
}

# run_scenario NAME LARKBENCH-ARGS...: NAME is a scenario of this script
# (ws and 2 variants included); the arguments go to larkbench.
run_scenario() {
  local name=$1 base=$1 procs=1 opts=() i
  shift
  case $base in ws*) base=${base#ws}; opts+=(--transport ws) ;; esac
  case $base in poll*) base=${base#poll}; opts+=(--transport poll) ;; esac
  case $base in *2) base=${base%2}; procs=2 ;; esac
  if [ "$procs" = 2 ] && [ "$db_kind" != postgres ]; then
    echo "bench: $name needs BENCH_DB=postgres (two larkd share one database)" >&2
    return 2
  fi
  [ "$db_kind" != postgres ] || pg_new_db
  for ((i = 0; i < procs; i++)); do start_instance "$i"; done
  opts+=(--port "${port[0]}" --larkd-pid "${larkd_pid[0]}" --lighttpd-pid "${lighttpd_pid[0]}")
  if [ "$procs" = 2 ]; then
    opts+=(--sub-port "${port[1]}" --sub-larkd-pid "${larkd_pid[1]}" --sub-lighttpd-pid "${lighttpd_pid[1]}")
  fi
  [ -n "$pg_pid" ] && opts+=(--db-pid "$pg_pid")
  echo "bench: $name ($db_kind) on port ${port[*]} (larkd ${larkd_pid[*]}, lighttpd ${lighttpd_pid[*]}, data ${data[*]})"
  # In the background: a trapped signal interrupts `wait` at once, where it
  # would wait for a foreground command to finish.
  PORT=${port[0]} "$larkbench" "$base" "${opts[@]}" --json "$results" "$@" ${extra[@]+"${extra[@]}"} \
    > >(tee "${data[0]}/report.txt") &
  bench_pid=$!
  wait "$bench_pid" || true
  bench_pid=''
  sleep 0.1 # tee's last lines
  # A larkd that logged a warning under load is worth knowing about.
  for ((i = 0; i < procs; i++)); do
    if grep -qE " (WARN|ERROR) " "${data[$i]}/larkd.log"; then
      echo "bench: larkd $i logged warnings/errors ($(grep -cE ' (WARN|ERROR) ' "${data[$i]}/larkd.log")); first:"
      grep -E " (WARN|ERROR) " "${data[$i]}/larkd.log" | head -3
    fi
  done
  {
    grep -E "^  (target|throughput|per held|delivery|LOST|new request)" "${data[0]}/report.txt" |
      sed "s/^ /$name:/" || true
    # the group table, as printed
    sed -n '/^== group fan-out/,/^{/p' "${data[0]}/report.txt" | grep -v '^{' || true
  } >>"$summary"
  stop_instances
}

machine() {
  local sq pgv
  sq=$(sqlite3 --version 2>/dev/null | awk '{print $1}' || true)
  pgv=$( ("$(pg_bin 2>/dev/null)/postgres" --version 2>/dev/null || true) | awk '{print $3}')
  echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bench: $(lighttpd -v 2>/dev/null | head -1 | cut -d' ' -f1), SQLite ${sq:-?}, PostgreSQL ${pgv:-?}," \
    "larkd from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- core fcgi 2>/dev/null || echo '+changes'); BENCH_DB=$db_kind" \
    "$([ "$db_kind" = postgres ] && echo "BENCH_PG_STANDBY=$standby")"
}

mkdir -p "$(dirname "$results")"
summary=$(mktemp)
machine
[ "$db_kind" = postgres ] && pg_start
for s in $scenarios; do
  b=${s#ws}
  case ${b#poll} in
    fanout|fanout2)
      run_scenario "$s" --subs "${FANOUT_SUBS:-1000}" --senders "${FANOUT_SENDERS:-50}" \
        --rate "${FANOUT_RATE:-1000}" --duration "${FANOUT_SECONDS:-20}" \
        --grace "${FANOUT_GRACE:-5}" ;;
    throughput|throughput2)
      run_scenario "$s" --senders "${THROUGHPUT_SENDERS:-64}" \
        --duration "${THROUGHPUT_SECONDS:-10}" ;;
    idle)
      if [ "$s" = wsidle ]; then run_scenario "$s" --subs "${WS_IDLE_CONNS:-4000}"
      else run_scenario "$s" --subs "${IDLE_CONNS:-9000}"; fi ;;
    group|group2)
      run_scenario "$s" --members "${GROUP_MEMBERS:-10,100,300,500}" --rate "${GROUP_RATE:-20}" \
        --duration "${GROUP_SECONDS:-10}" --grace "${GROUP_GRACE:-5}" ;;
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
