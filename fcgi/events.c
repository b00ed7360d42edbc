/*
 * events.c - SSE frames and long-poll answers.
 */
#include "fcgi/events.h"

#include "core/buf.h"
#include "core/json.h"

#include <stdlib.h>

/* Longest `],"next":N}` that closes a long-poll answer (N: 20 digits). */
#define EVENTS_POLL_TAIL_MAX (sizeof("],\"next\":}") - 1 + 20)

static uint64_t event_seq(json_t *ev)
{
    json_int_t v = json_integer_value(json_object_get(ev, "seq"));
    return v > 0 ? (uint64_t)v : 0;
}

size_t events_sse(json_t *events, size_t budget, struct buf *out, uint64_t *last)
{
    size_t i, n = 0, start = out->len;
    json_t *ev;

    json_array_foreach (events, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        size_t len;
        char *text = json_dump(ev, 0, &len);
        size_t before = out->len;
        int rc = 0;
        if (n > 0 && out->len - start + len > budget) {
            free(text);
            break;
        }
        rc = buf_printf(out, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)event_seq(ev),
                        type ? type : "message", text);
        free(text);
        /* Never half a frame; and the frame's own lines count towards the
         * budget too, which the check on the JSON alone above cannot see. */
        if (rc || (n > 0 && out->len - start > budget)) {
            buf_truncate(out, before);
            break;
        }
        if (event_seq(ev) > *last)
            *last = event_seq(ev); /* a cursor never moves back */
        n++;
    }
    return n;
}

size_t events_poll_answer(json_t *events, uint64_t cursor, size_t budget, struct buf *out)
{
    size_t i, n = 0, start;
    uint64_t next = cursor;
    json_t *ev;

    buf_puts(out, "{\"events\":[");
    start = out->len;
    json_array_foreach (events, i, ev) {
        size_t len, before = out->len;
        char *text = json_dump(ev, 0, &len);
        int rc;
        if (n > 0 && out->len - start + len + 1 > budget) {
            free(text);
            break;
        }
        rc = (n ? buf_putc(out, ',') : 0) || buf_append(out, text, len);
        free(text);
        /* Keep room for the closing part, or the answer is not JSON. */
        if (rc || out->max - out->len < EVENTS_POLL_TAIL_MAX) {
            buf_truncate(out, before);
            break;
        }
        if (event_seq(ev) > next)
            next = event_seq(ev); /* ephemeral events have no seq */
        n++;
    }
    buf_printf(out, "],\"next\":%llu}", (unsigned long long)next);
    return n;
}
