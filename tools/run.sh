#!/usr/bin/env bash
# tools/run.sh - what `make run` starts: larkd and lighttpd in the
# foreground on http://127.0.0.1:$PORT, stopped together by Ctrl-C/SIGTERM,
# and lark-push (the push daemon) beside them when a push provider is
# configured: LARK_FCM_CREDENTIALS or LARK_APNS_KEY in the environment, or
# fcm_credentials / apns_key in the LARK_CONFIG file.
#
# Environment: PORT (8080), LARK_DATA (./var), LARK_JWT_SECRET (the
# development secret when unset), LARK_DB and every other LARK_* key of
# docs/OPERATIONS.md, passed through to larkd.
#
# Development tokens (POST /v1/dev/token, which the demo page at / logs in
# with) are turned on only while the development secret is in use: with a
# secret of your own they stay off (larkd would refuse them anyway).
# LARK_DEV_TOKENS=0 keeps them off with the development secret too.
#
# Exits non-zero, saying why, when it cannot serve: the port is taken,
# another larkd runs on the same data directory (larkd's lock), or larkd or
# lighttpd stops on its own. Ctrl-C stops everything and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

export PORT=${PORT:-8080}
export LARK_DATA=${LARK_DATA:-$top/var}
mkdir -p "$LARK_DATA"
LARK_DATA=$(cd "$LARK_DATA" && pwd)
export LARK_SOCKET=${LARK_LISTEN:-$LARK_DATA/larkd.sock}
export LARK_LISTEN=$LARK_SOCKET
export LARK_WS_SOCKET=${LARK_WS_LISTEN:-$LARK_DATA/larkd-ws.sock}
export LARK_WS_LISTEN=$LARK_WS_SOCKET
export LARK_WWW=${LARK_WWW:-$top/www}
# larkd's media directory, and lighttpd's x-sendfile-docroot: the same
# path, resolved (larkd hands lighttpd resolved paths)
mkdir -p "${LARK_MEDIA_DIR:-$LARK_DATA/media}"
export LARK_MEDIA_DIR
LARK_MEDIA_DIR=$(cd "${LARK_MEDIA_DIR:-$LARK_DATA/media}" && pwd -P)
export LARK_LOGDIR=$LARK_DATA
export LARK_CONF=$top/conf

if [ -z "${LARK_JWT_SECRET:-}" ] && [ -z "${LARK_JWT_ALG:-}" ] && [ -z "${LARK_CONFIG:-}" ]; then
  export LARK_DEV_TOKENS=${LARK_DEV_TOKENS:-1}
fi

build=${BUILD:-build}

# Something already answers on the port (another lark, any server): say so
# now rather than after lighttpd failed to bind.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run: port $PORT is in use; stop what listens there or choose another: PORT=8081 make run" >&2
  exit 1
fi

"$build/larkd" --migrate

larkd_pid= lighttpd_pid= push_pid=
stop() {
  # ignore (not default) from here: a second Ctrl-C must not cut the
  # cleanup short, nor make the shell exit 130 once it is done
  trap '' INT TERM
  trap - EXIT
  [ -n "$push_pid" ] && kill -TERM "$push_pid" 2>/dev/null || true
  [ -n "$lighttpd_pid" ] && kill -TERM "$lighttpd_pid" 2>/dev/null || true
  [ -n "$larkd_pid" ] && kill -TERM "$larkd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "lark stopped."
}
# Ctrl-C or SIGTERM, at any point: stop what runs and end cleanly (0). Any
# other end (an `exit 1` above or below) stops it too and keeps its status.
trap 'stop; exit 0' INT TERM
trap stop EXIT

"$build/larkd" &
larkd_pid=$!
# lighttpd must find this larkd's socket, not one a previous run left: wait
# (bounded) until larkd holds its lock (it writes its pid there first) and
# the socket exists, or larkd exits (another one holds the lock: larkd said
# so on stderr).
for _ in $(seq 200); do
  kill -0 "$larkd_pid" 2>/dev/null || break
  [ "$(cat "$LARK_SOCKET.lock" 2>/dev/null)" = "$larkd_pid" ] && [ -S "$LARK_SOCKET" ] && break
  sleep 0.05
done
if ! kill -0 "$larkd_pid" 2>/dev/null || [ "$(cat "$LARK_SOCKET.lock" 2>/dev/null)" != "$larkd_pid" ]; then
  echo "run: larkd did not start (see its message above)" >&2
  exit 1
fi
lighttpd -D -f conf/lighttpd.conf &
lighttpd_pid=$!
# lighttpd logs to its error log; it exits at once if it cannot bind.
for _ in $(seq 100); do
  kill -0 "$lighttpd_pid" 2>/dev/null || break
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
if ! kill -0 "$lighttpd_pid" 2>/dev/null; then
  echo "run: lighttpd did not start on port $PORT:" >&2
  tail -n 5 "$LARK_LOGDIR/lighttpd.error.log" >&2 2>/dev/null || true
  exit 1
fi

# Push: only when a provider is configured (lark-push refuses to run without).
push_configured() {
  [ -n "${LARK_FCM_CREDENTIALS:-}${LARK_APNS_KEY:-}" ] && return 0
  [ -n "${LARK_CONFIG:-}" ] && [ -f "$LARK_CONFIG" ] &&
    grep -qE '^[[:space:]]*(fcm_credentials|apns_key)[[:space:]]*=[[:space:]]*[^[:space:]#]' "$LARK_CONFIG"
}
if push_configured; then
  "$build/lark-push" &
  push_pid=$!
  echo "lark-push is sending notifications (FCM: ${LARK_FCM_CREDENTIALS:-see config}, APNs: ${LARK_APNS_KEY:-see config})."
else
  echo "Push notifications are off (set LARK_FCM_CREDENTIALS and/or LARK_APNS_KEY to start lark-push)."
fi

echo "lark is serving http://127.0.0.1:$PORT (data in $LARK_DATA). Ctrl-C stops it."
if [ "${LARK_DEV_TOKENS:-0}" = 1 ]; then
  echo "Development JWT secret and development tokens: open http://127.0.0.1:$PORT/ and log in as any name."
elif [ -z "${LARK_JWT_SECRET:-}" ]; then
  echo "Using the development JWT secret. Try: TOKEN=\$($build/lark-token alice)"
fi
# Whichever of larkd and lighttpd stops first stops everything; lark-push
# stopping (it logs why) leaves chat running without notifications. Only
# Ctrl-C (or SIGTERM, through the trap) is a clean end. (A loop rather than
# `wait -n`, which misses a process that ended before it was called.)
while kill -0 "$larkd_pid" 2>/dev/null && kill -0 "$lighttpd_pid" 2>/dev/null; do
  sleep 0.5
done
echo "run: larkd or lighttpd stopped on its own (see above and $LARK_LOGDIR/lighttpd.error.log)" >&2
exit 1
