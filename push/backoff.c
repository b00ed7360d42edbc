/*
 * backoff.c - exponential backoff with full jitter (backoff.h).
 */
#include "push/backoff.h"

int64_t backoff_window_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t w = base_ms > 0 ? base_ms : 1;

    if (cap_ms < 0)
        cap_ms = 0;
    for (unsigned i = 1; i < attempt && w < cap_ms; i++)
        w = w > cap_ms / 2 ? cap_ms : w * 2;
    return w < cap_ms ? w : cap_ms;
}

int64_t backoff_delay_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms,
                         uint64_t rnd)
{
    int64_t w = backoff_window_ms(attempt, base_ms, cap_ms);
    int64_t d = (int64_t)(rnd % ((uint64_t)w + 1));

    return retry_after_ms > d ? retry_after_ms : d;
}
