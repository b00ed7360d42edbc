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
"$build/larkd" --migrate

larkd_pid= lighttpd_pid= push_pid=
stop() {
  trap - INT TERM EXIT
  [ -n "$push_pid" ] && kill -TERM "$push_pid" 2>/dev/null || true
  [ -n "$lighttpd_pid" ] && kill -TERM "$lighttpd_pid" 2>/dev/null || true
  [ -n "$larkd_pid" ] && kill -TERM "$larkd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "lark stopped."
}
trap stop INT TERM EXIT

"$build/larkd" &
larkd_pid=$!
# lighttpd must find larkd's socket; wait for it (bounded).
for _ in $(seq 100); do [ -S "$LARK_SOCKET" ] && break; sleep 0.05; done
[ -S "$LARK_SOCKET" ] || { echo "larkd did not start" >&2; exit 1; }
lighttpd -D -f conf/lighttpd.conf &
lighttpd_pid=$!

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
# stopping (it logs why) leaves chat running without notifications.
wait -n "$larkd_pid" "$lighttpd_pid" || true
