/*
 * h_events.c - the inbox stream: SSE, long-poll and acknowledgements
 * (API.md "The inbox: one ordered event stream per user").
 *
 * A worker validates the request and hands it to the hub (hub.h) with the
 * seq the client already has; the hub writes what follows from memory, or
 * has it read on its reader pool. A position the client sends (since=,
 * Last-Event-ID) acknowledges, but that write is queued (store_ack_later):
 * nothing on this path waits for the writer or an fsync (DESIGN.md "The
 * delivery path, second design"). Only a request without a position reads
 * the store here, for the acknowledged position it starts after.
 *
 * How a request then waits depends on how larkd runs (hold.h): handed to
 * the hub (FastCGI), or held by the process itself (CGI).
 */
#include "core/buf.h"
#include "core/json.h"
#include "core/store.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/handlers.h"
#include "fcgi/hold.h"

#include <string.h>

/* API.md: right after retry:, an event the page can see, so that a client
 * learns within milliseconds that events reach it through whatever proxies
 * sit between (a buffering proxy holds it back, and the client falls back). */
#define SSE_HELLO "event: hello\ndata: {}\n\n"
/* Room for the padding comment, the retry: line and the hello event. */
#define SSE_PREAMBLE_MAX (LIMIT_SSE_PADDING + 64 + sizeof(SSE_HELLO))
/* API.md: no caching, and no buffering by an nginx in front. */
#define SSE_HEADERS "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
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

/*
 * Where a stream starts: after the position the client sent (which it
 * thereby acknowledges, API.md - queued, never waited for), else after its
 * acknowledged position (a read). The hub clamps a position past the head.
 */
static int stream_cursor(struct req *r, int has_pos, uint64_t pos, uint64_t *cursor)
{
    uint64_t head = 0, acked = 0;
    int rc;

    if (has_pos) {
        store_ack_later(r->app->store, r->user, pos);
        *cursor = pos;
        return 0;
    }
    rc = store_inbox_state(r->db, r->user, &head, &acked, &r->err);
    *cursor = acked;
    return rc;
}

int h_events(struct req *r)
{
    const char *lei = req_param(r, "HTTP_LAST_EVENT_ID");
    uint64_t since = 0, last_id = 0, cursor;
    int has_since, padding;
    char preamble[SSE_PREAMBLE_MAX];
    size_t n = 0;
    int rc;

    if ((rc = req_query_u64(r, "since", INT64_MAX, &since, &has_since)) ||
        (rc = flag_param(r, "padding", &padding)))
        return rc;
    if (lei && *lei && parse_u64(lei, INT64_MAX, &last_id) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "Last-Event-ID must be an event seq");
    /* Last-Event-ID wins over ?since: a reconnecting EventSource keeps its
     * original URL but sends the last id it processed. Only it acknowledges
     * (API.md); ?since just says where to start. */
    if (lei && *lei)
        rc = stream_cursor(r, 1, last_id, &cursor);
    else if (has_since)
        cursor = since;
    else
        rc = stream_cursor(r, 0, 0, &cursor);
    if (rc)
        return rc;
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
    return r->app->hold->serve(r, &(struct hold_req){.kind = TRANSPORT_SSE,
                                                     .cursor = cursor,
                                                     .content_type = "text/event-stream",
                                                     .extra = SSE_HEADERS,
                                                     .preamble = preamble,
                                                     .preamble_len = n});
}

/* Answer a poll at once with what the store holds (timeout=0). */
static int poll_now(struct req *r, uint64_t cursor, unsigned limit)
{
    struct store_event *evs = NULL;
    struct events_poll p;
    uint64_t head = 0;
    struct buf body;
    size_t n = 0;
    int rc = store_inbox_read(r->db, r->user, cursor, limit, &evs, &n, &head, &r->err);

    if (rc)
        return rc;
    buf_init(&body, EVENTS_ANSWER_MAX);
    events_poll_begin(&p, &body, min_u64(cursor, head), EVENTS_BUDGET);
    events_poll_stored(&p, evs, n);
    events_poll_end(&p);
    reply_raw(r, 200, "application/json", body.data, body.len);
    buf_release(&body);
    store_events_free(evs, n);
    return 0;
}

int h_poll(struct req *r)
{
    const struct config *cfg = &r->app->cfg;
    uint64_t since = 0, timeout = (uint64_t)cfg->poll_timeout, limit = LIMIT_POLL_EVENTS_DEFAULT;
    uint64_t cursor;
    int has_since, has_timeout, has_limit;
    int rc;

    if ((rc = req_query_u64(r, "since", INT64_MAX, &since, &has_since)) ||
        (rc = req_query_u64(r, "timeout", (uint64_t)cfg->poll_timeout_max, &timeout,
                            &has_timeout)) ||
        (rc = req_query_u64(r, "limit", LIMIT_POLL_EVENTS_MAX, &limit, &has_limit)))
        return rc;
    if (limit == 0)
        return lark_err_set(&r->err, LARK_EINVAL, "'limit' must be from 1 to %d",
                            LIMIT_POLL_EVENTS_MAX);
    /* API.md: since=N acknowledges N */
    if ((rc = stream_cursor(r, has_since, since, &cursor)))
        return rc;
    if (timeout == 0)
        return poll_now(r, cursor, (unsigned)limit);
    return r->app->hold->serve(r, &(struct hold_req){.kind = TRANSPORT_POLL,
                                                     .cursor = cursor,
                                                     .limit = (unsigned)limit,
                                                     .timeout_s = (int)timeout,
                                                     .content_type = "application/json",
                                                     .extra = "Cache-Control: no-store\r\n"});
}

int h_ack(struct req *r)
{
    uint64_t seq = 0, head = 0, acked = 0;
    json_t *body;
    int rc = json_get_uint(r->body, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &r->err);

    if (rc)
        return rc;
    /* the position as it now stands (clamped to the head, never back);
     * its write and the delivered receipts follow within milliseconds,
     * without this request waiting for them */
    rc = store_inbox_state(r->db, r->user, &head, &acked, &r->err);
    if (rc)
        return rc;
    if (min_u64(seq, head) > acked) {
        acked = min_u64(seq, head);
        store_ack_later(r->app->store, r->user, acked);
    }
    body = json_obj();
    json_put(body, "acked", json_integer((json_int_t)acked));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}
