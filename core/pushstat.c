/*
 * pushstat.c - push counter names and their Prometheus rendering.
 */
#include "core/pushstat.h"

#include "core/buf.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

const double pushstat_bounds[PUSHSTAT_NBOUNDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10,  30};

static const char *const slot_names[PUSHSTAT_LATENCY_0] = {
    "sent", "failed", "retried", "dead", "tokens_removed", "skipped", "latency_sum_us",
};

/* Counters rendered as lark_push_<name>_total, with their help text. */
static const char *const counter_help[PUSHSTAT_LATENCY_SUM_US] = {
    "Notifications the provider accepted.",
    "Send attempts that failed (any reason).",
    "Failed attempts scheduled to be tried again.",
    "Jobs moved to the dead-letter table.",
    "Device tokens removed because the provider reported them dead.",
    "Jobs not sent because the user came back online or read the message.",
};

const char *pushstat_provider_name(enum pushstat_provider p)
{
    return p == PUSHSTAT_FCM ? "fcm" : "apns";
}

int pushstat_provider_parse(const char *s)
{
    if (strcmp(s, "fcm") == 0)
        return PUSHSTAT_FCM;
    if (strcmp(s, "apns") == 0)
        return PUSHSTAT_APNS;
    return -1;
}

const char *pushstat_slot_name(int slot)
{
    static const char *const buckets[PUSHSTAT_NBOUNDS + 1] = {
        "latency_b0",  "latency_b1",  "latency_b2", "latency_b3", "latency_b4",
        "latency_b5",  "latency_b6",  "latency_b7", "latency_b8", "latency_b9",
        "latency_b10", "latency_b11", "latency_b12"};
    if (slot < 0 || slot >= PUSHSTAT_NSLOTS)
        return "";
    return slot < PUSHSTAT_LATENCY_0 ? slot_names[slot] : buckets[slot - PUSHSTAT_LATENCY_0];
}

int pushstat_slot_parse(const char *s)
{
    for (int i = 0; i < PUSHSTAT_NSLOTS; i++)
        if (strcmp(pushstat_slot_name(i), s) == 0)
            return i;
    return -1;
}

void pushstat_latency(struct pushstat *st, enum pushstat_provider p, int64_t us)
{
    double s = (double)us / 1e6;
    int i = 0;
    if (us < 0)
        us = 0;
    while (i < PUSHSTAT_NBOUNDS && s > pushstat_bounds[i])
        i++;
    st->v[p][PUSHSTAT_LATENCY_0 + i]++;
    st->v[p][PUSHSTAT_LATENCY_SUM_US] += (uint64_t)us;
}

int pushstat_empty(const struct pushstat *st)
{
    for (int p = 0; p < PUSHSTAT_NPROV; p++)
        for (int i = 0; i < PUSHSTAT_NSLOTS; i++)
            if (st->v[p][i])
                return 0;
    return 1;
}

static int render_histogram(const struct pushstat *st, struct buf *out)
{
    int rc = buf_printf(out, "# HELP lark_push_provider_latency_seconds Time from a request to "
                             "its provider's answer.\n"
                             "# TYPE lark_push_provider_latency_seconds histogram\n");
    for (int p = 0; p < PUSHSTAT_NPROV; p++) {
        const char *name = pushstat_provider_name((enum pushstat_provider)p);
        uint64_t cum = 0;
        for (int i = 0; i <= PUSHSTAT_NBOUNDS; i++) {
            char le[32];
            cum += st->v[p][PUSHSTAT_LATENCY_0 + i];
            if (i < PUSHSTAT_NBOUNDS)
                snprintf(le, sizeof(le), "%g", pushstat_bounds[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            rc |= buf_printf(out,
                             "lark_push_provider_latency_seconds_bucket{provider=\"%s\",le=\"%s\"}"
                             " %llu\n",
                             name, le, (unsigned long long)cum);
        }
        rc |= buf_printf(out, "lark_push_provider_latency_seconds_sum{provider=\"%s\"} %.6f\n",
                         name, (double)st->v[p][PUSHSTAT_LATENCY_SUM_US] / 1e6);
        rc |= buf_printf(out, "lark_push_provider_latency_seconds_count{provider=\"%s\"} %llu\n",
                         name, (unsigned long long)cum);
    }
    return rc;
}

int pushstat_render(const struct pushstat *st, struct buf *out)
{
    int rc = 0;

    for (int i = 0; i < PUSHSTAT_LATENCY_SUM_US; i++) {
        rc |= buf_printf(out, "# HELP lark_push_%s_total %s\n# TYPE lark_push_%s_total counter\n",
                         slot_names[i], counter_help[i], slot_names[i]);
        for (int p = 0; p < PUSHSTAT_NPROV; p++)
            rc |= buf_printf(out, "lark_push_%s_total{provider=\"%s\"} %llu\n", slot_names[i],
                             pushstat_provider_name((enum pushstat_provider)p),
                             (unsigned long long)st->v[p][i]);
    }
    rc |= render_histogram(st, out);
    rc |= buf_printf(out,
                     "# HELP lark_push_jobs_queued Push jobs waiting, coalescing or in flight.\n"
                     "# TYPE lark_push_jobs_queued gauge\nlark_push_jobs_queued %lld\n"
                     "# HELP lark_push_dead_letters Jobs in the dead-letter table.\n"
                     "# TYPE lark_push_dead_letters gauge\nlark_push_dead_letters %lld\n",
                     (long long)st->queued, (long long)st->dead_letters);
    return rc ? LARK_ETOOLARGE : 0;
}
