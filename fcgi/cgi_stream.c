/*
 * cgi_stream.c - the two transports a CGI process holds: an SSE stream
 * and a long-poll (API.md "GET /v1/events", "GET /v1/poll"), written as
 * the hub writes them (hub_stream.c), to stdout instead of FastCGI
 * records.
 *
 * An SSE stream writes each event as a frame and a ping event every
 * sse_keepalive seconds; at the end of its window (cgi_sse_window) it
 * writes a short retry: and ends, and the EventSource comes back with
 * Last-Event-ID - a process per stream cannot wait for ever. A long-poll
 * writes one JSON answer - the events after its cursor, or the ephemeral
 * events that arrived, or nothing at its timeout - and, while it waits, a
 * space every poll_trickle seconds (leading whitespace is valid JSON): the
 * writes are how a client that left is noticed (DESIGN.md "Disconnects").
 */
#include "fcgi/cgi_int.h"

#include "core/buf.h"
#include "core/ids.h"
#include "core/json.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/http.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* The retry: an SSE stream ends its window with (ms): soon, since nothing
 * went wrong, and spread over [MIN, MIN + SPREAD) so that streams opened
 * together do not all come back together. The next stream's first retry:
 * sets the client's delay back to sse_retry_ms for real failures. */
#define CGI_SSE_END_RETRY_MIN_MS 100
#define CGI_SSE_END_RETRY_SPREAD_MS 500

static const struct config *cfg_of(const struct cgi_wait *w)
{
    return &w->r->app->cfg;
}

/* Write b (if anything) and report the request's fate. */
static int write_buf(struct cgi_wait *w, const struct buf *b)
{
    return b->len && cgi_write(w, b->data, b->len) != 0 ? 1 : 0;
}

/* ---- SSE ------------------------------------------------------------------ */

static int sse_deliver(struct cgi_wait *w, const struct store_event *evs, size_t n)
{
    struct buf frames;
    int over = 0;

    buf_init(&frames, EVENTS_ANSWER_MAX);
    /* one budget of frames per write, so that a large backlog is never
     * more than one answer's bytes in memory */
    while (n && !over) {
        size_t taken = events_sse(evs, n, EVENTS_BUDGET, &frames, &w->cursor);
        over = write_buf(w, &frames);
        buf_reset(&frames);
        evs += taken;
        n -= taken;
    }
    buf_release(&frames);
    return over;
}

/* The envelope's type, for the SSE event: line (typing, presence). */
static int envelope_type(const char *json, char *type, size_t size)
{
    json_t *ev = json_loads(json, 0, NULL);
    const char *t = json_string_value(json_object_get(ev, "type"));
    int ok = t && strlen(t) < size && strspn(t, "abcdefghijklmnopqrstuvwxyz_") == strlen(t);

    if (ok)
        snprintf(type, size, "%s", t);
    json_decref(ev);
    return ok ? 0 : -1;
}

static int sse_ephemeral(struct cgi_wait *w, char *const *json, size_t n)
{
    struct buf frames;
    int over;

    buf_init(&frames, EVENTS_ANSWER_MAX);
    for (size_t i = 0; i < n; i++) {
        char type[32];
        /* API.md: an ephemeral SSE event has no id: line */
        if (envelope_type(json[i], type, sizeof(type)) == 0)
            buf_printf(&frames, "event: %s\ndata: %s\n\n", type, json[i]);
    }
    over = write_buf(w, &frames);
    buf_release(&frames);
    return over;
}

static int sse_tick(struct cgi_wait *w)
{
    /* API.md: an event, not a comment: EventSource hides comments */
    static const char ping[] = "event: ping\ndata: {}\n\n";
    return cgi_write(w, ping, sizeof(ping) - 1) != 0;
}

static int64_t sse_tick_every(const struct cgi_wait *w)
{
    return (int64_t)cfg_of(w)->sse_keepalive * 1000;
}

static void sse_deadline(struct cgi_wait *w)
{
    char frame[64];
    unsigned jitter;
    int n;

    ids_random(&jitter, sizeof(jitter));
    n = snprintf(frame, sizeof(frame), "retry: %u\n\n",
                 CGI_SSE_END_RETRY_MIN_MS + jitter % CGI_SSE_END_RETRY_SPREAD_MS);
    cgi_write(w, frame, (size_t)n);
    w->ended = 1;
}

static void sse_fail(struct cgi_wait *w)
{
    /* as the hub's sse_reconnect: come back later, from the last id */
    char frame[128];
    int n = snprintf(frame, sizeof(frame),
                     "retry: %d\nevent: reconnect\ndata: {\"reason\":\"unavailable\"}\n\n",
                     cfg_of(w)->sse_retry_ms);
    cgi_write(w, frame, (size_t)n);
    w->ended = 1;
}

const struct cgi_transport cgi_sse = {
    .kind = TRANSPORT_SSE,
    .deliver = sse_deliver,
    .ephemeral = sse_ephemeral,
    .tick = sse_tick,
    .tick_every = sse_tick_every,
    .deadline = sse_deadline,
    .fail = sse_fail,
};

/* ---- long-poll ---------------------------------------------------------------- */

/* The answer: ephemeral envelopes, then stored events (at most limit). */
static int poll_answer(struct cgi_wait *w, char *const *json, size_t njson,
                       const struct store_event *evs, size_t n)
{
    struct events_poll p;
    struct buf body;

    buf_init(&body, EVENTS_ANSWER_MAX);
    events_poll_begin(&p, &body, w->cursor, EVENTS_BUDGET);
    for (size_t i = 0; i < njson; i++)
        events_poll_raw(&p, json[i], strlen(json[i]));
    events_poll_stored(&p, evs, n < w->limit ? n : w->limit);
    events_poll_end(&p);
    w->cursor = p.next;
    write_buf(w, &body);
    buf_release(&body);
    w->ended = 1;
    return 1;
}

static int poll_deliver(struct cgi_wait *w, const struct store_event *evs, size_t n)
{
    return poll_answer(w, NULL, 0, evs, n);
}

static int poll_ephemeral(struct cgi_wait *w, char *const *json, size_t n)
{
    return poll_answer(w, json, n, NULL, 0);
}

static int poll_tick(struct cgi_wait *w)
{
    return cgi_write(w, " ", 1) != 0; /* DESIGN.md "Disconnects" */
}

static int64_t poll_tick_every(const struct cgi_wait *w)
{
    return (int64_t)cfg_of(w)->poll_trickle * 1000;
}

static void poll_empty(struct cgi_wait *w)
{
    poll_answer(w, NULL, 0, NULL, 0);
}

const struct cgi_transport cgi_poll = {
    .kind = TRANSPORT_POLL,
    .deliver = poll_deliver,
    .ephemeral = poll_ephemeral,
    .tick = poll_tick,
    .tick_every = poll_tick_every,
    .deadline = poll_empty,
    .fail = poll_empty,
};
