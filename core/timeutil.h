/*
 * timeutil.h - clocks and the one time-stamp format lark writes.
 *
 * Wall-clock time is milliseconds since the Unix epoch (int64_t) and is
 * what the database stores; API time stamps are RFC 3339 UTC with
 * milliseconds (API.md: "2026-11-23T07:00:00.123Z"). Monotonic time is for
 * timers and latency only.
 */
#ifndef LARK_TIMEUTIL_H
#define LARK_TIMEUTIL_H

#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL. */
#define TIME_RFC3339_LEN 25

/* Wall-clock milliseconds since the epoch. */
int64_t time_now_ms(void);

/* Monotonic milliseconds (CLOCK_MONOTONIC), for timers. */
int64_t time_mono_ms(void);

/* Monotonic nanoseconds, for latency measurement. */
int64_t time_mono_ns(void);

/* Format ms (epoch) into out, which holds TIME_RFC3339_LEN bytes. */
void time_rfc3339(int64_t ms, char out[TIME_RFC3339_LEN]);

#endif
