/*
 * target.h - the server under test, as a table of functions: its URLs,
 * its requests and how its answers carry the events.
 *
 * Two targets, so that a peer can be measured by the same client in the
 * same run (docs/BENCHMARKS.md, "Side by side with Nchan"):
 *   lark   POST /v1/messages (JWT), GET /v1/events (SSE), GET /v1/poll
 *          (long-poll, resumed with since=next), GET /v1/ws (API.md).
 *   nchan  POST /pub/<user> (tools/nchan.conf: one channel per user, the
 *          body a JSON envelope like lark's carrying the run's
 *          client_msg_id and a per-recipient seq numbered by the bench),
 *          GET /sse/<user> (Accept: text/event-stream), GET /poll/<user>
 *          (long-poll, resumed with If-Modified-Since and If-None-Match
 *          set to the previous answer's Last-Modified and Etag),
 *          GET /ws/<user> (one message per text frame).
 * The transports' mechanics (parsers, up/down, gaps) are subs.c's; a
 * target only says what differs. One thread.
 */
#ifndef LARK_BENCH_TARGET_H
#define LARK_BENCH_TARGET_H

#include "tools/larkbench/bench.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct target {
    const char *name;    /* "lark" or "nchan": reports and the JSON line */
    int sse_seq_is_id;   /* SSE id: lines are the per-user seq (lark), not the data's seq */
    int poll_head_early; /* a held long-poll sends its head at once: up at the head (lark);
                            else up once the first request is written (Nchan) */
    int needs_tokens;    /* requests carry the users' JWTs */
    /* Was a publish answered with this status accepted? */
    int (*acked)(int status);
    /* Queue a publish in c->out: message cmid to user `to` (or, with
     * field "conversation_id", to that conversation); seq is the bench's
     * number of the message for its recipient (Nchan's envelope). */
    void (*publish)(struct conn *c, const char *field, const char *to, const char *cmid,
                    uint64_t seq);
    /* Queue the subscribe request of B.o.transport in c->out (a
     * reconnection resumes after c->last_id or the target's resume state). */
    void (*subscribe)(struct conn *c);
    /* Header fields of every answer to a subscriber (may be NULL). */
    http_header_fn *on_header;
    /* WebSocket: the 101 was read. */
    void (*ws_open)(struct conn *c);
    /* WebSocket: a data frame's payload. 0, or -1 on a protocol error. */
    int (*ws_data)(struct conn *c, int fin, int opcode, const char *p, size_t n);
    /* Long-poll: a 200 answer is in c->body; deliver its events. */
    void (*poll_answer)(struct conn *c);
};

extern const struct target target_lark;
extern const struct target target_nchan;

#endif
