/*
 * sse.h - larkbench's Server-Sent Events parser (the WHATWG HTML
 * "event stream interpretation", as a browser's EventSource reads it).
 *
 * Why: every SSE delivery figure of docs/BENCHMARKS.md is the moment this
 * parser hands an event over, for lark (id: seq, event: type, data: JSON
 * envelope) and for Nchan (id: time:tag, data: the published body), so it
 * reads the stream exactly as EventSource does: lines end in CRLF, LF or a
 * lone CR (a CR at the end of one read and an LF at the start of the next
 * are one line end); a blank line dispatches; ":" starts a comment; a
 * field without a colon has an empty value; one space after the colon is
 * dropped; data lines are joined with LF; an event with no data line is
 * not dispatched; "id" sets the last event id, which outlives the event
 * (unless it holds a NUL); "retry" counts only if all digits; unknown
 * fields are ignored. Not done: stripping a leading byte order mark (no
 * server here sends one).
 *
 * Shape: pure (no I/O). The body of the answer is fed in pieces of any
 * size; events come out through a callback. Bounded: a line or an event's
 * data over the parser's max is an error, never an allocation past it.
 * Not thread-safe; one parser per stream.
 */
#ifndef LARK_BENCH_SSE_H
#define LARK_BENCH_SSE_H

#include "core/buf.h"

#include <stddef.h>

/* Longest event type and last event id kept (longer ones are cut). */
#define SSE_TYPE_MAX 64
#define SSE_ID_MAX 128

/* One dispatched event; every pointer is borrowed for the callback only. */
struct sse_event {
    const char *type; /* the event: field, "message" when there was none */
    const char *data; /* data lines joined by LF, NUL-terminated (may hold NULs) */
    size_t data_len;
    const char *id; /* the stream's last event id ("" if none yet) */
    int has_id;     /* this event had an id: line of its own */
};

/* Returns 0 to go on, anything else to stop sse_feed at once (which then
 * returns it). */
typedef int sse_event_fn(void *arg, const struct sse_event *ev);

struct sse_parser {
    struct buf line;         /* the current line, not yet ended */
    struct buf data;         /* the event's data lines so far, joined by LF */
    char type[SSE_TYPE_MAX]; /* the event's type so far, "" for none */
    char id[SSE_ID_MAX];     /* last event id */
    int has_data;            /* the event has a data line */
    int has_id;              /* the event has an id line */
    int cr;                  /* the last byte fed was a CR: an LF next belongs to it */
    long retry_ms;           /* the last valid retry: value, -1 if none */
    sse_event_fn *on_event;
    void *arg;
};

/* A parser whose lines and events may reach max bytes each. */
void sse_init(struct sse_parser *p, size_t max, sse_event_fn *on_event, void *arg);

/* Free the buffers. Accepts a parser never fed. */
void sse_release(struct sse_parser *p);

/* A new stream (a reconnection): forget the partial line and event; keep
 * the last event id, as EventSource does to send it as Last-Event-ID. */
void sse_restart(struct sse_parser *p);

/*
 * Feed n bytes of the stream. Returns 0, LARK_ETOOLARGE when a line or an
 * event's data passes max (the parser must then be restarted), or the
 * first non-zero value the callback returned (feeding stopped there; the
 * rest of the bytes were not read, restart before feeding again).
 */
int sse_feed(struct sse_parser *p, const char *bytes, size_t n);

#endif
