/*
 * quota.c - one token-bucket limiter per class, from one table.
 */
#include "fcgi/quota.h"

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/ratelimit.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

struct quota_spec {
    size_t rate;      /* offset of the rate key (int) in struct config */
    size_t burst;     /* offset of the burst key */
    int per_s;        /* the rate key counts per this many seconds: 1 or 60 */
    const char *what; /* for the 429's message, plural */
    const char *cls;  /* the bucket's class in the store (quota_new_store) */
};

static const struct quota_spec quota_specs[QUOTA_NCLASS] = {
    [QUOTA_SEND] = {offsetof(struct config, send_rate), offsetof(struct config, send_burst), 1,
                    "messages", "send"},
    [QUOTA_TYPING] = {offsetof(struct config, typing_rate), offsetof(struct config, typing_burst),
                      1, "typing notices", "typing"},
    [QUOTA_GROUP] = {offsetof(struct config, group_per_min), offsetof(struct config, group_burst),
                     60, "new groups", "group"},
    [QUOTA_MEMBER] = {offsetof(struct config, member_per_min),
                      offsetof(struct config, member_burst), 60, "membership changes", "member"},
    [QUOTA_READ] = {offsetof(struct config, read_per_min), offsetof(struct config, read_burst), 60,
                    "read receipts", "read"},
    [QUOTA_DEVICE] = {offsetof(struct config, device_per_min),
                      offsetof(struct config, device_burst), 60, "device registrations", "device"},
    [QUOTA_TICKET] = {offsetof(struct config, ticket_per_min),
                      offsetof(struct config, ticket_burst), 60, "tickets", "ticket"},
    [QUOTA_MEDIA] = {offsetof(struct config, media_rate), offsetof(struct config, media_burst), 60,
                     "uploads", "media"},
};

struct quota {
    struct ratelimit *rl[QUOTA_NCLASS];
    atomic_int rate[QUOTA_NCLASS]; /* as configured (per_s units), for the message */
};

static int cfg_int(const struct config *cfg, size_t off)
{
    return *(const int *)((const char *)cfg + off);
}

/* tokens per second of class c under cfg */
static double spec_rate(const struct config *cfg, enum quota_class c)
{
    return (double)cfg_int(cfg, quota_specs[c].rate) / quota_specs[c].per_s;
}

struct quota *quota_new(const struct config *cfg)
{
    struct quota *q = xcalloc(1, sizeof(*q));
    for (int c = 0; c < QUOTA_NCLASS; c++) {
        q->rl[c] = ratelimit_new(spec_rate(cfg, c), cfg_int(cfg, quota_specs[c].burst));
        atomic_init(&q->rate[c], cfg_int(cfg, quota_specs[c].rate));
    }
    return q;
}

struct quota *quota_new_store(const struct config *cfg, struct store_conn *db)
{
    struct quota *q = xcalloc(1, sizeof(*q));

    for (int c = 0; c < QUOTA_NCLASS; c++) {
        q->rl[c] = ratelimit_new_store(db, quota_specs[c].cls, spec_rate(cfg, c),
                                       cfg_int(cfg, quota_specs[c].burst));
        atomic_init(&q->rate[c], cfg_int(cfg, quota_specs[c].rate));
    }
    return q;
}

void quota_free(struct quota *q)
{
    if (!q)
        return;
    for (int c = 0; c < QUOTA_NCLASS; c++)
        ratelimit_free(q->rl[c]);
    free(q);
}

void quota_set(struct quota *q, const struct config *cfg)
{
    for (int c = 0; c < QUOTA_NCLASS; c++) {
        ratelimit_set(q->rl[c], spec_rate(cfg, c), cfg_int(cfg, quota_specs[c].burst));
        atomic_store(&q->rate[c], cfg_int(cfg, quota_specs[c].rate));
    }
}

int quota_take(struct quota *q, enum quota_class c, const char *user, int *retry_after,
               struct lark_err *err)
{
    int rc = ratelimit_take(q->rl[c], user, time_mono_ms(), retry_after);

    if (rc)
        lark_err_set(err, rc, "more than %d %s per %s; retry in %d s", atomic_load(&q->rate[c]),
                     quota_specs[c].what, quota_specs[c].per_s == 1 ? "second" : "minute",
                     *retry_after);
    return rc;
}
