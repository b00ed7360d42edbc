#!/usr/bin/env bash
# tools/fuzz.sh SECONDS fuzzer... - run libFuzzer targets from build-fuzz/.
#
#   tools/fuzz.sh 10 fuzz_json fuzz_query      # what `make test` does
#   tools/fuzz.sh 600 fuzz_auth                # a longer hunt
#
# Each fuzzer runs for SECONDS on a scratch copy of its seeds in
# tests/fuzz/corpus/<fuzzer>/: what it discovers is thrown away, so the
# committed corpus only changes when someone adds a seed on purpose. The
# fuzzers run one after another (libFuzzer uses one core each).
#
# A crash, leak, sanitizer report, timeout (> 10 s on one input) or out of
# memory fails the run; the input that did it is kept in
# build-fuzz/crashes/<fuzzer>/ and the command to replay it is printed.
# One line per fuzzer, then "fuzz (SECONDS s each): N passed, N failed".
set -uo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh SECONDS fuzzer..." >&2
  exit 2
fi
secs=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lark-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for f in "$@"; do
  bin=$root/build-fuzz/$f
  seeds=$root/tests/fuzz/corpus/$f
  if [ ! -x "$bin" ]; then
    printf 'FAIL  %-14s not built: %s (make fuzz-build)\n' "$f" "$bin"
    failed=$((failed + 1))
    continue
  fi
  corpus=$work/$f/corpus
  artifacts=$work/$f/artifacts
  mkdir -p "$corpus" "$artifacts"
  [ -d "$seeds" ] && cp -R "$seeds/." "$corpus/"
  nseeds=$(find "$corpus" -type f | wc -l)
  log=$work/$f/log
  # -max_total_time stops libFuzzer itself; timeout(1) bounds the rest.
  timeout --kill-after=30 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  found=$(find "$artifacts" -type f | wc -l)
  if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
    printf 'ok    %-14s %s runs, %d seeds, corpus grew to %d (discarded)\n' "$f" "${runs:-?}" \
      "$nseeds" "$(find "$corpus" -type f | wc -l)"
    passed=$((passed + 1))
  else
    printf 'FAIL  %-14s exit status %d, %d input(s) kept\n' "$f" "$rc" "$found"
    grep -E 'ERROR:|SUMMARY:|runtime error:|^    #[0-9]+ ' "$log" | head -n 40 | sed 's/^/      /'
    if [ "$found" -gt 0 ]; then
      mkdir -p "$root/build-fuzz/crashes/$f"
      cp "$artifacts"/* "$root/build-fuzz/crashes/$f/"
      for a in "$artifacts"/*; do
        echo "      replay: build-fuzz/$f build-fuzz/crashes/$f/$(basename "$a")"
      done
    else
      tail -n 20 "$log" | sed 's/^/      /'
    fi
    failed=$((failed + 1))
  fi
done

echo "fuzz ($secs s each): $passed passed, $failed failed"
[ $failed -eq 0 ]
