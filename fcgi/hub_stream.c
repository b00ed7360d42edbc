/*
 * hub_stream.c - the two FastCGI transports: SSE streams and long-polls
 * (API.md "GET /v1/events", "GET /v1/poll"), and how a worker hands one to
 * the hub (hub_park).
 *
 * Both are a FastCGI response whose headers the worker wrote; the hub
 * writes the body as STDOUT records and ends it with END_REQUEST
 * (fcgirec.h). An SSE stream writes each event as a frame and stays open,
 * with a ping event every sse_keepalive seconds. A long-poll writes one
 * JSON answer - the events after its cursor, or the ephemeral events that
 * arrived, or nothing at its deadline - and ends; while it waits it
 * trickles a space every poll_trickle seconds (leading whitespace is valid
 * JSON) so that lighttpd notices a client that left (DESIGN.md
 * "Disconnects").
 */
#include "fcgi/hub_int.h"

#include "core/buf.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/fcgirec.h"
#include "fcgi/heldcap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- shared by both ------------------------------------------------------- */

/* The two ways the answer may begin (hub.h, struct hub_park). */
struct hub_head {
    char *ok, *unavail;
    size_t ok_len, unavail_len;
};

static void head_free(struct hub_conn *c)
{
    if (!c->head)
        return;
    free(c->head->ok);
    free(c->head->unavail);
    free(c->head);
    c->head = NULL;
}

/* The stream can be served: status 200, headers, preamble; then its timer
 * (keep-alive, trickle, deadline) runs. */
static void stream_open(struct hub *h, struct hub_conn *c)
{
    int rc;

    if (!c->head)
        return;
    rc = conn_write_fcgi(h, c, c->head->ok, c->head->ok_len);
    head_free(c);
    metrics_response(200);
    if (rc == 0)
        c->tr->schedule(h, c, time_mono_ms());
}

/* It cannot be served, and nothing is written yet: the whole 503 answer
 * (Retry-After), and the end. */
static void stream_unavail(struct hub *h, struct hub_conn *c)
{
    int rc = conn_write_fcgi(h, c, c->head->unavail, c->head->unavail_len);
    head_free(c);
    metrics_response(503);
    if (rc == 0)
        conn_end(h, c);
}

static void stream_drop(struct hub *h, struct hub_conn *c)
{
    (void)h;
    head_free(c);
}

static int stream_finish(struct hub *h, struct hub_conn *c)
{
    buf_reset(&h->scratch);
    fcgirec_end(&h->scratch, c->req_id, 0);
    return conn_send(h, c, h->scratch.data, h->scratch.len);
}

/* Write a body of frames (or an answer) and report c's fate. */
static int stream_write(struct hub *h, struct hub_conn *c, struct buf *body)
{
    return body->len ? conn_write_fcgi(h, c, body->data, body->len) : 0;
}

/* ---- SSE ----------------------------------------------------------------- */

static long sse_deliver(struct hub *h, struct hub_conn *c, const struct store_event *evs, size_t n)
{
    struct buf frames;
    size_t taken;
    int rc;

    buf_init(&frames, EVENTS_ANSWER_MAX);
    taken = events_sse(evs, n, EVENTS_BUDGET, &frames, &c->cursor);
    rc = stream_write(h, c, &frames);
    buf_release(&frames);
    return rc < 0 ? -1 : (long)taken;
}

static void sse_ephemeral(struct hub *h, struct hub_conn *c, const struct hub_ephemeral *e)
{
    struct buf frame;

    stream_open(h, c); /* before its catch-up read returned: begin now */
    if (c->state != CONN_OPEN)
        return;
    buf_init(&frame, EVENTS_ANSWER_MAX);
    /* API.md: an ephemeral SSE event has no id: line */
    if (buf_printf(&frame, "event: %s\ndata: ", e->type) == 0 &&
        buf_append(&frame, e->json, e->len) == 0 && buf_puts(&frame, "\n\n") == 0)
        stream_write(h, c, &frame);
    buf_release(&frame);
}

/* Tell an SSE client to come back (drain, or the store failed), and end. */
static void sse_reconnect(struct hub *h, struct hub_conn *c, const char *reason)
{
    char frame[256];
    unsigned jitter;
    int retry = h->app->cfg.sse_retry_ms;
    int n;

    /* API.md: clients reconnect with jittered backoff; EventSource uses
     * the last retry: value, so spread them over [retry, 3 * retry]. */
    ids_random(&jitter, sizeof(jitter));
    retry += (int)(jitter % (unsigned)(2 * retry + 1));
    n = snprintf(frame, sizeof(frame), "retry: %d\nevent: reconnect\ndata: {\"reason\":\"%s\"}\n\n",
                 retry, reason);
    if (conn_write_fcgi(h, c, frame, (size_t)n) == 0)
        conn_end(h, c);
}

static void sse_fail(struct hub *h, struct hub_conn *c)
{
    if (c->head)
        stream_unavail(h, c);
    else
        sse_reconnect(h, c, "unavailable");
}

static void sse_drain(struct hub *h, struct hub_conn *c)
{
    if (c->head)
        stream_unavail(h, c);
    else
        sse_reconnect(h, c, "draining");
}

static void sse_schedule(struct hub *h, struct hub_conn *c, int64_t now)
{
    hub_timer_set(h, &c->timer, now + (int64_t)h->app->cfg.sse_keepalive * 1000);
}

static void sse_timer(struct hub *h, struct hub_conn *c, int64_t now)
{
    /* API.md: a ping event at least every 15 s - an event, not a comment,
     * because EventSource hides comments and the page must tell a quiet
     * stream from one a proxy holds back; also how a vanished client is
     * noticed (lighttpd reports it on write). */
    static const char ping[] = "event: ping\ndata: {}\n\n";
    if (conn_write_fcgi(h, c, ping, sizeof(ping) - 1) == 0)
        sse_schedule(h, c, now);
}

const struct hub_transport hub_sse = {
    .kind = TRANSPORT_SSE,
    .deliver = sse_deliver,
    .ephemeral = sse_ephemeral,
    .fail = sse_fail,
    .drain = sse_drain,
    .open = stream_open,
    .schedule = sse_schedule,
    .timer = sse_timer,
    .finish = stream_finish,
    .drop = stream_drop,
};

/* ---- long-poll -------------------------------------------------------------- */

/* Answer with the ephemeral events kept for c's user (and then ephemeral
 * e, if any), then the stored events evs, and end. Returns how many stored
 * events the answer took, -1 if c died. */
static long poll_answer(struct hub *h, struct hub_conn *c, const struct hub_ephemeral *e,
                        const struct store_event *evs, size_t n)
{
    struct events_poll p;
    struct buf body;
    size_t nkept = 0, taken = 0;
    char **kept;
    int rc;

    stream_open(h, c);
    if (c->state != CONN_OPEN)
        return -1;
    kept = c->user ? hub_user_take_ephemeral(c->user, &nkept) : NULL;
    buf_init(&body, EVENTS_ANSWER_MAX);
    events_poll_begin(&p, &body, c->cursor, EVENTS_BUDGET);
    for (size_t i = 0; i < nkept; i++) {
        events_poll_raw(&p, kept[i], strlen(kept[i]));
        free(kept[i]);
    }
    free(kept);
    if (e)
        events_poll_raw(&p, e->json, e->len);
    if (n)
        taken = events_poll_stored(&p, evs, n < c->limit ? n : c->limit);
    events_poll_end(&p);
    c->cursor = p.next;
    rc = stream_write(h, c, &body);
    buf_release(&body);
    if (rc < 0)
        return -1;
    conn_end(h, c);
    return (long)taken;
}

static long poll_deliver(struct hub *h, struct hub_conn *c, const struct store_event *evs, size_t n)
{
    poll_answer(h, c, NULL, evs, n);
    return -1; /* answered: the poll has ended */
}

static void poll_ephemeral(struct hub *h, struct hub_conn *c, const struct hub_ephemeral *e)
{
    poll_answer(h, c, e, NULL, 0);
}

/* Nothing more to wait for: answer what there is (its deadline passed,
 * or ephemeral events were kept for it) - the client polls again. */
static void poll_empty(struct hub *h, struct hub_conn *c)
{
    poll_answer(h, c, NULL, NULL, 0);
}

/* The store failed, or the server drains: 503 if nothing is written yet
 * (the client backs off, Retry-After), else an empty answer. */
static void poll_stop(struct hub *h, struct hub_conn *c)
{
    if (c->head)
        stream_unavail(h, c);
    else
        poll_empty(h, c);
}

static void poll_schedule(struct hub *h, struct hub_conn *c, int64_t now)
{
    int64_t next = now + (int64_t)h->app->cfg.poll_trickle * 1000;
    hub_timer_set(h, &c->timer, next < c->deadline_ms ? next : c->deadline_ms);
}

static void poll_timer(struct hub *h, struct hub_conn *c, int64_t now)
{
    if (now >= c->deadline_ms)
        poll_empty(h, c);
    else if (conn_write_fcgi(h, c, " ", 1) == 0)
        poll_schedule(h, c, now); /* DESIGN.md "Disconnects" */
}

const struct hub_transport hub_poll = {
    .kind = TRANSPORT_POLL,
    .between_requests = 1,
    .deliver = poll_deliver,
    .ephemeral = poll_ephemeral,
    .fail = poll_stop,
    .drain = poll_stop,
    .open = stream_open,
    .schedule = poll_schedule,
    .timer = poll_timer,
    .finish = stream_finish,
    .drop = stream_drop,
};

/* ---- parking ------------------------------------------------------------------ */

struct park_job {
    struct hub_park p; /* its head and unavail are the job's until adopted */
    char *user;
};

static void park_adopt(struct hub *h, void *arg)
{
    struct park_job *j = arg;
    const struct hub_transport *tr = j->p.kind == TRANSPORT_POLL ? &hub_poll : &hub_sse;
    struct hub_conn *c;

    if (h->closing || !(c = conn_new(h, j->p.fd, tr, CONN_OPEN))) {
        /* the loop is gone (lighttpd sees the connection close), or epoll
         * refused it (closed): its slot was never used */
        if (h->closing)
            close(j->p.fd);
        heldcap_release(h->app->heldcap, j->p.slot);
        goto out;
    }
    c->slot = j->p.slot;
    c->head = xmalloc(sizeof(*c->head));
    *c->head = (struct hub_head){j->p.head, j->p.unavail, j->p.head_len, j->p.unavail_len};
    j->p.head = j->p.unavail = NULL;
    c->req_id = j->p.request_id;
    c->cursor = j->p.cursor;
    c->limit = (uint16_t)(j->p.limit ? j->p.limit : 1);
    c->deadline_ms = time_mono_ms() + (int64_t)j->p.timeout_s * 1000;
    hub_user_attach(h, c, j->user);
    if (h->draining) {
        tr->drain(h, c);
        goto out;
    }
    if (tr == &hub_poll && hub_user_has_ephemeral(c->user)) {
        /* ephemeral events kept since its previous poll answer at once */
        poll_empty(h, c);
        goto out;
    }
    /* its backlog, from the tail or a read; then it opens (stream_open) */
    conn_mark_dirty(h, c);
out:
    free(j->p.head);
    free(j->p.unavail);
    free(j->user);
    free(j);
}

void hub_park(struct hub *h, const struct hub_park *p)
{
    struct park_job *j = xmalloc(sizeof(*j));
    j->p = *p;
    j->user = xstrdup(p->user);
    j->p.user = NULL;
    hub_post(h, park_adopt, j);
}
