/*
 * events.c - SSE frames, long-poll answers and WebSocket lines.
 */
#include "fcgi/events.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/evdata.h"

#include <string.h>

/* Longest `],"next":N}` that closes a long-poll answer (N: 20 digits). */
#define EVENTS_POLL_TAIL_MAX (sizeof("],\"next\":}") - 1 + 20)

int events_envelope(struct buf *out, uint64_t seq, struct evdata *d, int ascii)
{
    size_t before = out->len, len = d->len;
    const char *json = ascii ? evdata_ascii(d, &len) : d->json;

    /* json_dump's compact form of {"seq", "type", "data"} in that order;
     * the type is one of lark's own words and needs no escaping */
    if (buf_printf(out, "{\"seq\":%llu,\"type\":\"%s\",\"data\":", (unsigned long long)seq,
                   d->type) ||
        buf_append(out, json, len) || buf_putc(out, '}')) {
        buf_truncate(out, before);
        return LARK_ETOOLARGE;
    }
    return 0;
}

/* Append frames or lines; stop at the budget (but take at least one). */
static size_t events_put(const struct store_event *evs, size_t n, size_t budget, struct buf *out,
                         uint64_t *last, int sse)
{
    size_t i, start = out->len;

    for (i = 0; i < n; i++) {
        size_t before = out->len;
        int rc;
        if (i > 0 && out->len - start + evs[i].data->len > budget)
            break;
        if (sse)
            rc = buf_printf(out, "id: %llu\nevent: %s\ndata: ", (unsigned long long)evs[i].seq,
                            evs[i].data->type) ||
                 events_envelope(out, evs[i].seq, evs[i].data, 0) || buf_puts(out, "\n\n");
        else
            rc = events_envelope(out, evs[i].seq, evs[i].data, 1) || buf_putc(out, '\n');
        /* Never half a frame; and the frame's own bytes count towards the
         * budget too, which the check on the data alone above cannot see. */
        if (rc || (i > 0 && out->len - start > budget)) {
            buf_truncate(out, before);
            break;
        }
        if (evs[i].seq > *last)
            *last = evs[i].seq; /* a cursor never moves back */
    }
    return i;
}

size_t events_sse(const struct store_event *evs, size_t n, size_t budget, struct buf *out,
                  uint64_t *last)
{
    return events_put(evs, n, budget, out, last, 1);
}

size_t events_lines(const struct store_event *evs, size_t n, size_t budget, struct buf *out,
                    uint64_t *last)
{
    return events_put(evs, n, budget, out, last, 0);
}

void events_poll_begin(struct events_poll *p, struct buf *out, uint64_t cursor, size_t budget)
{
    p->out = out;
    p->count = 0;
    p->budget = budget;
    p->next = cursor;
    buf_puts(out, "{\"events\":[");
    p->start = out->len;
}

/* Room check after an event was appended at before: keep the budget (at
 * least one event) and room for the closing part, or the answer is not
 * JSON. 0 if it stays. */
static int poll_keep(struct events_poll *p, size_t before, int rc)
{
    struct buf *out = p->out;
    if (rc || (p->count > 0 && out->len - p->start > p->budget) ||
        out->max - out->len < EVENTS_POLL_TAIL_MAX) {
        buf_truncate(out, before);
        return -1;
    }
    p->count++;
    return 0;
}

int events_poll_raw(struct events_poll *p, const char *json, size_t len)
{
    size_t before = p->out->len;
    int rc = (p->count ? buf_putc(p->out, ',') : 0) || buf_append(p->out, json, len);
    return poll_keep(p, before, rc);
}

size_t events_poll_stored(struct events_poll *p, const struct store_event *evs, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        size_t before = p->out->len;
        int rc = (p->count ? buf_putc(p->out, ',') : 0) ||
                 events_envelope(p->out, evs[i].seq, evs[i].data, 0);
        if (poll_keep(p, before, rc) != 0)
            break;
        if (evs[i].seq > p->next)
            p->next = evs[i].seq;
    }
    return i;
}

size_t events_poll_end(struct events_poll *p)
{
    buf_printf(p->out, "],\"next\":%llu}", (unsigned long long)p->next);
    return p->count;
}
