/*
 * senders.h - the publishing side of a run, and the connections' set-up.
 *
 * A sender is one user on one keep-alive connection with one request in
 * flight, like a browser: no pipelining (lighttpd serves pipelined requests
 * one after the other anyway, and the server-side wait behind an earlier
 * request would be counted in a later request's latency). In fanout and
 * group runs it takes message numbers from its own queue (filled by the
 * schedule, fanout.c); in throughput runs it sends as fast as answers come.
 *
 * Slots of B.conns: [0, nsubs) subscribers, then nsenders senders, then
 * (warm-up) WARM_STREAMS streams and WARM_CONNS pollers. One thread.
 */
#ifndef LARK_BENCH_SENDERS_H
#define LARK_BENCH_SENDERS_H

#include "tools/larkbench/bench.h"

/* Allocate the connections, their users (sub_kind-<i> for subscribers,
 * snd-<j>, warm-<i>) and, for lark, their tokens. */
void conns_init(unsigned nsubs, unsigned nsenders, int warm, const char *sub_kind);
void conns_free(void);

/* Sender j's connection. */
struct conn *sender_conn(unsigned j);

/* Start the next request on an idle sender, if there is one to send. */
void sender_next(struct conn *c);

/* Open every sender and wait (bounded) until all are connected; how many are. */
unsigned senders_connect(void);

/* Wait (bounded) for the answers still outstanding after a window. */
void senders_drain(void);

/*
 * Warm larkd up before the "before" memory sample (docs/BENCHMARKS.md,
 * "Warm-up"); returns the warm-up streams up. Does nothing with --warmup 0
 * or a target other than lark.
 */
unsigned warm_up(void);

#endif
