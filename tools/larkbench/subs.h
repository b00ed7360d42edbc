/*
 * subs.h - subscribers: a held SSE stream, a WebSocket session or a
 * long-poll loop per user, and what they do with the events they read
 * (deliveries, duplicates, misroutes, seq gaps, timing).
 *
 * A subscriber is up when its stream can be relied on to deliver: SSE at
 * the 200 head; WebSocket when the target says (lark: the pong after the
 * auth line; Nchan: the 101); long-poll at the first head (lark, which
 * writes it at once) or once the first request is written (Nchan, which
 * answers only with a message). Subscribers that fail while the fanout
 * window runs reconnect (at most RECONNECT_MAX times) and resume.
 * One thread.
 */
#ifndef LARK_BENCH_SUBS_H
#define LARK_BENCH_SUBS_H

#include "tools/larkbench/bench.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The callbacks of the run's transport (B.o.transport). */
const struct conn_ops *subs_ops(void);

/* Give c what its transport needs (parser state); once, at set-up. */
void sub_init(struct conn *c);
void sub_release(struct conn *c);

/* Open (or reopen) c and send its subscribe request; 0 or -1. */
int sub_start(struct conn *c);

/* c is up; t is when (the read that showed it, or the write). */
void sub_up(struct conn *c, int64_t t);

/* c ended or broke: count it, close it, reconnect when allowed. */
void sub_failed(struct conn *c);

/* The per-user seq of an event c read: a gap when it does not follow. */
void sub_seq(struct conn *c, uint64_t seq);

/* A stored event of type at c, its envelope parsed: find this run's
 * messages. */
void sub_envelope(struct conn *c, const char *type, json_t *root);

/* An event's JSON text at c: counted, then (fanout and group runs)
 * parsed; type NULL takes the envelope's "type"; seq_in_data checks the
 * envelope's "seq" for gaps. */
void sub_json(struct conn *c, const char *type, const char *p, size_t n, int seq_in_data);

/* Queue the WebSocket handshake (RFC 6455 4.1) for path in c->out. */
void sub_ws_request(struct conn *c, const char *path);

/* Queue a client frame (masked with a fresh key, RFC 6455 5.3) on c. */
void sub_ws_put(struct conn *c, int opcode, const char *p, size_t n);

/*
 * Open the streams of slots [first, first + n) in batches of --batch: a
 * batch must be up (or failed, or timed out) before the next starts, so
 * the server's listen backlog is never flooded. Returns the seconds taken;
 * *up gets how many came up.
 */
double subs_connect(uint32_t first, unsigned n, unsigned *up);

#endif
