/*
 * queue.c - claim, dispatch, sort, record (queue.h).
 */
#include "push/queue.h"

#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "push/apns.h"
#include "push/backoff.h"
#include "push/fcm.h"
#include "push/push.h"
#include "push/reply.h"

#include <stdlib.h>
#include <string.h>

/* An outcome waiting for the next store_push_finish (strings owned). */
struct queue_outcome {
    struct store_push_result r;
    char *error, *platform, *token;
};

struct queue {
    const struct config *cfg;
    struct store_conn *db;
    struct net *net;
    struct fcm *fcm;   /* NULL: FCM not configured */
    struct apns *apns; /* NULL: APNs not configured */
    struct push_opts opts;
    struct push_req *reqs; /* in flight (or waiting for an FCM token) */
    size_t inflight;
    struct queue_outcome *out;
    size_t nout, capout;
    struct pushstat delta;  /* counts not yet recorded */
    int64_t next_due;       /* wall ms of the next due job, INT64_MAX: none */
    int stale;              /* next_due must be read again */
    int64_t store_retry_at; /* wall ms: no store write before (after an error) */
    int watch_fd;           /* the wake-up descriptor last handed out, -1: none */
};

int queue_new(const struct config *cfg, struct store *store, struct net *net, struct queue **out,
              struct lark_err *err)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    int rc = store_conn_open(store, &q->db, err);

    *out = NULL;
    q->cfg = cfg;
    q->net = net;
    q->opts = (struct push_opts){.preview = cfg->push_preview, .ttl = cfg->push_ttl};
    q->stale = 1;
    q->next_due = INT64_MAX;
    q->watch_fd = -1;
    if (rc == 0 && *cfg->fcm_credentials)
        rc = fcm_new(cfg, &q->fcm, err);
    if (rc == 0 && *cfg->apns_key)
        rc = apns_new(cfg, &q->apns, err);
    if (rc) {
        queue_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Free a request that is not (or no longer) in q->reqs. */
static void req_destroy(struct queue *q, struct push_req *req)
{
    net_abort(q->net, &req->x);
    store_push_jobs_free(req->job, 1);
    free(req);
}

/* Unlink a request in flight and free it. */
static void req_free(struct queue *q, struct push_req *req)
{
    if (req->qprev)
        req->qprev->qnext = req->qnext;
    else /* invariant: the request without a predecessor is the head */
        q->reqs = req->qnext;
    if (req->qnext)
        req->qnext->qprev = req->qprev;
    q->inflight--;
    req_destroy(q, req);
}

static void outcomes_clear(struct queue *q)
{
    for (size_t i = 0; i < q->nout; i++) {
        free(q->out[i].error);
        free(q->out[i].platform);
        free(q->out[i].token);
    }
    q->nout = 0;
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    for (struct push_req *r = q->reqs, *next; r; r = next) {
        next = r->qnext;
        req_destroy(q, r);
    }
    q->reqs = NULL;
    fcm_free(q->fcm, q->net);
    apns_free(q->apns);
    outcomes_clear(q);
    free(q->out);
    store_conn_close(q->db);
    free(q);
}

int queue_watch(struct queue *q, int *fd, struct lark_err *err)
{
    int rc = store_push_watch(q->db, fd, err);

    /* a new listener (or none) may have missed wake-ups: look again */
    if (*fd != q->watch_fd)
        q->stale = 1;
    q->watch_fd = *fd;
    return rc;
}

void queue_watch_drain(struct queue *q)
{
    struct lark_err err = {0};
    int changed = 0;

    if (store_push_watch_drain(q->db, &changed, &err) != 0 || changed)
        q->stale = 1;
    log_debug("push wake changed=%d", changed);
}

size_t queue_busy(const struct queue *q)
{
    return q->inflight + q->nout;
}

/* ---- outcomes --------------------------------------------------------- */

static void outcome(struct queue *q, const struct store_push_job *j, enum store_push_outcome o,
                    int64_t due_at, const char *error)
{
    struct queue_outcome *x;

    if (q->nout == q->capout) {
        q->capout = q->capout ? q->capout * 2 : 64;
        q->out = xrealloc(q->out, q->capout * sizeof(*q->out));
    }
    x = &q->out[q->nout++];
    x->error = error ? xstrdup(error) : NULL;
    x->platform = xstrdup(j->platform);
    x->token = xstrdup(j->token);
    x->r = (struct store_push_result){.id = j->id,
                                      .outcome = o,
                                      .due_at = due_at,
                                      .error = x->error,
                                      .platform = x->platform,
                                      .token = x->token};
}

static enum pushstat_provider provider_of(const struct store_push_job *j)
{
    return strcmp(j->platform, "fcm") == 0 ? PUSHSTAT_FCM : PUSHSTAT_APNS;
}

/* An attempt failed: retry it later, or bury it (permanent, or out of tries). */
static void attempt_failed(struct queue *q, const struct store_push_job *j, int permanent,
                           const char *why, const char *retry_after)
{
    enum pushstat_provider p = provider_of(j);
    int64_t now = time_now_ms(), ra = 0, delay;
    uint64_t rnd;

    q->delta.v[p][PUSHSTAT_FAILED]++;
    if (permanent || j->attempts >= (unsigned)q->cfg->push_attempts) {
        q->delta.v[p][PUSHSTAT_DEAD]++;
        outcome(q, j, STORE_PUSH_DEAD, 0, why);
        log_warn("push dead job=%lld user=%s platform=%s attempts=%u error=%s", (long long)j->id,
                 j->user, j->platform, j->attempts, why);
        return;
    }
    if (retry_after && *retry_after && reply_retry_after(retry_after, now, &ra) != 0)
        ra = 0;
    ids_random(&rnd, sizeof(rnd));
    delay = backoff_delay_ms(j->attempts, q->cfg->push_backoff_ms, q->cfg->push_backoff_max_ms, ra,
                             rnd);
    q->delta.v[p][PUSHSTAT_RETRIED]++;
    outcome(q, j, STORE_PUSH_RETRY, now + delay, why);
    log_info("push retry job=%lld user=%s platform=%s attempt=%u/%d error=%s in_ms=%lld",
             (long long)j->id, j->user, j->platform, j->attempts, q->cfg->push_attempts, why,
             (long long)delay);
}

/* ---- answers ---------------------------------------------------------- */

static void request_done(struct queue *q, struct push_req *req)
{
    const struct store_push_job *j = req->job;
    struct net_xfer *x = &req->x;
    struct reply rep;

    if (x->result != CURLE_OK) {
        rep.kind = REPLY_RETRY;
        snprintf(rep.reason, sizeof(rep.reason), "%s", curl_easy_strerror(x->result));
    } else {
        if (req->prov == PUSHSTAT_FCM)
            reply_fcm(x->status, x->body.data, x->body.len, &rep);
        else
            reply_apns(x->status, x->body.data, x->body.len, &rep);
        pushstat_latency(&q->delta, req->prov, x->latency_us);
    }
    switch (rep.kind) {
    case REPLY_OK:
        q->delta.v[req->prov][PUSHSTAT_SENT]++;
        outcome(q, j, STORE_PUSH_DONE, 0, NULL);
        log_info("push sent job=%lld user=%s platform=%s count=%u status=%ld ms=%.1f",
                 (long long)j->id, j->user, j->platform, j->count, x->status,
                 (double)x->latency_us / 1000);
        break;
    case REPLY_TOKEN_DEAD:
        q->delta.v[req->prov][PUSHSTAT_FAILED]++;
        q->delta.v[req->prov][PUSHSTAT_TOKENS_REMOVED]++;
        outcome(q, j, STORE_PUSH_TOKEN_GONE, 0, rep.reason);
        log_info("push token removed job=%lld user=%s platform=%s status=%ld reason=%s",
                 (long long)j->id, j->user, j->platform, x->status, rep.reason);
        break;
    case REPLY_AUTH:
        if (req->prov == PUSHSTAT_FCM)
            fcm_auth_failed(q->fcm);
        else
            apns_auth_failed(q->apns);
        attempt_failed(q, j, 0, rep.reason, NULL);
        break;
    case REPLY_RETRY:
    case REPLY_FAIL:
    default: attempt_failed(q, j, rep.kind == REPLY_FAIL, rep.reason, x->retry_after); break;
    }
    req_free(q, req);
}

static void collect(struct queue *q)
{
    struct net_xfer *x;

    while ((x = net_next_done(q->net))) {
        if (x->kind == NET_TOKEN) {
            struct push_req *failed = NULL, *next;
            fcm_token_done(q->fcm, q->net, x, &q->opts, &failed);
            for (; failed; failed = next) {
                next = failed->next;
                attempt_failed(q, failed->job, 0, failed->fail, NULL);
                req_free(q, failed);
            }
            continue;
        }
        request_done(q, (struct push_req *)(void *)x);
    }
}

/* ---- claiming --------------------------------------------------------- */

/* Start one claimed job (takes ownership of *j's strings). */
static void dispatch(struct queue *q, struct store_push_job *j)
{
    struct push_req *req;
    int rc;

    if (j->user_online || j->user_read) {
        q->delta.v[provider_of(j)][PUSHSTAT_SKIPPED]++;
        outcome(q, j, STORE_PUSH_DONE, 0, NULL);
        log_info("push skipped job=%lld user=%s platform=%s reason=%s", (long long)j->id, j->user,
                 j->platform, j->user_online ? "online" : "read");
        return;
    }
    req = xcalloc(1, sizeof(*req));
    req->job = xcalloc(1, sizeof(*req->job));
    *req->job = *j;
    memset(j, 0, sizeof(*j)); /* moved */
    req->prov = provider_of(req->job);
    if (req->prov == PUSHSTAT_FCM)
        rc = q->fcm ? fcm_send(q->fcm, q->net, req, &q->opts)
                    : (snprintf(req->fail, sizeof(req->fail), "fcm is not configured"), -1);
    else
        rc = q->apns ? apns_send(q->apns, q->net, req, &q->opts)
                     : (snprintf(req->fail, sizeof(req->fail), "apns is not configured"), -1);
    if (rc) {
        attempt_failed(q, req->job, 0, req->fail, NULL);
        req_destroy(q, req);
        return;
    }
    req->qprev = NULL;
    req->qnext = q->reqs;
    if (q->reqs)
        q->reqs->qprev = req;
    q->reqs = req;
    q->inflight++;
}

static void claim(struct queue *q, int64_t now)
{
    struct store_push_job *jobs = NULL;
    struct lark_err err = {0};
    size_t room = (size_t)q->cfg->push_inflight, n = 0;
    int64_t late;

    room = room > queue_busy(q) ? room - queue_busy(q) : 0;
    if (room > QUEUE_CLAIM_MAX)
        room = QUEUE_CLAIM_MAX;
    if (room == 0 || now < q->store_retry_at || q->next_due > now)
        return;
    if (store_push_claim(q->db, now, now + q->cfg->push_lease_ms, (unsigned)room, &jobs, &n,
                         &err) != 0) {
        log_warn("push claim failed: %s", err.msg);
        q->store_retry_at = now + QUEUE_STORE_RETRY_MS;
        return;
    }
    late = time_now_ms() - now;
    if (n && late > q->cfg->push_lease_ms - q->cfg->push_timeout_ms) {
        /* The leases began at now, and the claim came back late (it ran
         * again on a new connection after a failover, or waited for
         * locks): they have run out, or will before a request could
         * finish, so the next claim - this daemon's or another's - takes
         * these jobs again. Sending them now would send them twice
         * (test_failover.mjs: a claim retried 8.5 s after its start, with
         * an 8 s lease). Left to that claim. */
        log_warn("push claim took %lld ms of a %d ms lease: %zu jobs left for the next claim",
                 (long long)late, q->cfg->push_lease_ms, n);
        store_push_jobs_free(jobs, n);
        q->stale = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        dispatch(q, &jobs[i]);
    store_push_jobs_free(jobs, n);
    q->stale = 1; /* leases moved the due times */
}

static void flush(struct queue *q, int64_t now)
{
    struct store_push_result *r;
    struct lark_err err = {0};
    int rc;

    if ((q->nout == 0 && pushstat_empty(&q->delta)) || now < q->store_retry_at)
        return;
    r = xcalloc(q->nout ? q->nout : 1, sizeof(*r));
    for (size_t i = 0; i < q->nout; i++)
        r[i] = q->out[i].r;
    rc = store_push_finish(q->db, r, q->nout, &q->delta, now, &err);
    free(r);
    if (rc) {
        /* kept for the next turn; the leases keep the jobs meanwhile */
        log_warn("push finish failed (%zu outcomes kept): %s", q->nout, err.msg);
        q->store_retry_at = now + QUEUE_STORE_RETRY_MS;
        return;
    }
    outcomes_clear(q);
    memset(&q->delta, 0, sizeof(q->delta));
    q->stale = 1;
}

int64_t queue_turn(struct queue *q, int draining)
{
    int64_t now, wait = QUEUE_IDLE_RECHECK_MS;
    long t;

    collect(q);
    now = time_now_ms();
    flush(q, now);
    if (q->stale && now >= q->store_retry_at) {
        struct lark_err err = {0};
        if (store_push_next_due(q->db, &q->next_due, &err) == 0) {
            q->stale = 0;
            log_debug("push next due in_ms=%lld",
                      q->next_due == INT64_MAX ? -1LL : (long long)(q->next_due - now));
        } else
            q->store_retry_at = now + QUEUE_STORE_RETRY_MS;
    }
    if (!draining)
        claim(q, now);
    if (q->stale && now >= q->store_retry_at)
        return 0; /* read the next due time first */
    t = net_timeout_ms(q->net);
    if (t >= 0 && t < wait)
        wait = t;
    if (now < q->store_retry_at) {
        if (q->store_retry_at - now < wait)
            wait = q->store_retry_at - now;
    } else if (!draining && queue_busy(q) < (size_t)q->cfg->push_inflight &&
               q->next_due - now < wait) {
        wait = q->next_due > now ? q->next_due - now : 0;
    }
    return wait;
}
