/*
 * target_nchan.c - Nchan (nginx's pub/sub module) as the server under
 * test, configured by tools/nchan.conf: one channel per user, messages in
 * memory, a publisher location and one subscriber location per transport.
 *
 * What Nchan's documentation (its README, "Publisher Endpoints" and
 * "Subscriber Endpoints") says, and this file relies on:
 *   - POST /pub/<channel> publishes the body; 201 when the channel had
 *     subscribers, 202 when it had none (the message is kept all the same:
 *     the last nchan_message_buffer_length messages of a channel are).
 *   - Long-poll: "send a request with the If-Modified-Since header set to
 *     the previous response's Last-Modified header, and If-None-Match
 *     likewise set to the previous response's Etag header"; without them
 *     the first answer is the oldest message kept (first_message oldest),
 *     or the next one published. One message per answer.
 *   - EventSource: "Accept: text/event-stream", each message as
 *     "id: <time>:<tag>" and "data:" lines; resumed with Last-Event-ID.
 *   - WebSocket: each message in one text frame.
 * The published body is an envelope like lark's events,
 * {"seq":S,"type":"message","data":{"sender","client_msg_id","body"}},
 * where S is the message's number among its recipient's (numbered by the
 * bench: each recipient hears from one sender, one request at a time), so
 * that gaps and order are checked as for lark's seq.
 */
#include "tools/larkbench/target.h"

#include "core/mem.h"
#include "tools/larkbench/conn.h"
#include "tools/larkbench/subs.h"

#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

static int nchan_acked(int status)
{
    return status == 201 || status == 202;
}

static void nchan_publish(struct conn *c, const char *field, const char *to, const char *cmid,
                          uint64_t seq)
{
    (void)field; /* no conversations: fanout only (main.c) */
    buf_reset(&B.scratch);
    buf_printf(&B.scratch,
               "{\"seq\":%" PRIu64 ",\"type\":\"message\",\"data\":{\"sender\":\"%s\","
               "\"client_msg_id\":\"%s\",\"body\":\"%s\"}}",
               seq, B.users[c->slot], cmid, B.body_text);
    buf_printf(&c->out,
               "POST /pub/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\n\r\n",
               to, B.o.host, B.scratch.len);
    if (buf_append(&c->out, B.scratch.data, B.scratch.len) != 0)
        die("request over OUT_MAX (--body-bytes too large)");
}

static void nchan_subscribe(struct conn *c)
{
    const char *user = B.users[c->slot];
    switch (B.o.transport) {
    case TR_WS: {
        char path[128];
        snprintf(path, sizeof(path), "/ws/%s", user);
        sub_ws_request(c, path);
        return;
    }
    case TR_POLL:
        if (!c->etag) {
            c->etag = xcalloc(1, RESUME_MAX);
            c->last_modified = xcalloc(1, RESUME_MAX);
        }
        buf_printf(&c->out, "GET /poll/%s HTTP/1.1\r\nHost: %s\r\n", user, B.o.host);
        if (c->last_modified[0])
            buf_printf(&c->out, "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n", c->last_modified,
                       c->etag);
        buf_puts(&c->out, "\r\n");
        break;
    case TR_SSE:
        buf_printf(&c->out, "GET /sse/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n",
                   user, B.o.host);
        if (c->sse->id[0])
            buf_printf(&c->out, "Last-Event-ID: %s\r\n", c->sse->id);
        buf_puts(&c->out, "\r\n");
        break;
    }
    conn_expect(c, 0);
}

/* Keep a long-poll answer's Last-Modified and Etag for the next request. */
static void nchan_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct conn *c = arg;
    char *to = NULL;
    if (!c->etag)
        return;
    if (nlen == 4 && strncasecmp(name, "etag", 4) == 0)
        to = c->etag;
    else if (nlen == 13 && strncasecmp(name, "last-modified", 13) == 0)
        to = c->last_modified;
    if (to)
        snprintf(to, RESUME_MAX, "%.*s", (int)vlen, value);
}

static void nchan_ws_open(struct conn *c)
{
    /* Nchan writes the 101 as it enqueues the subscriber on its channel
     * (websocket_enqueue, src/subscribers/websocket.c). */
    sub_up(c, B.t_recv);
}

static int nchan_ws_data(struct conn *c, int fin, int opcode, const char *p, size_t n)
{
    int rc = ws_msg_add(c->wsm, fin, opcode, p, n);
    if (rc < 0)
        return -1;
    if (rc == 1)
        sub_json(c, NULL, c->wsm->data.data, c->wsm->data.len, 1);
    return 0;
}

static void nchan_poll_answer(struct conn *c)
{
    sub_json(c, NULL, c->body.data ? c->body.data : "", c->body.len, 1);
}

const struct target target_nchan = {
    .name = "nchan",
    .sse_seq_is_id = 0,
    .poll_head_early = 0,
    .needs_tokens = 0,
    .acked = nchan_acked,
    .publish = nchan_publish,
    .subscribe = nchan_subscribe,
    .on_header = nchan_header,
    .ws_open = nchan_ws_open,
    .ws_data = nchan_ws_data,
    .poll_answer = nchan_poll_answer,
};
