/*
 * senders.c - publishers, warm-up, and the connections' set-up (see
 * senders.h).
 */
#include "tools/larkbench/senders.h"

#include "core/mem.h"
#include "tools/larkbench/conn.h"
#include "tools/larkbench/subs.h"
#include "tools/larkbench/target.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn *sender_conn(unsigned j)
{
    return &B.conns[B.o.subs + j];
}

/* A warm-up request: answered at once, it runs a worker's store reads. */
static void warm_poll(struct conn *c)
{
    buf_printf(&c->out,
               "GET /v1/poll?timeout=0 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
               B.o.host, B.tokens[c->slot]);
    c->busy = 1;
    c->t_write = 0;
    c->t_start = now_ns();
    conn_expect(c, 0);
    conn_send(c);
}

/* Start a publish of message cmid (number seq for its recipient). */
static void sender_post(struct conn *c, const char *field, const char *to, const char *cmid,
                        uint64_t seq)
{
    B.o.target->publish(c, field, to, cmid, seq);
    c->busy = 1;
    c->t_write = 0;
    c->t_start = now_ns();
    c->nsent++;
    conn_expect(c, 0);
    conn_send(c);
}

void sender_next(struct conn *c)
{
    char to[96], cmid[64];
    if (c->busy || !B.sending)
        return;
    if (c->state == CS_CLOSED) {
        /* Reopened after the server's keep-alive limit (lighttpd and nginx:
         * 1000 requests) or a failure; the failure budget bounds a
         * refused-connect loop. */
        if (c->reconnects >= RECONNECT_MAX || conn_open(c) != 0)
            return;
    }
    if (B.warming) {
        warm_poll(c);
        return;
    }
    if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP) {
        uint64_t k;
        if (c->qlen == 0)
            return;
        k = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % SENDER_QUEUE;
        c->qlen--;
        c->msg = (int64_t)k;
        snprintf(cmid, sizeof(cmid), "%s-%" PRIu64, B.tag, k);
        if (B.o.sc == SC_GROUP) {
            sender_post(c, "conversation_id", B.g.conv, cmid, k + 1);
            return;
        }
        user_name(to, sizeof(to), "sub", B.msgs[k].to);
        /* Message k is its recipient's (k / subs + 1)-th: k % subs is the
         * recipient, and its sender sends in k's order. */
        sender_post(c, "to", to, cmid, k / B.o.subs + 1);
        return;
    }
    /* One recipient per sender: its direct conversation is made by the
     * first send, so the window measures the steady state of sending, the
     * same for any --senders (rotating over recipients would make a share
     * of new conversations that grows with --senders). */
    user_name(to, sizeof(to), "rcpt", c->idx % B.o.recipients);
    snprintf(cmid, sizeof(cmid), "%s-s%u-%" PRIu64, B.tag, c->idx, c->nsent);
    sender_post(c, "to", to, cmid, c->nsent + 1);
}

static void sender_written(struct conn *c)
{
    B.st.sent++;
    if (c->msg >= 0)
        B.msgs[c->msg].t_write = c->t_write;
}

/* The request in flight (if any) is lost, the socket closed; go on. Each
 * failure spends one of the sender's RECONNECT_MAX reconnections. */
static void sender_failed(struct conn *c)
{
    if (c->msg >= 0) {
        struct msg *m = &B.msgs[c->msg];
        m->t_done = now_ns(); /* status stays 0: no answer */
        c->msg = -1;
    }
    conn_close(c);
    c->reconnects++;
    B.st.reconnects++;
    sender_next(c);
}

static void sender_done(struct conn *c)
{
    int64_t t = B.t_recv;
    int status = c->resp.status, ok = status_acked(status);
    B.st.answered++;
    B.st.status[status < STATUS_MAX ? status : 0]++;
    if (c->t_write)
        samples_add(&B.post_lat, t - c->t_write);
    if (ok) {
        B.st.acked++;
        if (t <= B.t_end)
            B.st.ok_in_window++;
    } else if (!B.errbody[0] && !B.warming) {
        snprintf(B.errbody, sizeof(B.errbody), "%d %.*s", status, (int)c->body.len,
                 c->body.data ? c->body.data : "");
    }
    if (c->msg >= 0) {
        struct msg *m = &B.msgs[c->msg];
        m->status = (uint16_t)status;
        m->t_done = t;
        if (ok && m->ndeliv) /* the event can beat the answer */
            B.st.acked_delivered++;
        c->msg = -1;
    }
    c->busy = 0;
    c->nreq++;
    buf_reset(&c->body);
    if (c->resp.close)
        conn_close(c);
    sender_next(c);
}

static void sender_head(struct conn *c)
{
    (void)c;
}

static void sender_body(struct conn *c, const char *p, size_t n)
{
    /* Keep the start of an error answer for the report. */
    if (!status_acked(c->resp.status) && c->body.len < ERRBODY_MAX)
        buf_append(&c->body, p, n < ERRBODY_MAX - c->body.len ? n : ERRBODY_MAX - c->body.len);
}

static void sender_idle_closed(struct conn *c)
{
    conn_close(c);
    sender_next(c);
}

static int sender_waiting(const struct conn *c)
{
    return c->busy;
}

static const struct conn_ops sender_ops = {
    .head = sender_head,
    .body = sender_body,
    .done = sender_done,
    .failed = sender_failed,
    .written = sender_written,
    .idle_closed = sender_idle_closed,
    .waiting = sender_waiting,
};

void conns_init(unsigned nsubs, unsigned nsenders, int warm, const char *sub_kind)
{
    char user[96];
    uint32_t wf = nsubs + nsenders, wp = wf + WARM_STREAMS;
    B.nconns = wf + (warm ? WARM_STREAMS + WARM_CONNS : 0);
    B.warm_first = wf;
    B.conns = xcalloc(B.nconns, sizeof(*B.conns));
    B.users = xcalloc(B.nconns, sizeof(*B.users));
    B.tokens = xcalloc(B.nconns, sizeof(*B.tokens));
    for (uint32_t i = 0; i < B.nconns; i++) {
        struct conn *c = &B.conns[i];
        const char *kind = i < nsubs ? sub_kind : i < wf ? "snd" : "warm";
        c->fd = -1;
        c->slot = i;
        c->msg = -1;
        c->role = i < nsubs || (i >= wf && i < wp) ? ROLE_SUB : ROLE_SENDER;
        c->idx = i < nsubs ? i : i < wf ? i - nsubs : i - wf;
        http_resp_init(&c->resp, c->role == ROLE_SUB ? B.o.target->on_header : NULL, c);
        buf_init(&c->in, IN_MAX);
        buf_init(&c->out, OUT_MAX);
        buf_init(&c->body, EVENT_MAX);
        user_name(user, sizeof(user), kind, c->idx);
        B.users[i] = xstrdup(user);
        if (B.o.target->needs_tokens)
            B.tokens[i] = mint_token(user);
        if (c->role == ROLE_SENDER && i < wf && (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP))
            c->q = xcalloc(SENDER_QUEUE, sizeof(*c->q));
        /* Streams and the warm-up of their server go to --sub-port; so
         * do every other sender of throughput (two larkd on one database). */
        c->to_sub = c->role == ROLE_SUB || i >= wf ||
                    (B.o.sc == SC_THROUGHPUT && B.o.two && c->idx % 2 == 1);
        if (c->role == ROLE_SUB)
            sub_init(c);
        else
            c->ops = &sender_ops;
    }
}

void conns_free(void)
{
    for (uint32_t i = 0; i < B.nconns; i++) {
        conn_close(&B.conns[i]);
        sub_release(&B.conns[i]);
        buf_release(&B.conns[i].in);
        buf_release(&B.conns[i].out);
        buf_release(&B.conns[i].body);
        free(B.conns[i].q);
        free(B.users[i]);
        free(B.tokens[i]);
    }
    free(B.conns);
    free(B.users);
    free(B.tokens);
    B.conns = NULL;
    B.nconns = 0;
}

/*
 * The first requests a larkd worker thread serves open its SQLite read
 * connection and its malloc arena, and the first streams the hub holds
 * grow its tables: costs paid once per thread, which would otherwise be
 * charged to the first thousand streams (measured: 4.5 instead of 0.3 KiB
 * per stream at 1,000). So: WARM_STREAMS streams that stay open to the end
 * (held in both samples, they cancel out; closing them would not do, as
 * lighttpd notices a vanished stream client only at the next keep-alive
 * write, up to 15 s later), and --warmup short GET /v1/poll?timeout=0
 * requests on WARM_CONNS connections, enough to reach every worker.
 */
unsigned warm_up(void)
{
    unsigned up = 0;
    int64_t deadline;
    if (!B.o.warmup || B.o.target != &target_lark ||
        B.nconns < B.warm_first + WARM_STREAMS + WARM_CONNS)
        return 0;
    subs_connect(B.warm_first, WARM_STREAMS, &up);
    B.warming = B.sending = 1;
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        if (conn_open(&B.conns[i]) == 0)
            sender_next(&B.conns[i]);
    deadline = now_ns() + 10 * NS_PER_S;
    while (B.st.answered < B.o.warmup && now_ns() < deadline)
        loop_step(10 * NS_PER_MS);
    B.warming = B.sending = 0;
    deadline = now_ns() + 2 * NS_PER_S;
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        while (B.conns[i].busy && now_ns() < deadline)
            loop_step(10 * NS_PER_MS);
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        conn_close(&B.conns[i]);
    loop_for(0.2);
    memset(&B.st, 0, sizeof(B.st));
    B.sub_lat.n = B.post_lat.n = 0;
    B.errbody[0] = '\0';
    return up;
}

unsigned senders_connect(void)
{
    unsigned open = 0;
    int64_t deadline = now_ns() + (int64_t)(B.o.timeout * NS_PER_S);
    for (unsigned j = 0; j < B.o.senders; j++)
        conn_open(sender_conn(j));
    while (now_ns() < deadline) {
        open = 0;
        for (unsigned j = 0; j < B.o.senders; j++)
            open += sender_conn(j)->state == CS_OPEN;
        if (open == B.o.senders)
            break;
        loop_step(10 * NS_PER_MS);
    }
    return open;
}

void senders_drain(void)
{
    int64_t deadline = now_ns() + (int64_t)((B.o.timeout + 1) * NS_PER_S);
    while (now_ns() < deadline) {
        unsigned pending = 0;
        for (unsigned j = 0; j < B.o.senders; j++)
            pending += sender_conn(j)->busy || sender_conn(j)->qlen;
        if (!pending)
            break;
        loop_step(10 * NS_PER_MS);
    }
}
