/*
 * backoff.h - when to try a failed push again.
 *
 * Exponential backoff with "full jitter" (AWS Architecture Blog,
 * "Exponential Backoff And Jitter", 2015): the delay before attempt n+1 is
 * uniform in [0, min(cap, base * 2^(n-1))]. Full jitter spreads the retries
 * of a burst that failed together (a provider outage hits every job at
 * once) instead of sending them back in waves. A provider's Retry-After
 * is a floor: the delay is never shorter than what it asked for.
 *
 * Pure functions of their arguments (the random draw is passed in), so
 * tests can pin every case; any thread may call them.
 */
#ifndef LARK_PUSH_BACKOFF_H
#define LARK_PUSH_BACKOFF_H

#include <stdint.h>

/* The ceiling of the jitter window for the retry after attempt (>= 1):
 * min(cap_ms, base_ms * 2^(attempt-1)), without overflow. */
int64_t backoff_window_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);

/*
 * The delay before the next try after attempt failed: rnd (any 64-bit
 * value, e.g. from getrandom) picks a point in [0, window]; the result is
 * at least retry_after_ms (0 = the provider said nothing) and at most
 * max(cap_ms, retry_after_ms).
 */
int64_t backoff_delay_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms,
                         uint64_t rnd);

#endif
