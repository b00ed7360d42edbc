/*
 * sse.c - the Server-Sent Events parser of larkbench (see sse.h).
 *
 * A line that arrives whole in one read is interpreted where it lies; only
 * a line cut by a read boundary is copied into p->line. At 1,000 streams
 * x 3,000 events/s that keeps the parser a small share of the bench's one
 * core.
 */
#include "tools/larkbench/sse.h"

#include "core/err.h"

#include <string.h>

void sse_init(struct sse_parser *p, size_t max, sse_event_fn *on_event, void *arg)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->line, max);
    buf_init(&p->data, max);
    p->retry_ms = -1;
    p->on_event = on_event;
    p->arg = arg;
}

void sse_release(struct sse_parser *p)
{
    buf_release(&p->line);
    buf_release(&p->data);
}

static void event_reset(struct sse_parser *p)
{
    buf_reset(&p->data);
    p->type[0] = '\0';
    p->has_data = p->has_id = 0;
}

void sse_restart(struct sse_parser *p)
{
    buf_reset(&p->line);
    event_reset(p);
    p->cr = 0;
}

/* Copy v[0..n) into out (size outlen), cut to fit. */
static void set_str(char *out, size_t outlen, const char *v, size_t n)
{
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static int field(struct sse_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (nlen == 4 && memcmp(name, "data", 4) == 0) {
        if ((p->has_data && buf_putc(&p->data, '\n') != 0) || buf_append(&p->data, v, vlen) != 0)
            return LARK_ETOOLARGE;
        p->has_data = 1;
    } else if (nlen == 5 && memcmp(name, "event", 5) == 0) {
        set_str(p->type, sizeof(p->type), v, vlen);
    } else if (nlen == 2 && memcmp(name, "id", 2) == 0) {
        if (!memchr(v, '\0', vlen)) {
            set_str(p->id, sizeof(p->id), v, vlen);
            p->has_id = 1;
        }
    } else if (nlen == 5 && memcmp(name, "retry", 5) == 0) {
        long ms = 0;
        size_t i = 0;
        for (; i < vlen && i < 12 && v[i] >= '0' && v[i] <= '9'; i++)
            ms = ms * 10 + (v[i] - '0');
        if (vlen > 0 && i == vlen)
            p->retry_ms = ms;
    }
    return 0;
}

static int dispatch(struct sse_parser *p)
{
    struct sse_event ev;
    int rc;
    if (!p->has_data) { /* no data line: nothing to dispatch (EventSource) */
        event_reset(p);
        return 0;
    }
    ev.type = p->type[0] ? p->type : "message";
    ev.data = p->data.data ? p->data.data : "";
    ev.data_len = p->data.len;
    ev.id = p->id;
    ev.has_id = p->has_id;
    rc = p->on_event(p->arg, &ev);
    event_reset(p);
    return rc;
}

/* One complete line, without its end. */
static int line(struct sse_parser *p, const char *s, size_t n)
{
    const char *colon;
    const char *v;
    size_t nlen;
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return 0; /* a comment */
    colon = memchr(s, ':', n);
    nlen = colon ? (size_t)(colon - s) : n;
    v = colon ? colon + 1 : s + n;
    if (v < s + n && *v == ' ')
        v++;
    return field(p, s, nlen, v, (size_t)(s + n - v));
}

/* The first CR or LF in s[0..n), or NULL. */
static const char *line_end(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r')
            return s + i;
    return NULL;
}

int sse_feed(struct sse_parser *p, const char *bytes, size_t n)
{
    size_t i = 0;
    int rc;
    if (n && p->cr && bytes[0] == '\n')
        i = 1; /* the LF of a CRLF cut between two reads */
    p->cr = 0;
    while (i < n) { /* one line, or the cut end of one, per pass */
        const char *s = bytes + i, *e = line_end(s, n - i);
        size_t len = e ? (size_t)(e - s) : n - i;
        if (!e)
            return buf_append(&p->line, s, len) == 0 ? 0 : LARK_ETOOLARGE;
        if (p->line.len == 0) {
            if (len > p->line.max)
                return LARK_ETOOLARGE; /* as if it had come in pieces */
            rc = line(p, s, len);
        } else {
            if (buf_append(&p->line, s, len) != 0)
                return LARK_ETOOLARGE;
            rc = line(p, p->line.data, p->line.len);
            buf_reset(&p->line);
        }
        i += len + 1;
        if (*e == '\r') {
            if (i == n)
                p->cr = 1;
            else if (bytes[i] == '\n')
                i++;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
