# shellcheck shell=bash disable=SC2154 # port_min, port_max: the caller's
# tools/benchlib.sh - shell helpers of the bench scripts (bench.sh, bench-peers.sh,
# bench-cgi.sh, mediabench.sh)
# (sourced, not run). The caller sets port_min and port_max, and pg_dir when
# it runs a PostgreSQL cluster whose socket files take ports too.

# A port in [port_min, port_max] nobody listens on (bounded tries).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((port_min + RANDOM % (port_max - port_min + 1)))
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q . &&
       [ ! -e "${pg_dir:-/nonexistent}/.s.PGSQL.$p" ]; then echo "$p"; return 0; fi
  done
  echo "$(basename "$0"): no free port in $port_min-$port_max" >&2
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

# The first 12 bytes of the answer to GET $2 on port $1, within a second
# (bash's /dev/tcp: curl is not a dependency).
http_head() {
  # shellcheck disable=SC2016 # $0, $1 expand in the inner shell
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" &&
    printf "GET $1 HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && head -c 12 <&3' "$1" "$2" 2>/dev/null
}
