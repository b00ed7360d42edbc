/*
 * hold.h - serving a request that may wait: a long-poll or an SSE stream
 * (API.md "GET /v1/poll", "GET /v1/events").
 *
 * h_events.c validates such a request, works out where its stream starts
 * and renders the start of its answer; how the request then waits depends
 * on how larkd runs, so it goes through app->hold, one of:
 *   - hold_hub (hold_hub.c): larkd as a FastCGI daemon. The request is
 *     handed to the hub (hub.h), one thread that holds thousands.
 *   - hold_cgi (cgi_wait.c): larkd as a plain CGI program. The process
 *     itself waits for its one request, woken by the store
 *     (store_inbox_watch), until the long-poll's timeout or the SSE
 *     window (cgi_sse_window) ends.
 * Both write the same bytes for the same events (events.h).
 */
#ifndef LARK_HOLD_H
#define LARK_HOLD_H

#include "fcgi/metrics.h"

#include <stddef.h>
#include <stdint.h>

struct req;

/* A request that may wait, as h_events.c made it ready. Strings borrowed. */
struct hold_req {
    enum transport kind;      /* TRANSPORT_SSE or TRANSPORT_POLL */
    uint64_t cursor;          /* the client has every event up to this seq */
    unsigned limit;           /* poll: most events in the answer */
    int timeout_s;            /* poll: answer with no events after this (> 0) */
    const char *content_type; /* of the answer */
    const char *extra;        /* header lines (CRLF-terminated), or "" */
    const char *preamble;     /* SSE: the first body bytes (padding, retry:, hello) */
    size_t preamble_len;
};

struct hold_ops {
    const char *name; /* "hub", "cgi" */
    /*
     * Serve r as h says. 0 once the request is answered or handed over;
     * a LARK_E* code (r->err set) only while nothing of the answer is
     * written, for the router to answer with.
     */
    int (*serve)(struct req *r, const struct hold_req *h);
};

extern const struct hold_ops hold_hub;
extern const struct hold_ops hold_cgi;

#endif
