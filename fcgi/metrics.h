/*
 * metrics.h - larkd's counters, rendered as Prometheus text (GET /metrics).
 *
 * Process-wide atomics, like a Prometheus client library's default
 * registry: any thread bumps them without locks; metrics_render reads a
 * consistent-enough snapshot. Names and meanings are listed in
 * docs/OPERATIONS.md.
 */
#ifndef LARK_METRICS_H
#define LARK_METRICS_H

#include <stdint.h>

struct buf;

enum transport { TRANSPORT_SSE, TRANSPORT_POLL, TRANSPORT_WS, TRANSPORT_N };

/* "sse", "poll", "ws" */
const char *transport_name(enum transport t);

/* A connection was parked / left the hub (hangup: the client went away). */
void metrics_held_add(enum transport t);
void metrics_held_remove(enum transport t, int hangup);

/* Held connections of transport t right now. */
long metrics_held(enum transport t);

void metrics_message_sent(void);
/* A media upload (one-step, or the PUT of a two-step) of bytes was stored;
 * n unreferenced media were deleted by the retention sweep. */
void metrics_media_upload(uint64_t bytes);
void metrics_media_expired(unsigned long n);
void metrics_db_error(void);
/* An HTTP answer with this status was written. */
void metrics_response(int status);
/* The hub asked the store for a user's events (a connection behind its
 * user's tail, or of a user it had not read yet); and how often so far. */
void metrics_catchup_read(void);
unsigned long metrics_catchup_reads(void);

/* An event reached a held connection ns nanoseconds after its commit. */
void metrics_delivery_latency(int64_t ns);

/* The health check committed its write (ok = 1) or could not (ok = 0). */
void metrics_health_write(int ok);

/* A SIGHUP reload was applied (ok = 1) or refused (ok = 0). */
void metrics_reload(int ok);

/* Append the Prometheus text exposition to out; 0 or LARK_ETOOLARGE. */
int metrics_render(struct buf *out);

#endif
