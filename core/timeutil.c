/*
 * timeutil.c - clocks and RFC 3339 formatting.
 */
#include "core/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    return time_mono_ns() / 1000000;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void time_rfc3339(int64_t ms, char out[TIME_RFC3339_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    int millis = (int)(ms % 1000);

    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    /* Sized for any int fields; a year past 9999 is cut, never overflowed. */
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    memcpy(out, tmp, TIME_RFC3339_LEN - 1);
    out[TIME_RFC3339_LEN - 1] = '\0';
}
