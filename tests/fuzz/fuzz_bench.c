/*
 * fuzz_bench.c - libFuzzer target for larkbench's parsers of what servers
 * send: HTTP/1.1 responses (tools/larkbench/httpresp), Server-Sent Events
 * (sse) and WebSocket frames (ws).
 *
 * Input layout: a selector byte (parser, and for HTTP the upgrade flag),
 * two bytes of split point, then the bytes a server would send. Each
 * parser reads them whole and cut in two at the split point, and must
 * give exactly the same result both ways (the property the bench's
 * figures rest on: TCP cuts anywhere); it must never claim bytes it was
 * not given nor grow past its limits. WebSocket frames that parse are
 * also written back with ws_frame_put and must parse to the same frame.
 */
#include "core/buf.h"
#include "core/err.h"
#include "tools/larkbench/httpresp.h"
#include "tools/larkbench/sse.h"
#include "tools/larkbench/ws.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a parse produced, as bytes to compare. */
#define TRACE_MAX (1 << 20)

/* ---- HTTP ---------------------------------------------------------------- */

static void http_run(const uint8_t *in, size_t n, size_t split, unsigned flags, struct buf *trace)
{
    struct http_resp r;
    struct buf pending;
    size_t reads[2] = {split, n - split};
    int stop = 0;
    buf_init(&pending, n + 1);
    http_resp_init(&r, NULL, NULL);
    http_resp_expect(&r, flags);
    for (int k = 0; k < 2 && !stop; k++) {
        size_t pos = 0;
        CHECK(buf_append(&pending, in + (k ? split : 0), reads[k]) == 0);
        while (pos < pending.len && r.phase != HTTP_RESP_UPGRADED) { /* a step per pass */
            struct http_resp_out out;
            long used = http_resp_step(&r, pending.data + pos, pending.len - pos, &out);
            if (used < 0) {
                buf_printf(trace, "E%ld;", used);
                stop = 1;
                break;
            }
            CHECK((size_t)used <= pending.len - pos);
            if (used == 0)
                break;
            CHECK(!out.body || (out.body >= pending.data + pos &&
                                out.body + out.body_len <= pending.data + pos + (size_t)used));
            pos += (size_t)used;
            if (out.events & HTTP_RESP_EV_HEAD)
                buf_printf(trace, "H%d,%d;", r.status, r.close);
            if (out.body_len)
                buf_append(trace, out.body, out.body_len);
            if (out.events & HTTP_RESP_EV_DONE) {
                buf_puts(trace, "D;");
                http_resp_expect(&r, flags); /* keep-alive: the next answer */
            }
        }
        buf_consume(&pending, pos);
        CHECK(pending.len <= HTTP_RESP_HEAD_MAX + 4 || stop || r.phase == HTTP_RESP_UPGRADED);
    }
    buf_printf(trace, "P%d;R%zu;", (int)r.phase, stop ? 0 : pending.len);
    buf_release(&pending);
}

/* ---- SSE ----------------------------------------------------------------- */

static int sse_cb(void *arg, const struct sse_event *ev)
{
    struct buf *trace = arg;
    CHECK(strlen(ev->type) < SSE_TYPE_MAX && strlen(ev->id) < SSE_ID_MAX);
    CHECK(ev->data[ev->data_len] == '\0');
    buf_printf(trace, "%s|%s|%d|%zu:", ev->type, ev->id, ev->has_id, ev->data_len);
    buf_append(trace, ev->data, ev->data_len);
    buf_putc(trace, ';');
    return 0;
}

static void sse_run(const uint8_t *in, size_t n, size_t split, struct buf *trace)
{
    struct sse_parser p;
    int rc;
    sse_init(&p, 4096, sse_cb, trace);
    rc = sse_feed(&p, (const char *)in, split);
    if (rc == 0)
        rc = sse_feed(&p, (const char *)in + split, n - split);
    CHECK(rc == 0 || rc == LARK_ETOOLARGE);
    CHECK(p.line.len <= 4096 && p.data.len <= 4096);
    buf_printf(trace, "rc%d;retry%ld;id%s;", rc, p.retry_ms, p.id);
    sse_release(&p);
}

/* ---- WebSocket ----------------------------------------------------------- */

/* Write f back as a frame and parse it again: the same frame. */
static void ws_round_trip(const struct ws_frame *f, enum ws_from from)
{
    struct buf out;
    struct ws_frame g;
    uint8_t *payload = malloc(f->payload_len ? f->payload_len : 1);
    long got;
    CHECK(payload);
    memcpy(payload, f->payload, f->payload_len);
    if (f->masked)
        ws_unmask(payload, f->payload_len, f->mask, 0);
    buf_init(&out, f->payload_len + WS_HEADER_MAX);
    CHECK(ws_frame_put(&out, f->fin, f->opcode, f->masked ? f->mask : NULL, payload,
                       f->payload_len) == 0);
    got = ws_frame_parse(out.data, out.len, from, UINT64_MAX, &g);
    CHECK(got == (long)out.len && g.fin == f->fin && g.opcode == f->opcode &&
          g.payload_len == f->payload_len && g.header_len == f->header_len);
    CHECK(memcmp(g.payload, f->payload, f->payload_len) == 0);
    buf_release(&out);
    free(payload);
}

static void ws_run(const uint8_t *in, size_t n, size_t split, enum ws_from from, struct buf *trace)
{
    struct buf pending;
    struct ws_msg m;
    size_t reads[2] = {split, n - split};
    int stop = 0;
    buf_init(&pending, n + 1);
    ws_msg_init(&m, 8192);
    for (int k = 0; k < 2 && !stop; k++) {
        long used;
        CHECK(buf_append(&pending, in + (k ? split : 0), reads[k]) == 0);
        while (!stop) { /* a frame per pass */
            struct ws_frame f;
            used = ws_frame_parse(pending.data, pending.len, from, 4096, &f);
            if (used <= 0) {
                if (used < 0) {
                    buf_printf(trace, "E%ld;", used);
                    stop = 1;
                }
                break;
            }
            CHECK((size_t)used <= pending.len && f.header_len + f.payload_len == (size_t)used);
            ws_round_trip(&f, from);
            buf_printf(trace, "F%d,%d,%d,%zu;", f.fin, f.opcode, f.masked, (size_t)f.payload_len);
            if (f.opcode < WS_OP_CLOSE) {
                int rc = ws_msg_add(&m, f.fin, f.opcode, f.payload, (size_t)f.payload_len);
                buf_printf(trace, "M%d,%zu;", rc, rc == 1 ? m.data.len : 0);
            }
            buf_consume(&pending, (size_t)used);
        }
    }
    buf_printf(trace, "R%zu;", stop ? 0 : pending.len);
    ws_msg_release(&m);
    buf_release(&pending);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf whole, cut;
    size_t n, split;
    const uint8_t *in;
    unsigned sel;
    if (size < 3)
        return 0;
    sel = data[0];
    split = (size_t)data[1] << 8 | data[2];
    in = data + 3;
    n = size - 3;
    split = n ? split % (n + 1) : 0;
    buf_init(&whole, TRACE_MAX);
    buf_init(&cut, TRACE_MAX);
    switch (sel % 4) {
    case 0:
    case 1:
        http_run(in, n, n, sel & 1 ? HTTP_RESP_UPGRADE : 0, &whole);
        http_run(in, n, split, sel & 1 ? HTTP_RESP_UPGRADE : 0, &cut);
        break;
    case 2:
        sse_run(in, n, n, &whole);
        sse_run(in, n, split, &cut);
        break;
    default:
        ws_run(in, n, n, sel & 4 ? WS_FROM_CLIENT : WS_FROM_SERVER, &whole);
        ws_run(in, n, split, sel & 4 ? WS_FROM_CLIENT : WS_FROM_SERVER, &cut);
        break;
    }
    CHECK(whole.len == cut.len);
    CHECK(whole.len == 0 || memcmp(whole.data, cut.data, whole.len) == 0);
    buf_release(&whole);
    buf_release(&cut);
    return 0;
}
