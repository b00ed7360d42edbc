/*
 * events.h - inbox events as bytes on the wire: SSE frames, long-poll
 * answers and WebSocket lines.
 *
 * The workers (answers they can give at once, CGI) and the hub (answers
 * that waited) write the same shapes, so they are made in one place. A
 * stored event arrives as its seq and its data rendered once (evdata.h);
 * its envelope {"seq":N,"type":T,"data":D} is assembled here around those
 * bytes - the same bytes core/json.h's json_dump would make of the
 * envelope object, which tests/unit/test_events.c checks - so nothing is
 * parsed or rendered again on the way out. Each function stops before out
 * would exceed a byte budget, always taking at least one event, so that one
 * answer never outgrows the hub's per-connection buffer however large the
 * messages; the caller resumes from the returned seq.
 *
 * SSE (WHATWG HTML, "server-sent events"): a stored event is
 *   id: <seq>\nevent: <type>\ndata: <envelope JSON>\n\n
 * Compact JSON never contains a raw newline, so one data: line suffices.
 * WebSocket (API.md): one envelope per line, ASCII-only.
 *
 * Pure functions over borrowed data; thread-safe, except events_lines
 * (evdata_ascii: hub thread only).
 */
#ifndef LARK_EVENTS_H
#define LARK_EVENTS_H

#include "core/store.h"

#include <stddef.h>
#include <stdint.h>

struct buf;
struct evdata;

/* Bytes of events one answer carries before it stops (at least one event;
 * limits.h caps message sizes so that any one event fits). */
#define EVENTS_BUDGET (1024 * 1024)
/* Room for one answer: the budget, plus the one event that may cross it. */
#define EVENTS_ANSWER_MAX (2 * EVENTS_BUDGET)

/* Append the envelope of the event seq with data d (its ASCII rendering
 * when ascii: hub thread only). 0, or LARK_ETOOLARGE if out is full (out
 * is then unchanged). */
int events_envelope(struct buf *out, uint64_t seq, struct evdata *d, int ascii);

/*
 * Append SSE frames for n stored events. Returns how many were appended;
 * *last is the seq of the last one (unchanged if none).
 */
size_t events_sse(const struct store_event *evs, size_t n, size_t budget, struct buf *out,
                  uint64_t *last);

/* The same as WebSocket lines (ASCII envelopes, each ending in \n). Hub
 * thread only. */
size_t events_lines(const struct store_event *evs, size_t n, size_t budget, struct buf *out,
                    uint64_t *last);

/*
 * A long-poll answer {"events":[...],"next":N}, built in three steps:
 * begin, any number of ephemeral envelopes and stored events, end. next is
 * the seq of the last stored event included, or the cursor given to begin.
 */
struct events_poll {
    struct buf *out;
    size_t start;  /* where the first event starts in out */
    size_t count;  /* events included */
    size_t budget; /* bytes of events it may take */
    uint64_t next;
};

void events_poll_begin(struct events_poll *p, struct buf *out, uint64_t cursor, size_t budget);
/* Add an ephemeral envelope (compact JSON text). 0, or -1 when it would
 * pass the budget (it is then not added). */
int events_poll_raw(struct events_poll *p, const char *json, size_t len);
/* Add stored events; returns how many were added. */
size_t events_poll_stored(struct events_poll *p, const struct store_event *evs, size_t n);
/* Close the answer; returns how many events it holds. */
size_t events_poll_end(struct events_poll *p);

#endif
