/*
 * conn.h - larkbench's connections and its one event loop (epoll,
 * non-blocking sockets, deadlines).
 *
 * A connection (struct conn, bench.h) carries the callbacks of its role
 * (struct conn_ops): a sender's, or a subscriber's of one transport. The
 * loop reads, runs the HTTP parser (httpresp.h) and calls them; it knows
 * no role. Each callback may close or reopen the connection: the loop
 * notices by c->gen and stops touching it.
 *
 * Times: B.t_recv is when the bytes being handed over were read, the
 * moment every latency ends; c->t_write is when the request was fully
 * with the kernel, where a POST's latency starts.
 *
 * Every wait has a deadline (--timeout, checked every 100 ms) and every
 * loop a bound. One thread.
 */
#ifndef LARK_BENCH_CONN_H
#define LARK_BENCH_CONN_H

#include "tools/larkbench/bench.h"

#include <stddef.h>
#include <stdint.h>

struct conn_ops {
    /* The head of a final answer was read (c->resp.status). */
    void (*head)(struct conn *c);
    /* Body bytes of the answer, borrowed for the call. */
    void (*body)(struct conn *c, const char *p, size_t n);
    /* After a 101: the other protocol's bytes; returns how many it used
     * (the rest stays for the next read), or -1 on a protocol error
     * (counted; c->ops->failed follows). */
    long (*upgraded)(struct conn *c, const char *p, size_t n);
    /* The answer is complete. */
    void (*done)(struct conn *c);
    /* The connection broke (the kind is counted already): close it, and
     * recover as the role does. */
    void (*failed)(struct conn *c);
    /* The request is with the kernel (c->t_write is set). */
    void (*written)(struct conn *c);
    /* The server closed the connection while no answer was due. */
    void (*idle_closed)(struct conn *c);
    /* Is c waiting for something with a deadline (--timeout)? */
    int (*waiting)(const struct conn *c);
};

/* Start a non-blocking connect to --port (or --sub-port for c->to_sub);
 * 0, or -1 (counted) if the socket failed at once. */
int conn_open(struct conn *c);

/* Close the socket and forget every partial state; c->gen changes. */
void conn_close(struct conn *c);

/* Queue nothing, write what c->out holds if connected; 0, or -1 when the
 * connection broke (and was failed). A request counts as written (and
 * c->ops->written runs) when c->busy and c->out has drained. */
int conn_send(struct conn *c);

/* A request was queued in c->out: expect its answer (flags: httpresp.h). */
void conn_expect(struct conn *c, unsigned flags);

/* Register or drop interest in EPOLLOUT. */
void conn_watch(struct conn *c, int out);

/* Count the failure, then c->ops->failed. */
void conn_fail(struct conn *c, enum fail why);

/* Wait up to timeout_ns for events, handle them, then the deadlines. */
void loop_step(int64_t timeout_ns);

/* Run the loop for secs seconds. */
void loop_for(double secs);

#endif
