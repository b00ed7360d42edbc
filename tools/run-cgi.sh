#!/usr/bin/env bash
# tools/run-cgi.sh - what `make run-cgi` starts: lighttpd in the foreground
# on http://127.0.0.1:$PORT with larkd as a plain CGI program (lighttpd's
# mod_cgi, conf/lighttpd-cgi.conf): no larkd daemon, a larkd process per
# request under /v1/, held ones (long-poll, SSE) waiting in their process
# (docs/OPERATIONS.md "CGI mode"). The same API and www/ as `make run`.
#
# Environment, as tools/run.sh: PORT (8080), LARK_DATA (./var),
# LARK_JWT_SECRET (the development secret when unset), LARK_DB and every
# other LARK_* key of docs/OPERATIONS.md, handed to each larkd process by
# lighttpd (conf/lighttpd-cgi-env.sh).
#
# Exits non-zero, saying why, when it cannot serve (the port is taken,
# the migrations fail, lighttpd stops on its own). Ctrl-C stops it, 0.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

export PORT=${PORT:-8080}
export LARK_DATA=${LARK_DATA:-$top/var}
mkdir -p "$LARK_DATA"
LARK_DATA=$(cd "$LARK_DATA" && pwd)
build=${BUILD:-build}
case $build in /*) export LARK_CGI=$build/larkd ;; *) export LARK_CGI=$top/$build/larkd ;; esac
export LARK_WWW=${LARK_WWW:-$top/www}
# larkd's media directory and lighttpd's x-sendfile-docroot (as run.sh)
mkdir -p "${LARK_MEDIA_DIR:-$LARK_DATA/media}"
export LARK_MEDIA_DIR
LARK_MEDIA_DIR=$(cd "${LARK_MEDIA_DIR:-$LARK_DATA/media}" && pwd -P)
export LARK_LOGDIR=$LARK_DATA
export LARK_CONF=$top/conf

if [ -z "${LARK_JWT_SECRET:-}" ] && [ -z "${LARK_JWT_ALG:-}" ] && [ -z "${LARK_CONFIG:-}" ]; then
  export LARK_DEV_TOKENS=${LARK_DEV_TOKENS:-1}
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run-cgi: port $PORT is in use; stop what listens there or choose another: PORT=8081 make run-cgi" >&2
  exit 1
fi

# Once, here, rather than in the first request's process.
"$build/larkd" --migrate

lighttpd_pid=
stop() {
  trap '' INT TERM
  trap - EXIT
  # lighttpd does not wait for its CGI processes: note them first, and wait
  # for them too (bounded), so that nothing of lark still runs in LARK_DATA
  # once this says it stopped.
  local cgis=()
  if [ -n "$lighttpd_pid" ]; then
    mapfile -t cgis < <(pgrep -P "$lighttpd_pid" || true)
    kill -TERM "$lighttpd_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  for pid in "${cgis[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  echo "lark (CGI) stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

lighttpd -D -f conf/lighttpd-cgi.conf &
lighttpd_pid=$!
for _ in $(seq 100); do
  kill -0 "$lighttpd_pid" 2>/dev/null || break
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
if ! kill -0 "$lighttpd_pid" 2>/dev/null; then
  echo "run-cgi: lighttpd did not start on port $PORT:" >&2
  tail -n 5 "$LARK_LOGDIR/lighttpd.error.log" >&2 2>/dev/null || true
  exit 1
fi

echo "lark (CGI mode: lighttpd mod_cgi, a larkd per request) is serving http://127.0.0.1:$PORT (data in $LARK_DATA). Ctrl-C stops it."
if [ "${LARK_DEV_TOKENS:-0}" = 1 ]; then
  echo "Development JWT secret and development tokens: open http://127.0.0.1:$PORT/ and log in as any name."
elif [ -z "${LARK_JWT_SECRET:-}" ]; then
  echo "Using the development JWT secret. Try: TOKEN=\$($build/lark-token alice)"
fi
while kill -0 "$lighttpd_pid" 2>/dev/null; do
  sleep 0.5
done
echo "run-cgi: lighttpd stopped on its own (see $LARK_LOGDIR/lighttpd.error.log)" >&2
exit 1
