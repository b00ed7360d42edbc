/*
 * ratelimit.c - the rate limiters' dispatch, and the in-memory back end:
 * token buckets in an intrusive hash map.
 */
#include "fcgi/ratelimit.h"

#include "fcgi/ratelimit_impl.h"

#include "core/err.h"
#include "core/hmap.h"
#include "core/mem.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Sweep full buckets once the map holds this many. */
#define RL_SWEEP_AT 4096

struct rl_bucket {
    struct hmap_node node;
    double tokens;
    int64_t last_ms; /* when tokens was computed */
    char user[];
};

struct rl_mem {
    struct ratelimit base;
    pthread_mutex_t mu;
    struct hmap map;
    double rate;  /* tokens per second */
    double burst; /* capacity */
    size_t sweep_at;
};

static const struct ratelimit_ops rl_mem_ops;

struct ratelimit *ratelimit_new(double rate, double burst)
{
    struct rl_mem *rl = xcalloc(1, sizeof(*rl));
    rl->base.ops = &rl_mem_ops;
    pthread_mutex_init(&rl->mu, NULL);
    hmap_init(&rl->map);
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    rl->sweep_at = RL_SWEEP_AT;
    return &rl->base;
}

static void rl_free_all(struct rl_mem *rl)
{
    for (size_t i = 0; i < rl->map.nbuckets; i++) {
        struct hmap_node *n = rl->map.buckets[i];
        while (n) {
            struct hmap_node *next = n->next;
            free(HMAP_ENTRY(n, struct rl_bucket, node));
            n = next;
        }
        rl->map.buckets[i] = NULL;
    }
    rl->map.count = 0;
}

static void rl_mem_free(struct ratelimit *base)
{
    struct rl_mem *rl = (struct rl_mem *)base;
    rl_free_all(rl);
    hmap_release(&rl->map);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static void rl_refill(struct rl_mem *rl, struct rl_bucket *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000.0;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
}

/* Drop buckets that are full again: they are indistinguishable from new. */
static void rl_sweep(struct rl_mem *rl, int64_t now_ms)
{
    for (size_t i = 0; i < rl->map.nbuckets; i++) {
        struct hmap_node **pp = &rl->map.buckets[i];
        while (*pp) {
            struct rl_bucket *b = HMAP_ENTRY(*pp, struct rl_bucket, node);
            rl_refill(rl, b, now_ms);
            if (b->tokens >= rl->burst) {
                *pp = b->node.next;
                rl->map.count--;
                free(b);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    /* If most buckets are busy, sweep again only after the map doubles. */
    rl->sweep_at = rl->map.count * 2 > RL_SWEEP_AT ? rl->map.count * 2 : RL_SWEEP_AT;
}

static struct rl_bucket *rl_find(struct rl_mem *rl, const char *user, uint64_t h)
{
    for (struct hmap_node *n = hmap_bucket(&rl->map, h); n; n = n->next) {
        struct rl_bucket *b = HMAP_ENTRY(n, struct rl_bucket, node);
        if (n->hash == h && strcmp(b->user, user) == 0)
            return b;
    }
    return NULL;
}

static int rl_mem_take(struct ratelimit *base, const char *user, int64_t now_ms, int *retry_after)
{
    struct rl_mem *rl = (struct rl_mem *)base;
    uint64_t h = hmap_hash(user);
    struct rl_bucket *b;
    int rc = 0;

    pthread_mutex_lock(&rl->mu);
    if (rl->rate <= 0) { /* read under the lock: ratelimit_set may change it */
        pthread_mutex_unlock(&rl->mu);
        return 0;
    }
    b = rl_find(rl, user, h);
    if (!b) {
        size_t len = strlen(user) + 1;
        if (rl->map.count >= rl->sweep_at)
            rl_sweep(rl, now_ms);
        b = xmalloc(sizeof(*b) + len);
        memcpy(b->user, user, len);
        b->tokens = rl->burst;
        b->last_ms = now_ms;
        hmap_insert(&rl->map, &b->node, h);
    }
    rl_refill(rl, b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double wait = (1.0 - b->tokens) / rl->rate;
        *retry_after = (int)ceil(wait);
        if (*retry_after < 1)
            *retry_after = 1;
        rc = LARK_ERATE;
    }
    pthread_mutex_unlock(&rl->mu);
    return rc;
}

static void rl_mem_set(struct ratelimit *base, double rate, double burst)
{
    struct rl_mem *rl = (struct rl_mem *)base;
    pthread_mutex_lock(&rl->mu);
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst; /* fuller buckets are cut at their next take */
    pthread_mutex_unlock(&rl->mu);
}

static unsigned long rl_mem_size(struct ratelimit *base)
{
    struct rl_mem *rl = (struct rl_mem *)base;
    unsigned long n;
    pthread_mutex_lock(&rl->mu);
    n = rl->map.count;
    pthread_mutex_unlock(&rl->mu);
    return n;
}

static const struct ratelimit_ops rl_mem_ops = {
    .name = "memory",
    .take = rl_mem_take,
    .set = rl_mem_set,
    .size = rl_mem_size,
    .free = rl_mem_free,
};

/* ---- dispatch ------------------------------------------------------------ */

int ratelimit_take(struct ratelimit *rl, const char *user, int64_t now_ms, int *retry_after)
{
    return rl->ops->take(rl, user, now_ms, retry_after);
}

void ratelimit_set(struct ratelimit *rl, double rate, double burst)
{
    rl->ops->set(rl, rate, burst);
}

unsigned long ratelimit_size(struct ratelimit *rl)
{
    return rl->ops->size(rl);
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl)
        rl->ops->free(rl);
}
