/*
 * target_lark.c - lark as the server under test (API.md): lighttpd +
 * larkd, users authenticated by HS256 JWTs minted like tools/lark-token.
 */
#include "tools/larkbench/target.h"

#include "tools/larkbench/conn.h"
#include "tools/larkbench/subs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int lark_acked(int status)
{
    return status == 201;
}

/* POST /v1/messages to a user (field "to") or a conversation
 * ("conversation_id"). */
static void lark_publish(struct conn *c, const char *field, const char *to, const char *cmid,
                         uint64_t seq)
{
    (void)seq; /* lark numbers its inboxes itself */
    buf_reset(&B.scratch);
    buf_printf(&B.scratch, "{\"%s\":\"%s\",\"client_msg_id\":\"%s\",\"body\":\"%s\"}", field, to,
               cmid, B.body_text);
    buf_printf(&c->out,
               "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
               B.o.host, B.tokens[c->slot], B.scratch.len);
    if (buf_append(&c->out, B.scratch.data, B.scratch.len) != 0)
        die("request over OUT_MAX (--body-bytes too large)");
}

static void lark_subscribe(struct conn *c)
{
    switch (B.o.transport) {
    case TR_WS: sub_ws_request(c, "/v1/ws"); return;
    case TR_POLL:
        /* API.md "GET /v1/poll": since=next of the previous answer. */
        buf_printf(&c->out,
                   "GET /v1/poll?since=%" PRIu64 "&timeout=%u HTTP/1.1\r\nHost: %s\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   c->last_id, B.o.poll_timeout, B.o.host, B.tokens[c->slot]);
        break;
    case TR_SSE:
        buf_printf(&c->out,
                   "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                   "Accept: text/event-stream\r\n",
                   B.o.host, B.tokens[c->slot]);
        /* A reconnecting stream resumes where it was, like EventSource. */
        if (c->last_id)
            buf_printf(&c->out, "Last-Event-ID: %" PRIu64 "\r\n", c->last_id);
        buf_puts(&c->out, "\r\n");
        break;
    }
    conn_expect(c, 0);
}

/* After the 101: the auth line (API.md "WebSocket"), resuming after the
 * last seq like Last-Event-ID, then a ping. Nothing answers a good auth,
 * but the session's lines are handled in order and auth must finish
 * before the next is read (fcgi/wsbridge.c), so the pong says the session
 * is authenticated and its stream is live. */
static void lark_ws_open(struct conn *c)
{
    static const char ping[] = "{\"type\":\"ping\"}\n";
    buf_reset(&B.scratch);
    buf_printf(&B.scratch, "{\"type\":\"auth\",\"token\":\"%s\"", B.tokens[c->slot]);
    if (c->last_id)
        buf_printf(&B.scratch, ",\"since\":%" PRIu64, c->last_id);
    buf_puts(&B.scratch, "}\n");
    sub_ws_put(c, WS_OP_TEXT, B.scratch.data, B.scratch.len);
    sub_ws_put(c, WS_OP_TEXT, ping, sizeof(ping) - 1);
}

/* One line of a WebSocket session: pong, error, or an event envelope. */
static void ws_line_in(struct conn *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr), *seq = json_object_get(root, "seq");
    const char *type = json_string_value(json_object_get(root, "type"));

    if (!type) {
        B.st.bad_events++;
    } else if (strcmp(type, "pong") == 0) {
        if (!c->ready)
            sub_up(c, B.t_recv);
    } else if (strcmp(type, "error") == 0 || strcmp(type, "reconnect") == 0) {
        B.st.ws_errors++;
        if (!B.suberr[0])
            snprintf(B.suberr, sizeof(B.suberr), "%.*s", (int)len, line);
    } else if (json_is_integer(seq)) {
        sub_seq(c, (uint64_t)json_integer_value(seq));
        B.st.events++;
        if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP)
            sub_envelope(c, type, root);
    } else {
        B.st.other_events++; /* ephemeral: typing, presence */
    }
    json_decref(root);
}

/* Frame payloads are one byte stream of newline-delimited JSON: mod_wstunnel
 * cuts lines into frames anywhere (API.md "WebSocket"). */
static int lark_ws_data(struct conn *c, int fin, int opcode, const char *p, size_t n)
{
    size_t start = 0;
    uint32_t gen = c->gen;
    (void)fin;
    (void)opcode;
    if (buf_append(&c->body, p, n) != 0)
        return -1;                /* a line over EVENT_MAX */
    while (start < c->body.len) { /* one line per pass */
        const char *nl = memchr(c->body.data + start, '\n', c->body.len - start);
        size_t len;
        if (!nl)
            break;
        len = (size_t)(nl - (c->body.data + start));
        if (len)
            ws_line_in(c, c->body.data + start, len);
        if (c->gen != gen)
            return 0;
        start += len + 1;
    }
    buf_consume(&c->body, start);
    return 0;
}

/* {"events":[envelopes...],"next":N}, perhaps after the whitespace a held
 * poll trickles (API.md "GET /v1/poll"). */
static void lark_poll_answer(struct conn *c)
{
    json_error_t jerr;
    json_t *root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &jerr);
    json_t *events = json_object_get(root, "events"), *next = json_object_get(root, "next");
    json_t *ev;
    size_t i;
    if (!json_is_array(events) || !json_is_integer(next)) {
        B.st.bad_events++;
        json_decref(root);
        return;
    }
    json_array_foreach (events, i, ev) {
        json_t *seq = json_object_get(ev, "seq");
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (json_is_integer(seq))
            sub_seq(c, (uint64_t)json_integer_value(seq));
        B.st.events++;
        if (!type)
            B.st.bad_events++;
        else if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP)
            sub_envelope(c, type, ev);
    }
    if ((uint64_t)json_integer_value(next) > c->last_id)
        c->last_id = (uint64_t)json_integer_value(next);
    json_decref(root);
}

const struct target target_lark = {
    .name = "lark",
    .sse_seq_is_id = 1,
    .poll_head_early = 1,
    .needs_tokens = 1,
    .acked = lark_acked,
    .publish = lark_publish,
    .subscribe = lark_subscribe,
    .on_header = NULL,
    .ws_open = lark_ws_open,
    .ws_data = lark_ws_data,
    .poll_answer = lark_poll_answer,
};
