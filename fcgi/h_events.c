/*
 * h_events.c - the inbox stream: SSE, long-poll and acknowledgements
 * (API.md "The inbox: one ordered event stream per user").
 *
 * A worker answers at once whatever it can; a request that has to wait is
 * handed to the hub (hub.h) with the seq the client already has.
 *
 * Under plain CGI (one process per request, no hub) nothing can wait: a
 * long-poll answers at once, and an SSE request gets its backlog and ends,
 * so that an EventSource reconnects after retry: - polling, but correct.
 */
#include "core/buf.h"
#include "core/json.h"
#include "core/store.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/handlers.h"
#include "fcgi/hub.h"

#include <string.h>

/* API.md: right after retry:, an event the page can see, so that a client
 * learns within milliseconds that events reach it through whatever proxies
 * sit between (a buffering proxy holds it back, and the client falls back). */
#define SSE_HELLO "event: hello\ndata: {}\n\n"
/* Room for the padding comment, the retry: line and the hello event. */
#define SSE_PREAMBLE_MAX (LIMIT_SSE_PADDING + 64 + sizeof(SSE_HELLO))

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Hand r to the hub; the worker is done with it afterwards. */
static void park(struct req *r, enum transport kind, uint64_t cursor, unsigned limit, int timeout_s)
{
    struct hub_park p = {
        .kind = kind, .user = r->user, .cursor = cursor, .limit = limit, .timeout_s = timeout_s};
    req_detach(r, &p.fd, &p.request_id);
    hub_park(r->app->hub, &p);
}

static int flag_param(struct req *r, const char *name, int *on)
{
    const char *v = query_get(&r->query, name);
    *on = 0;
    if (!v || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        return 0;
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        *on = 1;
        return 0;
    }
    return lark_err_set(&r->err, LARK_EINVAL, "'%s' must be 1 or 0", name);
}

/* CGI: write what is there and end the stream. */
static int sse_backlog_cgi(struct req *r, uint64_t cursor)
{
    json_t *events = NULL;
    uint64_t last = cursor;
    struct buf frames;
    int rc = store_inbox_read(r->db, r->user, cursor, LIMIT_HUB_BATCH, &events, &last, &r->err);

    if (rc)
        return 0; /* headers are out; the client reconnects */
    buf_init(&frames, EVENTS_ANSWER_MAX);
    events_sse(events, EVENTS_BUDGET, &frames, &last);
    req_write(r, frames.data ? frames.data : "", frames.len);
    buf_release(&frames);
    json_decref(events);
    return 0;
}

int h_events(struct req *r)
{
    const char *lei = req_param(r, "HTTP_LAST_EVENT_ID");
    uint64_t since = 0, last_id = 0, head, acked, cursor;
    int has_since, padding;
    char preamble[SSE_PREAMBLE_MAX];
    size_t n = 0;
    int rc;

    if ((rc = req_query_u64(r, "since", INT64_MAX, &since, &has_since)) ||
        (rc = flag_param(r, "padding", &padding)))
        return rc;
    if (lei && *lei && parse_u64(lei, INT64_MAX, &last_id) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "Last-Event-ID must be an event seq");
    rc = store_inbox_state(r->db, r->user, &head, &acked, &r->err);
    if (rc)
        return rc;
    /* Last-Event-ID wins over ?since: a reconnecting EventSource keeps its
     * original URL but sends the last id it processed. */
    if (lei && *lei) {
        cursor = min_u64(last_id, head);
        rc = store_ack(r->db, r->user, cursor, &acked, &r->err);
        if (rc)
            return rc;
    } else if (has_since) {
        cursor = min_u64(since, head);
    } else {
        cursor = acked;
    }
    if (padding) {
        /* API.md: a 2 KiB comment first, for proxies and old browsers that
         * buffer the start of a response. */
        preamble[0] = ':';
        memset(preamble + 1, ' ', LIMIT_SSE_PADDING - 3);
        preamble[LIMIT_SSE_PADDING - 2] = '\n';
        preamble[LIMIT_SSE_PADDING - 1] = '\n';
        n = LIMIT_SSE_PADDING;
    }
    n += (size_t)snprintf(preamble + n, sizeof(preamble) - n, "retry: %d\n\n" SSE_HELLO,
                          r->app->cfg.sse_retry_ms);
    if (reply_start_stream(r, "text/event-stream",
                           "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n", preamble,
                           n) != 0)
        return 0; /* the client left already; nothing to hold */
    if (r->app->cgi)
        return sse_backlog_cgi(r, cursor);
    park(r, TRANSPORT_SSE, cursor, 0, 0);
    return 0;
}

int h_poll(struct req *r)
{
    const struct config *cfg = &r->app->cfg;
    uint64_t since = 0, timeout = (uint64_t)cfg->poll_timeout, limit = LIMIT_POLL_EVENTS_DEFAULT;
    uint64_t head, acked, cursor, last;
    int has_since, has_timeout, has_limit;
    json_t *events = NULL;
    int rc;

    if ((rc = req_query_u64(r, "since", INT64_MAX, &since, &has_since)) ||
        (rc = req_query_u64(r, "timeout", (uint64_t)cfg->poll_timeout_max, &timeout,
                            &has_timeout)) ||
        (rc = req_query_u64(r, "limit", LIMIT_POLL_EVENTS_MAX, &limit, &has_limit)))
        return rc;
    if (limit == 0)
        return lark_err_set(&r->err, LARK_EINVAL, "'limit' must be from 1 to %d",
                            LIMIT_POLL_EVENTS_MAX);
    rc = store_inbox_state(r->db, r->user, &head, &acked, &r->err);
    if (rc)
        return rc;
    if (has_since) {
        /* API.md: since=N acknowledges N. */
        cursor = min_u64(since, head);
        rc = store_ack(r->db, r->user, cursor, &acked, &r->err);
        if (rc)
            return rc;
    } else {
        cursor = acked;
    }
    rc = store_inbox_read(r->db, r->user, cursor, (unsigned)limit, &events, &last, &r->err);
    if (rc)
        return rc;
    if (json_array_size(events) > 0 || timeout == 0 || r->app->cgi) {
        struct buf body;
        buf_init(&body, EVENTS_ANSWER_MAX);
        events_poll_answer(events, cursor, EVENTS_BUDGET, &body);
        reply_raw(r, 200, "application/json", body.data, body.len);
        buf_release(&body);
        json_decref(events);
        return 0;
    }
    json_decref(events);
    /* Headers now: lighttpd only notices a vanished client when something
     * is written, and the hub's whitespace trickle needs a started body. */
    if (reply_start_stream(r, "application/json", "Cache-Control: no-store\r\n", NULL, 0) != 0)
        return 0;
    park(r, TRANSPORT_POLL, cursor, (unsigned)limit, (int)timeout);
    return 0;
}

int h_ack(struct req *r)
{
    uint64_t seq = 0, acked = 0;
    json_t *body;
    int rc = json_get_uint(r->body, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &r->err);

    if (rc)
        return rc;
    rc = store_ack(r->db, r->user, seq, &acked, &r->err);
    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "acked", json_integer((json_int_t)acked));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}
