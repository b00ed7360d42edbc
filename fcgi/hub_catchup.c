/*
 * hub_catchup.c - bringing a held connection up to its user's head.
 *
 * A connection is "dirty" when its user has events after its cursor (a
 * note arrived, it was just parked, its output drained). At the end of
 * each loop turn every dirty connection catches up:
 *   - from memory, when its user is synced and the events after its cursor
 *     are in the user's tail - the path of every live event;
 *   - otherwise (a user the hub has not read yet, a connection behind the
 *     tail, a hole) by a read of the store, which runs on the reader pool,
 *     never on the hub thread, one read per user at a time for every
 *     connection of that user that waits. Its result comes back as a job:
 *     the waiting connections write what it returned, and a read that got
 *     everything up to the store's head makes the user synced.
 * A connection whose output passes HUB_OUT_HIGH waits for its socket to
 * drain (hub_conn.c marks it dirty again) rather than buffer more.
 */
#include "fcgi/hub_int.h"

#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"

#include <stdlib.h>
#include <string.h>

/* Above this much pending output a catch-up waits for EPOLLOUT. */
#define HUB_OUT_HIGH (256 * 1024)

/* Catch-up reads made on the hub thread, run on a reader thread, applied on
 * the hub thread. The requests of a loop turn go out together, at most
 * LIMIT_HUB_READ_BATCH to a job: after a reconnection storm (a larkd
 * restart, a database back) PostgreSQL answers them in one round trip. */
struct read_job {
    struct hub *h;
    struct store_inbox_req *reqs; /* reqs[i].user is users[i] */
    char **users;                 /* owned */
    size_t n;
    unsigned limit; /* events per user */
    int rc;
    struct lark_err err;
};

/* c's user is known: let its transport begin the answer (once). 0 if c
 * still receives. */
static int conn_open(struct hub *h, struct hub_conn *c)
{
    if (c->tr->open)
        c->tr->open(h, c);
    return c->state == CONN_OPEN ? 0 : -1;
}

/* Write evs to c, first recording how long its oldest event waited. */
static long conn_deliver(struct hub *h, struct hub_conn *c, const struct store_event *evs, size_t n)
{
    if (c->wake_ns) {
        metrics_delivery_latency(time_mono_ns() - c->wake_ns);
        c->wake_ns = 0;
    }
    return c->tr->deliver(h, c, evs, n);
}

static void read_done(struct hub *h, void *arg);

static void read_run(struct app *app, struct store_conn *db, void *arg)
{
    struct read_job *j = arg;

    (void)app;
    j->rc = db ? store_inbox_read_many(db, j->reqs, j->n, j->limit, &j->err)
               : lark_err_set(&j->err, LARK_EUNAVAIL, "no store connection");
    hub_post(j->h, read_done, j);
}

/* Queue a read of u's events after the lowest cursor that waits; it goes
 * out with the others of this turn (hub_run_dirty). */
static void read_request(struct hub *h, struct hub_user *u)
{
    uint64_t from = UINT64_MAX;

    if (hub_user_reading(u))
        return; /* its result makes the waiting connections look again */
    for (struct hub_conn *c = hub_user_conns(u); c; c = c->unext)
        if (c->want_read && c->cursor < from)
            from = c->cursor;
    if (from == UINT64_MAX)
        return;
    if (h->nreads == h->capreads) {
        h->capreads = h->capreads ? h->capreads * 2 : 64;
        h->reads = xrealloc(h->reads, h->capreads * sizeof(*h->reads));
        h->read_users = xrealloc(h->read_users, h->capreads * sizeof(*h->read_users));
    }
    h->read_users[h->nreads] = xstrdup(hub_user_id(u));
    h->reads[h->nreads] = (struct store_inbox_req){.user = h->read_users[h->nreads], .after = from};
    h->nreads++;
    hub_user_set_reading(u, 1);
    metrics_catchup_read();
}

/* Hand this turn's reads to the pool. */
static void read_flush(struct hub *h)
{
    for (size_t i = 0; i < h->nreads; i += LIMIT_HUB_READ_BATCH) {
        struct read_job *j = xcalloc(1, sizeof(*j));
        j->h = h;
        j->n = h->nreads - i < LIMIT_HUB_READ_BATCH ? h->nreads - i : LIMIT_HUB_READ_BATCH;
        j->reqs = xmalloc(j->n * sizeof(*j->reqs));
        j->users = xmalloc(j->n * sizeof(*j->users));
        memcpy(j->reqs, h->reads + i, j->n * sizeof(*j->reqs));
        memcpy(j->users, h->read_users + i, j->n * sizeof(*j->users));
        j->limit = LIMIT_HUB_BATCH;
        hub_pool_submit(h->readers, read_run, j);
    }
    h->nreads = 0;
}

static void read_fail(struct hub *h, struct hub_user *u, const struct read_job *j)
{
    struct hub_conn *c, *next;

    metrics_db_error();
    log_warn("hub: catch-up read failed user=%s: %s", hub_user_id(u), j->err.msg);
    for (c = hub_user_conns(u); c; c = next) {
        next = c->unext; /* failing ends c, which leaves the user's list */
        if (c->want_read) {
            c->want_read = 0;
            c->tr->fail(h, c);
        }
    }
}

/* One user's result: its waiting connections write what it returned. */
static void read_apply(struct hub *h, struct hub_user *u, const struct store_inbox_req *q,
                       unsigned limit)
{
    struct hub_conn *c, *next;
    uint64_t last = q->n ? q->evs[q->n - 1].seq : q->after;

    /* fewer than asked: everything up to the head, and every commit after
     * the read began has a note behind this job in the queue */
    if (q->n < limit)
        hub_user_synced_at(u, q->head, q->evs, q->n);
    for (c = hub_user_conns(u); c; c = next) {
        next = c->unext; /* a long-poll's answer ends it */
        if (!c->want_read)
            continue;
        c->want_read = 0;
        if (conn_open(h, c) != 0)
            continue;
        if (hub_user_synced(u) && c->cursor > hub_user_head(u))
            c->cursor = hub_user_head(u); /* since= past the end */
        /* inbox seqs are gapless: evs[k] is seq after + 1 + k */
        if (c->cursor >= q->after && c->cursor < last &&
            conn_deliver(h, c, q->evs + (c->cursor - q->after), (size_t)(last - c->cursor)) < 0)
            continue;
        conn_mark_dirty(h, c); /* the rest: from the tail, or another read */
    }
}

static void read_done(struct hub *h, void *arg)
{
    struct read_job *j = arg;

    for (size_t i = 0; i < j->n; i++) {
        struct store_inbox_req *q = &j->reqs[i];
        struct hub_user *u = h->closing ? NULL : hub_user_find(h, q->user, 0);
        if (u) {
            hub_user_set_reading(u, 0);
            if (j->rc)
                read_fail(h, u, j);
            else
                read_apply(h, u, q, j->limit);
        }
        store_events_free(q->evs, q->n);
        free(j->users[i]);
    }
    free(j->reqs);
    free(j->users);
    free(j);
}

static void conn_catch_up(struct hub *h, struct hub_conn *c)
{
    struct hub_user *u = c->user;

    if (c->state != CONN_OPEN || !u || c->want_read || conn_pending(c) > HUB_OUT_HIGH)
        return;
    if (hub_user_synced(u)) {
        uint64_t head = hub_user_head(u);
        size_t n;
        if (conn_open(h, c) != 0)
            return;
        if (c->cursor > head)
            c->cursor = head; /* since= past the end */
        if (c->cursor == head)
            return;
        n = hub_user_events(u, c->cursor + 1, h->evbuf, LIMIT_HUB_TAIL_EVENTS);
        if (n) {
            if (conn_deliver(h, c, h->evbuf, n) >= 0 && c->cursor < head)
                conn_mark_dirty(h, c); /* more after a budget or a hole */
            return;
        }
    }
    /* not read yet, behind the tail, or at a hole: the store has it */
    c->want_read = 1;
    read_request(h, u);
}

void hub_run_dirty(struct hub *h)
{
    struct hub_conn *list = h->dirty;
    h->dirty = NULL;
    while (list) {
        struct hub_conn *c = list;
        list = c->dnext;
        c->dnext = NULL;
        c->dirty = 0;
        conn_catch_up(h, c);
    }
    read_flush(h);
}

int hub_catchup_start(struct hub *h, struct lark_err *err)
{
    h->evbuf = xcalloc(LIMIT_HUB_TAIL_EVENTS, sizeof(*h->evbuf));
    h->readers = hub_pool_new(h->app, LIMIT_HUB_READERS, "hub readers", "reader", err);
    return h->readers ? 0 : LARK_EINTERNAL;
}

void hub_catchup_stop(struct hub *h)
{
    hub_pool_free(h->readers); /* its results are posted: hub_free runs them */
    h->readers = NULL;
    free(h->evbuf);
    h->evbuf = NULL;
    for (size_t i = 0; i < h->nreads; i++)
        free(h->read_users[i]);
    free(h->reads);
    free(h->read_users);
    h->reads = NULL;
    h->read_users = NULL;
    h->nreads = h->capreads = 0;
}
