#!/usr/bin/env bash
# tools/mediabench.sh - media throughput (docs/BENCHMARKS.md "Media"): a
# fresh lighttpd + larkd on local storage, as tools/run.sh starts them, and
# for each of MEDIA_ROUNDS rounds, with curl (one transfer at a time):
#
#   upload    POST /v1/media of an MEDIA_MIB MiB file (one step: lighttpd
#             streams the body to larkd, which spools, hashes and fsyncs it)
#   put       the same bytes in two steps: POST /v1/media/uploads, then the
#             PUT to the URL it answers (timed: the PUT)
#   download  GET /v1/media/{id} (larkd checks access, lighttpd sends the
#             file: X-Sendfile)
#   static    GET of a static file of the same bytes from lighttpd's
#             document root: the baseline, in the same run
#
# larkd's VmRSS is sampled every few ms during the uploads (its peak above
# the level before them is what an upload costs it in memory). Prints the
# medians over the rounds and the ratios to the static download, then one
# JSON line (also appended to $BENCH_RESULTS).
#
# Environment: MEDIA_MIB (10), MEDIA_ROUNDS (7), BUILD (build),
# BENCH_PORT_MIN/MAX (18000/18999), BENCH_RESULTS ($BUILD/bench-results.jsonl),
# BENCH_KEEP=1 keeps the temporary directory. Needs curl.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build}
mib=${MEDIA_MIB:-10}
rounds=${MEDIA_ROUNDS:-7}
port_min=${BENCH_PORT_MIN:-18000}
port_max=${BENCH_PORT_MAX:-18999}
results=${BENCH_RESULTS:-$build/bench-results.jsonl}

for bin in "$build/larkd" "$build/lark-token" curl sha256sum; do
  command -v "$bin" >/dev/null || { echo "mediabench: $bin is missing" >&2; exit 2; }
done
[ -n "${LARK_JWT_SECRET:-}" ] || export LARK_JWT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM-$$"

# shellcheck source=tools/benchlib.sh
. tools/benchlib.sh

dir=$(mktemp -d "${TMPDIR:-/tmp}/mediabench.XXXXXX")
larkd_pid='' lighttpd_pid='' sampler_pid=''
cleanup() {
  stop_pid "$sampler_pid"
  stop_pid "$lighttpd_pid"
  stop_pid "$larkd_pid"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "mediabench: kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The file, and the same bytes as a static file of a copy of www/.
mkdir -p "$dir/www" "$dir/media"
cp -R "$top/www/." "$dir/www/"
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$dir/file.bin"
cp "$dir/file.bin" "$dir/www/static.bin"
sha=$(sha256sum "$dir/file.bin" | cut -d' ' -f1)
size=$(stat -c %s "$dir/file.bin")

port=$(free_port)
env=(PORT="$port" LARK_DATA="$dir" LARK_SOCKET="$dir/larkd.sock" LARK_LISTEN="$dir/larkd.sock"
     LARK_WS_SOCKET="$dir/larkd-ws.sock" LARK_WS_LISTEN="$dir/larkd-ws.sock"
     LARK_WWW="$dir/www" LARK_LOGDIR="$dir" LARK_CONF="$top/conf" LARK_MEDIA_DIR="$dir/media"
     LARK_MEDIA_RATE=0 LARK_MEDIA_QUOTA_MB=0)
env "${env[@]}" "$build/larkd" --migrate 2>>"$dir/larkd.log"
env "${env[@]}" "$build/larkd" 2>>"$dir/larkd.log" &
larkd_pid=$!
for _ in $(seq 100); do [ -S "$dir/larkd.sock" ] && break; sleep 0.05; done
env "${env[@]}" lighttpd -D -f conf/lighttpd.conf 2>>"$dir/lighttpd.stderr" &
lighttpd_pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$url/v1/healthz" >/dev/null && break; sleep 0.05; done
tok=$("$build/lark-token" mediabench)
auth="Authorization: Bearer $tok"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$larkd_pid/status"; }
# The highest VmRSS of larkd until the file $1 exists, into $2.
sample() {
  local peak=0 v
  while [ ! -e "$1" ]; do
    v=$(rss)
    [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.002
  done
  echo "$peak" >"$2"
}
# curl's total time (s) of a transfer; the body to $1 (or /dev/null).
timed() {
  local out=$1
  shift
  curl -sS -H 'Expect:' -o "$out" -w '%{time_total}\n' "$@"
}

up=() put=() down=() stat_=() peaks=()
rss_before=$(rss)
for _ in $(seq "$rounds"); do
  rm -f "$dir/done"
  sample "$dir/done" "$dir/peak" &
  sampler_pid=$!
  up+=("$(timed "$dir/up.json" -X POST --data-binary @"$dir/file.bin" -H "$auth" \
          -H 'Content-Type: application/octet-stream' "$url/v1/media?name=file.bin")")
  id=$(sed -n 's/.*"id":"\(m_[0-9a-f]*\)".*/\1/p' "$dir/up.json")
  [ -n "$id" ] || { echo "mediabench: upload failed: $(cat "$dir/up.json")" >&2; exit 1; }
  curl -sS -o "$dir/decl.json" -X POST -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"size\": $size, \"sha256\": \"$sha\", \"name\": \"file.bin\"}" "$url/v1/media/uploads"
  put_url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$dir/decl.json")
  put+=("$(timed "$dir/put.json" -X PUT --data-binary @"$dir/file.bin" \
           -H 'Content-Type: application/octet-stream' "$put_url")")
  grep -q '"status":"ready"' "$dir/put.json" || { echo "mediabench: PUT failed: $(cat "$dir/put.json")" >&2; exit 1; }
  touch "$dir/done"
  wait "$sampler_pid"
  sampler_pid=''
  peaks+=("$(cat "$dir/peak")")
  down+=("$(timed /dev/null -H "$auth" "$url/v1/media/$id")")
  stat_+=("$(timed /dev/null "$url/static.bin")")
  # the download is the file
  curl -sS -H "$auth" "$url/v1/media/$id" | cmp -s - "$dir/file.bin" ||
    { echo "mediabench: the download differs from the upload" >&2; exit 1; }
done
rss_after=$(rss)

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mibs() { awk -v s="$1" -v m="$mib" 'BEGIN {printf "%.0f", m / s}'; }
m_up=$(median "${up[@]}") m_put=$(median "${put[@]}") m_down=$(median "${down[@]}")
m_stat=$(median "${stat_[@]}") m_peak=$(median "${peaks[@]}")
max_peak=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)

echo "mediabench: $mib MiB, $rounds rounds, medians (curl time_total, loopback)"
printf '  %-34s %8.1f ms  %6s MiB/s  %5.2fx static\n' \
  "upload, one step (POST /v1/media)" "$(awk -v s="$m_up" 'BEGIN{print s*1000}')" "$(mibs "$m_up")" \
  "$(awk -v a="$m_up" -v b="$m_stat" 'BEGIN{print a/b}')"
printf '  %-34s %8.1f ms  %6s MiB/s  %5.2fx static\n' \
  "upload, two steps (the PUT)" "$(awk -v s="$m_put" 'BEGIN{print s*1000}')" "$(mibs "$m_put")" \
  "$(awk -v a="$m_put" -v b="$m_stat" 'BEGIN{print a/b}')"
printf '  %-34s %8.1f ms  %6s MiB/s  %5.2fx static\n' \
  "download (GET /v1/media, X-Sendfile)" "$(awk -v s="$m_down" 'BEGIN{print s*1000}')" \
  "$(mibs "$m_down")" "$(awk -v a="$m_down" -v b="$m_stat" 'BEGIN{print a/b}')"
printf '  %-34s %8.1f ms  %6s MiB/s\n' "static file from lighttpd" \
  "$(awk -v s="$m_stat" 'BEGIN{print s*1000}')" "$(mibs "$m_stat")"
echo "  larkd VmRSS: ${rss_before} KiB before, peak during uploads ${m_peak} KiB (median of rounds; max ${max_peak}), ${rss_after} KiB after"
json=$(printf '{"scenario":"media","mib":%s,"rounds":%s,"upload_s":%s,"put_s":%s,"download_s":%s,"static_s":%s,"rss_before_kib":%s,"rss_peak_kib":%s,"rss_peak_max_kib":%s,"rss_after_kib":%s,"ups":[%s],"puts":[%s],"downs":[%s],"statics":[%s]}' \
  "$mib" "$rounds" "$m_up" "$m_put" "$m_down" "$m_stat" "$rss_before" "$m_peak" "$max_peak" "$rss_after" \
  "$(IFS=,; echo "${up[*]}")" "$(IFS=,; echo "${put[*]}")" "$(IFS=,; echo "${down[*]}")" "$(IFS=,; echo "${stat_[*]}")")
echo "$json"
mkdir -p "$(dirname "$results")"
echo "$json" >>"$results"
