/*
 * evdata.h - a stored event's type and data, rendered once and shared.
 *
 * Why (DESIGN.md "The delivery path, second design"): a message to a
 * 500-member group is 500 inbox events with one and the same data; only
 * each member's inbox seq differs. The store renders the data's compact
 * JSON once, in the transaction that appends the events, and hands it to
 * the hub with each member's seq after the commit. The hub keeps it in the
 * members' tails and writes it to every live connection: nothing is read
 * back or rendered again. events.h wraps it in each member's envelope
 * {"seq":N,"type":T,"data":D}.
 *
 * An evdata is immutable after evdata_new except for its ASCII rendering,
 * which only the hub thread makes (evdata_ascii, the first time a
 * WebSocket needs it). Reference counted with atomics: any thread may take
 * and drop references; the last evdata_unref frees it.
 */
#ifndef LARK_EVDATA_H
#define LARK_EVDATA_H

#include <stdatomic.h>
#include <stddef.h>

/* Longest stored event type ("conversation" is the longest lark writes). */
#define EVDATA_TYPE_MAX 31

struct evdata {
    atomic_uint refs;
    size_t len;                     /* bytes of json, without its NUL */
    char *ascii;                    /* hub thread only: see evdata_ascii; NULL until made */
    size_t ascii_len;               /* bytes of ascii */
    char type[EVDATA_TYPE_MAX + 1]; /* "message", "receipt", "member", "conversation" */
    char json[];                    /* compact JSON of the event's data, NUL-terminated */
};

/*
 * A new evdata (one reference, the caller's) holding a copy of the len
 * bytes of json, which must be compact JSON as core/json.h's json_dump
 * writes it (the envelope is assembled around it byte for byte). type is
 * cut at EVDATA_TYPE_MAX. Never fails (out of memory aborts).
 */
struct evdata *evdata_new(const char *type, const char *json, size_t len);

/* Take a reference; returns d. d may be NULL. */
struct evdata *evdata_ref(struct evdata *d);

/* Drop a reference; frees d with the last one. Accepts NULL. */
void evdata_unref(struct evdata *d);

/*
 * The data as ASCII-only JSON (non-ASCII as \u escapes), for WebSocket
 * lines (API.md): the JSON itself when it is ASCII already (the common
 * case, nothing is allocated), else a rendering made once and kept.
 * Hub thread only. *len receives its length.
 */
const char *evdata_ascii(struct evdata *d, size_t *len);

#endif
