/*
 * subs.c - subscribers over SSE, WebSocket or long-poll (see subs.h).
 *
 * One table of callbacks per transport; the target (target.h) supplies the
 * requests and the reading of its payloads.
 */
#include "tools/larkbench/subs.h"

#include "core/mem.h"
#include "tools/larkbench/conn.h"
#include "tools/larkbench/target.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what every transport shares ---------------------------------------- */

void sub_up(struct conn *c, int64_t t)
{
    c->ready = 1;
    B.subs_ready++;
    samples_add(&B.sub_lat, t - c->t_start);
}

void sub_failed(struct conn *c)
{
    if (c->ready) {
        c->ready = 0;
        B.subs_ready--;
        B.st.sub_drops++;
    }
    conn_close(c);
    if (B.sub_reconnect && c->reconnects < RECONNECT_MAX) {
        c->reconnects++;
        B.st.reconnects++;
        if (sub_start(c) == 0)
            return;
    }
    B.subs_failed++;
}

void sub_seq(struct conn *c, uint64_t seq)
{
    /* API.md: the per-user seq increases by exactly 1. */
    if (c->last_id && seq != c->last_id + 1)
        B.st.seq_gaps++;
    c->last_id = seq;
}

/* A fanout message arrived at subscriber c. */
static void deliver(struct conn *c, uint64_t k)
{
    struct msg *m = &B.msgs[k];
    if (m->to != c->idx) {
        B.st.misrouted++;
    } else if (m->ndeliv) {
        B.st.dup++;
        m->ndeliv += m->ndeliv < 255;
    } else {
        m->ndeliv = 1;
        m->t_deliv = B.t_recv;
        B.st.delivered++;
        if (status_acked(m->status))
            B.st.acked_delivered++;
        if (m->t_write)
            samples_add(&B.deliv_lat, B.t_recv - m->t_write);
    }
}

/* A group message arrived at member stream c. A message counts as
 * delivered (ndeliv) once every member has it. */
static void group_deliver(struct conn *c, uint64_t k)
{
    struct msg *m = &B.msgs[k];
    uint32_t member = c->slot - B.g.first;
    uint8_t *d;
    if (c->slot < B.g.first || member >= B.g.n) {
        B.st.misrouted++;
        return;
    }
    d = &B.g.deliv[k * B.g.n + member];
    if (*d) {
        B.st.dup++;
        *d += *d < 255;
        return;
    }
    *d = 1;
    B.st.delivered++;
    if (m->t_write)
        samples_add(&B.deliv_lat, B.t_recv - m->t_write);
    if (++B.g.count[k] == B.g.n) {
        m->ndeliv = 1;
        m->t_deliv = B.t_recv;
        if (status_acked(m->status))
            B.st.acked_delivered++;
        if (m->t_write)
            samples_add(&B.g.all_lat, B.t_recv - m->t_write);
    }
}

/* Message number of a client_msg_id of this run ("<tag>-<k>"), or -1. */
static int64_t cmid_number(const char *cmid)
{
    size_t tl = strlen(B.tag);
    char *end;
    unsigned long long k;
    if (strncmp(cmid, B.tag, tl) != 0 || cmid[tl] != '-' || cmid[tl + 1] < '0' ||
        cmid[tl + 1] > '9')
        return -1;
    k = strtoull(cmid + tl + 1, &end, 10);
    return *end || k >= B.planned ? -1 : (int64_t)k;
}

void sub_envelope(struct conn *c, const char *type, json_t *root)
{
    json_t *data = json_object_get(root, "data");
    const char *cmid;
    int64_t k;
    if (strcmp(type, "message") != 0) {
        /* group: the creation reaches every member (API.md) */
        const char *conv = json_string_value(json_object_get(data, "conversation_id"));
        if (strcmp(type, "conversation") == 0 && conv && strcmp(conv, B.g.conv) == 0)
            c->joined = 1;
        B.st.other_events++;
        return;
    }
    cmid = json_string_value(json_object_get(data, "client_msg_id"));
    if (!json_is_string(json_object_get(data, "sender")) || !cmid)
        B.st.bad_events++;
    else if ((k = cmid_number(cmid)) < 0)
        B.st.foreign++;
    else if (B.o.sc == SC_GROUP)
        group_deliver(c, (uint64_t)k);
    else
        deliver(c, (uint64_t)k);
}

void sub_json(struct conn *c, const char *type, const char *p, size_t n, int seq_in_data)
{
    json_error_t jerr;
    json_t *root, *seq;
    B.st.events++;
    if (B.o.sc != SC_FANOUT && B.o.sc != SC_GROUP && !seq_in_data)
        return; /* idle runs count events only */
    root = json_loadb(p, n, 0, &jerr);
    if (!root) {
        B.st.bad_events++;
        return;
    }
    if (!type)
        type = json_string_value(json_object_get(root, "type"));
    seq = json_object_get(root, "seq");
    if (seq_in_data && json_is_integer(seq))
        sub_seq(c, (uint64_t)json_integer_value(seq));
    if (!type)
        B.st.bad_events++;
    else if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP)
        sub_envelope(c, type, root);
    json_decref(root);
}

static int sub_waiting(const struct conn *c)
{
    return c->state == CS_OPEN && !c->ready;
}

/* An answer to a subscribe request that is not the expected one. */
static void sub_bad_status(struct conn *c)
{
    B.st.sub_status[c->resp.status < STATUS_MAX ? c->resp.status : 0]++;
}

/* ---- SSE ---------------------------------------------------------------- */

/* The connection a feed is for may be closed by an event's callbacks. */
static uint32_t feeding_gen;

static int sse_on_event(void *arg, const struct sse_event *ev)
{
    struct conn *c = arg;
    if (B.o.target->sse_seq_is_id && ev->has_id)
        sub_seq(c, strtoull(ev->id, NULL, 10));
    sub_json(c, ev->type, ev->data, ev->data_len, !B.o.target->sse_seq_is_id);
    return c->gen != feeding_gen; /* stop: the stream is gone */
}

static void sse_head(struct conn *c)
{
    if (c->resp.status != 200)
        sub_bad_status(c); /* the body is read to its end, then the stream counts as failed */
    else
        sub_up(c, B.t_recv);
}

static void sse_body(struct conn *c, const char *p, size_t n)
{
    int rc;
    if (c->resp.status != 200)
        return;
    feeding_gen = c->gen;
    rc = sse_feed(c->sse, p, n);
    if (rc < 0 && c->gen == feeding_gen)
        conn_fail(c, FAIL_PROTO); /* a line or event over EVENT_MAX */
}

static const struct conn_ops sse_ops = {
    .head = sse_head,
    .body = sse_body,
    .done = sub_failed, /* a stream that ends, or an error answer */
    .failed = sub_failed,
    .waiting = sub_waiting,
};

/* ---- WebSocket ---------------------------------------------------------- */

void sub_ws_put(struct conn *c, int opcode, const char *p, size_t n)
{
    uint64_t r = xorshift64(&B.rng);
    uint8_t key[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
    if (ws_frame_put(&c->out, 1, opcode, key, p, n) != 0)
        die("a WebSocket frame over OUT_MAX");
    conn_watch(c, 1);
}

/* The WebSocket handshake (RFC 6455 4.1), answered by mod_wstunnel. The
 * Sec-WebSocket-Accept of the answer is not checked: the server is trusted. */
void sub_ws_request(struct conn *c, const char *path)
{
    unsigned char nonce[16];
    char key[32];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = xorshift64(&B.rng);
        memcpy(nonce + i, &r, 8);
    }
    base64(nonce, sizeof(nonce), key);
    buf_printf(&c->out,
               "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
               path, B.o.host, key);
    conn_expect(c, HTTP_RESP_UPGRADE);
}

static void ws_head(struct conn *c)
{
    if (c->resp.status != 101)
        sub_bad_status(c);
    else
        B.o.target->ws_open(c);
}

static void ws_body(struct conn *c, const char *p, size_t n)
{
    (void)c;
    (void)p;
    (void)n; /* the body of a refused handshake: read and dropped */
}

/* Frames from the server, after the 101. */
static long ws_upgraded(struct conn *c, const char *p, size_t n)
{
    uint32_t gen = c->gen;
    size_t pos = 0;
    while (pos < n) { /* one frame per pass */
        struct ws_frame f;
        long used = ws_frame_parse(p + pos, n - pos, WS_FROM_SERVER, EVENT_MAX, &f);
        if (used <= 0)
            return used < 0 ? -1 : (long)pos;
        pos += (size_t)used;
        switch (f.opcode) {
        case WS_OP_PING:
            /* Queued only: writing here could close c under the parser.
             * lighttpd pings idle sessions every wstunnel.ping-interval. */
            sub_ws_put(c, WS_OP_PONG, (const char *)f.payload, (size_t)f.payload_len);
            break;
        case WS_OP_PONG: break;
        case WS_OP_CLOSE: sub_failed(c); return (long)pos;
        default:
            if (B.o.target->ws_data(c, f.fin, f.opcode, (const char *)f.payload,
                                    (size_t)f.payload_len) != 0)
                return -1;
        }
        if (c->gen != gen)
            return (long)pos;
    }
    return (long)pos;
}

static const struct conn_ops ws_ops = {
    .head = ws_head,
    .body = ws_body,
    .upgraded = ws_upgraded,
    .done = sub_failed,
    .failed = sub_failed,
    .waiting = sub_waiting,
};

/* ---- long-poll ---------------------------------------------------------- */

/* Queue the next poll of c (the connection may be opening). */
static int poll_next(struct conn *c)
{
    c->busy = 1;
    c->t_write = 0;
    buf_reset(&c->body);
    B.o.target->subscribe(c);
    return conn_send(c);
}

static void poll_head(struct conn *c)
{
    int s = c->resp.status;
    if (s == 200) {
        if (!c->ready && B.o.target->poll_head_early)
            sub_up(c, B.t_recv);
    } else if (s != 304 && s != 408) {
        sub_bad_status(c);
    }
}

static void poll_body(struct conn *c, const char *p, size_t n)
{
    if (c->resp.status == 200 && buf_append(&c->body, p, n) != 0)
        conn_fail(c, FAIL_PROTO); /* an answer over POLL_ANSWER_MAX */
}

static void poll_done(struct conn *c)
{
    uint32_t gen = c->gen;
    int s = c->resp.status;
    if (s != 200 && s != 304 && s != 408) {
        sub_failed(c); /* refused: as a stream that ends */
        return;
    }
    B.st.polls++;
    if (s == 200)
        B.o.target->poll_answer(c);
    if (c->gen != gen)
        return;
    c->busy = 0;
    if (c->resp.close) { /* the server's keep-alive limit: a new connection */
        B.st.keepalive_closes++;
        conn_close(c);
        if (conn_open(c) != 0) {
            sub_failed(c);
            return;
        }
    }
    poll_next(c);
}

static void poll_written(struct conn *c)
{
    if (!c->ready && !B.o.target->poll_head_early)
        sub_up(c, c->t_write);
}

static void poll_idle_closed(struct conn *c)
{
    conn_close(c);
    if (conn_open(c) != 0 || poll_next(c) != 0)
        sub_failed(c);
}

static const struct conn_ops poll_ops = {
    .head = poll_head,
    .body = poll_body,
    .done = poll_done,
    .failed = sub_failed,
    .written = poll_written,
    .idle_closed = poll_idle_closed,
    .waiting = sub_waiting,
};

/* ---- set-up ------------------------------------------------------------- */

const struct conn_ops *subs_ops(void)
{
    switch (B.o.transport) {
    case TR_WS: return &ws_ops;
    case TR_POLL: return &poll_ops;
    default: return &sse_ops;
    }
}

void sub_init(struct conn *c)
{
    c->ops = subs_ops();
    if (B.o.transport == TR_SSE) {
        c->sse = xmalloc(sizeof(*c->sse));
        sse_init(c->sse, EVENT_MAX, sse_on_event, c);
    } else if (B.o.transport == TR_WS) {
        c->wsm = xmalloc(sizeof(*c->wsm));
        ws_msg_init(c->wsm, EVENT_MAX);
    } else {
        c->body.max = POLL_ANSWER_MAX;
    }
}

void sub_release(struct conn *c)
{
    if (c->sse)
        sse_release(c->sse);
    if (c->wsm)
        ws_msg_release(c->wsm);
    free(c->sse);
    free(c->wsm);
    free(c->last_modified);
    free(c->etag);
    c->sse = NULL;
    c->wsm = NULL;
    c->last_modified = c->etag = NULL;
}

int sub_start(struct conn *c)
{
    if (conn_open(c) != 0)
        return -1;
    if (B.o.transport == TR_POLL)
        return poll_next(c);
    B.o.target->subscribe(c);
    return 0;
}

double subs_connect(uint32_t first, unsigned n, unsigned *up)
{
    int64_t t0 = now_ns();
    unsigned ready0 = B.subs_ready, settled0 = B.subs_ready + B.subs_failed;
    for (unsigned off = 0; off < n; off += B.o.batch) {
        unsigned last = off + B.o.batch < n ? off + B.o.batch : n;
        int64_t deadline = now_ns() + (int64_t)((B.o.timeout + 1) * NS_PER_S);
        for (unsigned i = off; i < last; i++)
            if (sub_start(&B.conns[first + i]) != 0)
                B.subs_failed++;
        while (B.subs_ready + B.subs_failed - settled0 < last && now_ns() < deadline)
            loop_step(20 * NS_PER_MS);
        if (B.subs_ready + B.subs_failed - settled0 < last) {
            fprintf(stderr, "larkbench: %u of %u streams up after %.0f s; giving up\n",
                    B.subs_ready - ready0, last, B.o.timeout + 1);
            break;
        }
    }
    *up = B.subs_ready - ready0;
    return (double)(now_ns() - t0) / NS_PER_S;
}
