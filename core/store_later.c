/*
 * store_later.c - writes nobody waits for: acknowledged positions and
 * presence (store.h, "writes nobody waits for").
 *
 * Why: a long-poll client acknowledges with every poll (since=N), an SSE
 * client with every reconnection (Last-Event-ID). When each of those went
 * through the single writer and waited for its group commit's fsync -
 * behind the senders - a long-poll could not even start before an fsync
 * (docs/BENCHMARKS.md: long-poll p99 15x Nchan's). Presence touches were
 * worse: the hub waited on them. Neither needs to be durable before
 * anything else happens: an acknowledged position written late (or lost
 * in a crash) only means events are delivered again, which at-least-once
 * allows, and presence is soft state with a TTL.
 *
 * So callers queue and return; one thread per store (started on first
 * use) waits LATER_COALESCE_MS for more to arrive, then writes everything
 * queued in one transaction through the back end's ordinary write path
 * (for SQLite that transaction joins the writer's next group commit):
 * acknowledged positions coalesced per user, the newest presence touch of
 * each user, the latest expiry cutoff. A failed write keeps the positions
 * and tries again after LATER_RETRY_MS; touches and expiries are dropped,
 * since the hub sends fresh ones every presence interval.
 */
#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/store_impl.h"
#include "core/store_ops.h"
#include "core/timeutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long the thread waits for more after the first item arrives (ms):
 * receipts then go out a few ms later; many acks share one commit. */
#define LATER_COALESCE_MS 5
/* After a failed write, how long until the next try (ms). */
#define LATER_RETRY_MS 500
/* Most acknowledged positions written in one transaction. */
#define LATER_BATCH 512

/* A user's queued position. The map holds one per user, so it is bounded
 * by the users who acknowledged since the last successful write. */
struct later_ack {
    struct hmap_node node;
    uint64_t seq;
    char user[];
};

struct store_later {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started; /* the thread runs */
    int stop;
    int64_t retry_at; /* mono ms: after a failure, no write before */
    struct hmap acks; /* user -> struct later_ack */
    char **touch;     /* users to touch at touch_now */
    size_t ntouch, captouch;
    int64_t touch_now;     /* ms since the epoch */
    int64_t expire_cutoff; /* 0: none queued */
};

/* What one write takes: a snapshot of the queue. */
struct later_batch {
    struct op_ack *acks;
    size_t nacks;
    const char *const *touch;
    size_t ntouch;
    int64_t touch_now;
    int64_t expire_cutoff;
};

static struct later_ack *ack_find(struct store_later *l, const char *user, uint64_t hash)
{
    for (struct hmap_node *n = hmap_bucket(&l->acks, hash); n; n = n->next) {
        struct later_ack *a = HMAP_ENTRY(n, struct later_ack, node);
        if (n->hash == hash && strcmp(a->user, user) == 0)
            return a;
    }
    return NULL;
}

/* The one transaction: positions (each with its receipts), then presence. */
static int later_op(struct db *d, void *arg, struct lark_err *err)
{
    struct later_batch *b = arg;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < b->nacks; i++)
        rc = op_ack(d, &b->acks[i], err);
    if (rc == 0 && b->ntouch) {
        struct op_touch t = {b->touch, b->ntouch, b->touch_now};
        rc = op_presence_touch(d, &t, err);
    }
    if (rc == 0 && b->expire_cutoff)
        rc = op_presence_expire(d, &b->expire_cutoff, err);
    return rc;
}

static int later_pending(const struct store_later *l)
{
    return l->acks.count || l->ntouch || l->expire_cutoff;
}

/* Take a snapshot of the queue (mu held). Ack strings point into the map,
 * whose entries stay until the write is done (only this thread frees). */
static void later_take(struct store_later *l, struct later_batch *b, char ***touch)
{
    size_t n = 0;

    b->acks = xcalloc(l->acks.count ? l->acks.count : 1, sizeof(*b->acks));
    for (size_t i = 0; i < l->acks.nbuckets && n < LATER_BATCH; i++)
        for (struct hmap_node *nd = l->acks.buckets[i]; nd && n < LATER_BATCH; nd = nd->next) {
            struct later_ack *a = HMAP_ENTRY(nd, struct later_ack, node);
            b->acks[n++] = (struct op_ack){a->user, a->seq};
        }
    b->nacks = n;
    *touch = l->touch;
    b->touch = (const char *const *)l->touch;
    b->ntouch = l->ntouch;
    b->touch_now = l->touch_now;
    b->expire_cutoff = l->expire_cutoff;
    l->touch = NULL;
    l->ntouch = l->captouch = 0;
    l->expire_cutoff = 0;
}

/* After a successful write: forget the positions written, unless a newer
 * one arrived meanwhile (mu held). */
static void later_done(struct store_later *l, const struct later_batch *b)
{
    for (size_t i = 0; i < b->nacks; i++) {
        uint64_t hash = hmap_hash(b->acks[i].user);
        struct later_ack *a = ack_find(l, b->acks[i].user, hash);
        if (a && a->seq <= b->acks[i].seq) {
            hmap_remove(&l->acks, &a->node);
            free(a);
        }
    }
}

static void later_write(struct store *s, struct store_conn **conn)
{
    struct store_later *l = s->later;
    struct lark_err err = {0};
    struct later_batch b = {0};
    char **touch = NULL;
    int rc;

    later_take(l, &b, &touch);
    pthread_mutex_unlock(&l->mu);
    /* the back end's own connection: this file sits below store.c */
    rc = *conn ? 0 : s->ops->conn_open(s, conn, &err);
    if (rc == 0)
        rc = s->ops->write(*conn, later_op, &b, &err);
    if (rc)
        log_warn("store: queued acknowledgements not written yet (%zu users): %s", b.nacks,
                 err.msg);
    pthread_mutex_lock(&l->mu);
    if (rc == 0)
        later_done(l, &b);
    else
        l->retry_at = time_mono_ms() + LATER_RETRY_MS;
    for (size_t i = 0; i < b.ntouch; i++)
        free(touch[i]);
    free(touch);
    free(b.acks);
}

static void later_wait_ms(struct store_later *l, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&l->cv, &l->mu, &ts);
}

static void *later_main(void *arg)
{
    struct store *s = arg;
    struct store_later *l = s->later;
    struct store_conn *conn = NULL;

    pthread_setname_np(pthread_self(), "lark-later");
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int64_t wait;
        while (!later_pending(l) && !l->stop)
            pthread_cond_wait(&l->cv, &l->mu);
        if (!later_pending(l))
            break; /* stopping with nothing queued */
        wait = l->retry_at - time_mono_ms();
        if (wait > 0 && !l->stop) {
            later_wait_ms(l, wait);
            continue;
        }
        if (!l->stop) {
            /* let more arrive: one commit for all of them */
            pthread_mutex_unlock(&l->mu);
            struct timespec ts = {0, LATER_COALESCE_MS * 1000000L};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&l->mu);
        }
        later_write(s, &conn);
        if (l->stop)
            break; /* one last try; what still fails is lost (re-delivery) */
    }
    pthread_mutex_unlock(&l->mu);
    if (conn)
        s->ops->conn_close(conn);
    return NULL;
}

/* The queue, created (and its thread started) on first use; mu held on
 * return. */
static struct store_later *later_lock(struct store *s)
{
    static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
    struct store_later *l;

    pthread_mutex_lock(&create_mu);
    if (!s->later) {
        l = xcalloc(1, sizeof(*l));
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        hmap_init(&l->acks);
        s->later = l;
    }
    l = s->later;
    pthread_mutex_lock(&l->mu);
    pthread_mutex_unlock(&create_mu);
    if (!l->started && !l->stop) {
        if (pthread_create(&l->thread, NULL, later_main, s) == 0)
            l->started = 1;
        else
            log_error("store: cannot start the thread for queued writes");
    }
    return l;
}

void store_ack_later(struct store *s, const char *user, uint64_t seq)
{
    struct store_later *l = later_lock(s);
    uint64_t hash = hmap_hash(user);
    struct later_ack *a = ack_find(l, user, hash);

    if (!a) {
        size_t len = strlen(user) + 1;
        a = xcalloc(1, sizeof(*a) + len);
        memcpy(a->user, user, len);
        hmap_insert(&l->acks, &a->node, hash);
    }
    if (seq > a->seq)
        a->seq = seq;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void store_presence_touch_later(struct store *s, const char *const *users, size_t n, int64_t now)
{
    struct store_later *l;

    if (!n)
        return;
    l = later_lock(s);
    if (l->ntouch + n > l->captouch) {
        while (l->ntouch + n > l->captouch)
            l->captouch = l->captouch ? l->captouch * 2 : 64;
        l->touch = xrealloc(l->touch, l->captouch * sizeof(*l->touch));
    }
    for (size_t i = 0; i < n; i++)
        l->touch[l->ntouch++] = xstrdup(users[i]);
    if (now > l->touch_now)
        l->touch_now = now;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void store_presence_expire_later(struct store *s, int64_t cutoff)
{
    struct store_later *l = later_lock(s);
    if (cutoff > l->expire_cutoff)
        l->expire_cutoff = cutoff;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

uint64_t store_later_acked(struct store *s, const char *user)
{
    struct store_later *l = s->later;
    struct later_ack *a;
    uint64_t seq = 0;

    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    a = ack_find(l, user, hmap_hash(user));
    if (a)
        seq = a->seq;
    pthread_mutex_unlock(&l->mu);
    return seq;
}

void store_later_stop(struct store *s)
{
    struct store_later *l = s->later;

    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    l->retry_at = 0;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->acks.nbuckets; i++)
        while (l->acks.buckets[i]) {
            struct later_ack *a = HMAP_ENTRY(l->acks.buckets[i], struct later_ack, node);
            hmap_remove(&l->acks, &a->node);
            free(a);
        }
    for (size_t i = 0; i < l->ntouch; i++)
        free(l->touch[i]);
    free(l->touch);
    hmap_release(&l->acks);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
    s->later = NULL;
}
