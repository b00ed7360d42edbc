/*
 * events.h - inbox events as bytes on the wire: SSE frames and long-poll
 * answers.
 *
 * Both the workers (answers they can give at once) and the hub (answers
 * that waited) write the same shapes, so they are made in one place. Each
 * function stops before out would exceed a byte budget, always taking at
 * least one event, so that one answer never outgrows the hub's per-
 * connection buffer however large the messages; the caller resumes from
 * the returned seq. Pure functions over borrowed JSON; thread-safe.
 *
 * SSE (WHATWG HTML, "server-sent events"): a stored event is
 *   id: <seq>\nevent: <type>\ndata: <envelope JSON>\n\n
 * Compact JSON never contains a raw newline, so one data: line suffices.
 */
#ifndef LARK_EVENTS_H
#define LARK_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Bytes of events one answer carries before it stops (at least one event;
 * limits.h caps message sizes so that any one event fits). */
#define EVENTS_BUDGET (1024 * 1024)
/* Room for one answer: the budget, plus the one event that may cross it. */
#define EVENTS_ANSWER_MAX (2 * EVENTS_BUDGET)

/*
 * Append SSE frames for events (a JSON array of envelopes) to out.
 * Returns how many were appended; *last is the seq of the last one
 * (unchanged if none).
 */
size_t events_sse(json_t *events, size_t budget, struct buf *out, uint64_t *last);

/*
 * Append {"events":[...],"next":N} to out, where next is the seq of the
 * last event included, or cursor if none. Returns how many were included.
 */
size_t events_poll_answer(json_t *events, uint64_t cursor, size_t budget, struct buf *out);

#endif
