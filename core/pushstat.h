/*
 * pushstat.h - the push daemon's counters, shared by lark-push (which
 * counts) and larkd (which shows them on GET /metrics).
 *
 * Why a table and not the daemon's own HTTP endpoint: lark-push adds its
 * counts to the push_stats table in the same transaction that records the
 * outcomes they count (store_push_finish), so a kill -9 can never leave a
 * counter that disagrees with the jobs, counters survive restarts like
 * Prometheus counters should, several daemons (PostgreSQL) add up without
 * coordination, and operators scrape one endpoint. The cost is one row
 * upsert per changed slot per batch.
 *
 * A struct pushstat is a flat array of slots per provider: the counters,
 * then a latency histogram (cumulative buckets are computed when rendered)
 * and its sum. Slots have stable names (pushstat_slot_name) that are the
 * rows of push_stats. Plain values; the owner decides about threads.
 */
#ifndef LARK_PUSHSTAT_H
#define LARK_PUSHSTAT_H

#include <stdint.h>

struct buf;

enum pushstat_provider { PUSHSTAT_FCM, PUSHSTAT_APNS, PUSHSTAT_NPROV };

enum pushstat_slot {
    PUSHSTAT_SENT,           /* the provider accepted a notification */
    PUSHSTAT_FAILED,         /* an attempt failed (any reason) */
    PUSHSTAT_RETRIED,        /* a failed attempt was scheduled again */
    PUSHSTAT_DEAD,           /* a job moved to push_dead */
    PUSHSTAT_TOKENS_REMOVED, /* the provider said the device token is dead */
    PUSHSTAT_SKIPPED,        /* not sent: the user came back online or read it */
    PUSHSTAT_LATENCY_SUM_US, /* sum of provider latencies, microseconds */
    PUSHSTAT_LATENCY_0,      /* first histogram bucket; one per bound, then +Inf */
    PUSHSTAT_NSLOTS = PUSHSTAT_LATENCY_0 + 13
};

/* Histogram bounds, seconds: a provider answers in tens of milliseconds
 * when healthy; seconds mean trouble. */
#define PUSHSTAT_NBOUNDS 12
extern const double pushstat_bounds[PUSHSTAT_NBOUNDS];

struct pushstat {
    uint64_t v[PUSHSTAT_NPROV][PUSHSTAT_NSLOTS]; /* counts; see enum pushstat_slot */
    int64_t queued;                              /* jobs waiting or in flight (gauge) */
    int64_t dead_letters;                        /* rows in push_dead (gauge) */
};

/* "fcm", "apns" */
const char *pushstat_provider_name(enum pushstat_provider p);

/* The provider named s, or -1. */
int pushstat_provider_parse(const char *s);

/* Stable name of a slot ("sent", ..., "latency_sum_us", "latency_b0".."latency_b12"). */
const char *pushstat_slot_name(int slot);

/* The slot named s, or -1. */
int pushstat_slot_parse(const char *s);

/* Count one provider answer that took us microseconds. */
void pushstat_latency(struct pushstat *st, enum pushstat_provider p, int64_t us);

/* 1 if every slot is zero (nothing to write). */
int pushstat_empty(const struct pushstat *st);

/* Append the Prometheus text for st to out; 0 or LARK_ETOOLARGE. */
int pushstat_render(const struct pushstat *st, struct buf *out);

#endif
