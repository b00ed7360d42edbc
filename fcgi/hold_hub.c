/*
 * hold_hub.c - how larkd as a FastCGI daemon holds a long-poll or an SSE
 * stream (hold.h): it hands the request to the hub.
 *
 * The worker renders the two ways the answer may begin (hub.h, struct
 * hub_park: the stream's head, or a whole 503 for when the hub cannot
 * serve it), detaches the request from libfcgi keeping its socket, and is
 * done with it; the hub decides which head to write.
 */
#include "fcgi/hold.h"

#include "core/buf.h"
#include "fcgi/app.h"
#include "fcgi/http.h"
#include "fcgi/hub.h"

#include <stddef.h>

/* The head of a streamed answer: status, headers (CORS), the preamble
 * (the SSE padding comment is the long part). */
#define HOLD_HEAD_MAX (LIMIT_SSE_PADDING + 8192)

static int hub_serve(struct req *r, const struct hold_req *h)
{
    struct hub_park p = {.kind = h->kind,
                         .cursor = h->cursor,
                         .limit = h->limit,
                         .timeout_s = h->timeout_s,
                         .user = r->user};
    struct buf ok, unavail;

    buf_init(&ok, HOLD_HEAD_MAX);
    buf_init(&unavail, HOLD_HEAD_MAX);
    reply_render_stream(r, h->content_type, h->extra, h->preamble, h->preamble_len, &ok, &unavail);
    p.head = buf_detach(&ok, &p.head_len);
    p.unavail = buf_detach(&unavail, &p.unavail_len);
    r->status = 200; /* for the request log: the hub decides and counts */
    req_detach(r, &p.fd, &p.request_id);
    hub_park(r->app->hub, &p);
    return 0;
}

const struct hold_ops hold_hub = {
    .name = "hub",
    .serve = hub_serve,
};
