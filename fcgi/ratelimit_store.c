/*
 * ratelimit_store.c - rate limits kept in the store, for larkd as a CGI
 * program (ratelimit.h): a process lives for one request, so its memory
 * cannot count a user's sends; the database every process shares can
 * (store_rate_take, one statement per take).
 */
#include "fcgi/ratelimit.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/ratelimit_impl.h"

#include <stdlib.h>

struct rl_store {
    struct ratelimit base;
    struct store_conn *db; /* borrowed */
    char *cls;
    double rate, burst;
};

static int rl_store_take(struct ratelimit *base, const char *user, int64_t now_ms, int *retry_after)
{
    struct rl_store *rl = (struct rl_store *)base;
    struct lark_err err = {0};
    int64_t wait_ms = 0;

    (void)now_ms; /* monotonic, this host's: the buckets need the wall clock */
    if (rl->rate <= 0)
        return 0;
    if (store_rate_take(rl->db, rl->cls, user, rl->rate, rl->burst, time_now_ms(), &wait_ms,
                        &err) != 0) {
        log_warn("rate limit %s for %s not checked: %s", rl->cls, user, err.msg);
        return 0;
    }
    if (wait_ms == 0)
        return 0;
    *retry_after = (int)((wait_ms + 999) / 1000); /* whole seconds, rounded up */
    if (*retry_after < 1)
        *retry_after = 1;
    return LARK_ERATE;
}

static void rl_store_set(struct ratelimit *base, double rate, double burst)
{
    struct rl_store *rl = (struct rl_store *)base;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
}

static unsigned long rl_store_size(struct ratelimit *base)
{
    (void)base;
    return 0;
}

static void rl_store_free(struct ratelimit *base)
{
    struct rl_store *rl = (struct rl_store *)base;
    free(rl->cls);
    free(rl);
}

static const struct ratelimit_ops rl_store_ops = {
    .name = "store",
    .take = rl_store_take,
    .set = rl_store_set,
    .size = rl_store_size,
    .free = rl_store_free,
};

struct ratelimit *ratelimit_new_store(struct store_conn *db, const char *cls, double rate,
                                      double burst)
{
    struct rl_store *rl = xcalloc(1, sizeof(*rl));
    rl->base.ops = &rl_store_ops;
    rl->db = db;
    rl->cls = xstrdup(cls);
    rl_store_set(&rl->base, rate, burst);
    return &rl->base;
}
