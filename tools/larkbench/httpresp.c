/*
 * httpresp.c - the HTTP/1.1 response parser of larkbench (see httpresp.h).
 *
 * Strict where a lenient parser would hide a server bug from a benchmark:
 * CRLF line ends only, no obs-fold, a Content-Length of digits only (and
 * the same in every copy), a chunk size of 1 to 16 hex digits, CRLF after
 * each chunk's data. Message framing follows RFC 9112 section 6.3.
 */
#include "tools/larkbench/httpresp.h"

#include "core/err.h"
#include "core/query.h"

#include <string.h>
#include <strings.h>

/* What the header fields of one head say about framing. */
struct head_info {
    int has_len;  /* Content-Length was given */
    uint64_t len; /* its value */
    int has_te;   /* Transfer-Encoding was given */
    int chunked;  /* its last coding is chunked */
};

void http_resp_init(struct http_resp *r, http_header_fn *on_header, void *arg)
{
    memset(r, 0, sizeof(*r));
    r->phase = HTTP_RESP_IDLE;
    r->on_header = on_header;
    r->arg = arg;
}

void http_resp_expect(struct http_resp *r, unsigned flags)
{
    r->phase = HTTP_RESP_HEAD;
    r->flags = flags;
    r->status = 0;
    r->close = 0;
    r->remain = 0;
}

static const char *find_crlf(const char *p, size_t n)
{
    return n >= 2 ? memmem(p, n, "\r\n", 2) : NULL;
}

/* Does the comma-separated list v[0..n) hold token (any case)? last: only
 * as its last element. */
static int list_has(const char *v, size_t n, const char *token, int last)
{
    size_t tl = strlen(token), i = 0;
    int found = 0;
    while (i <= n) { /* one element per pass */
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        found = e - s == tl && strncasecmp(v + s, token, tl) == 0 ? 1 : last ? 0 : found;
        i++;
    }
    return found;
}

static int parse_decimal(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 18)
        return LARK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return LARK_EINVAL;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* One header field line[0..len); 0 or LARK_EINVAL. */
static int header_field(struct http_resp *r, struct head_info *h, const char *line, size_t len,
                        int final)
{
    const char *colon = memchr(line, ':', len), *v, *end = line + len;
    size_t nlen;
    uint64_t clen;
    if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
        return LARK_EINVAL; /* no name, or obs-fold (RFC 9112 5.2) */
    nlen = (size_t)(colon - line);
    for (size_t i = 0; i < nlen; i++)
        if (line[i] == ' ' || line[i] == '\t' || (unsigned char)line[i] < 0x21)
            return LARK_EINVAL; /* no blank before the colon (RFC 9112 5.1) */
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
        if (parse_decimal(v, (size_t)(end - v), &clen) != 0 || (h->has_len && clen != h->len))
            return LARK_EINVAL;
        h->has_len = 1;
        h->len = clen;
    } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        h->has_te = 1;
        h->chunked = list_has(v, (size_t)(end - v), "chunked", 1);
    } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
        if (list_has(v, (size_t)(end - v), "close", 0))
            r->close = 1;
        else if (list_has(v, (size_t)(end - v), "keep-alive", 0))
            r->close = 0;
    }
    if (final && r->on_header)
        r->on_header(r->arg, line, nlen, v, (size_t)(end - v));
    return 0;
}

/* The status line line[0..len): "HTTP/1.x NNN[ reason]"; 0 or LARK_EINVAL. */
static int status_line(struct http_resp *r, const char *p, size_t len)
{
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (len > 12 && p[12] != ' '))
        return LARK_EINVAL;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->close = p[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    return 0;
}

/* Framing of the final head (RFC 9112 6.3). */
static void head_framing(struct http_resp *r, const struct head_info *h, unsigned *events)
{
    *events |= HTTP_RESP_EV_HEAD;
    r->remain = 0;
    if (r->status == 204 || r->status == 304 || (!h->has_te && h->has_len && h->len == 0)) {
        r->phase = HTTP_RESP_IDLE;
        *events |= HTTP_RESP_EV_DONE;
    } else if (h->has_te && h->chunked) {
        r->phase = HTTP_RESP_CHUNK_SIZE;
    } else if (!h->has_te && h->has_len) {
        r->phase = HTTP_RESP_LEN;
        r->remain = h->len;
    } else {
        r->phase = HTTP_RESP_EOF; /* no framing, or a coding we do not know: until close */
        r->close = 1;
    }
}

static long step_head(struct http_resp *r, const char *p, size_t n, unsigned *events)
{
    const char *end = n >= 4 ? memmem(p, n, "\r\n\r\n", 4) : NULL, *line, *eol;
    struct head_info h = {0};
    int interim, rc;

    if (!end)
        return n > HTTP_RESP_HEAD_MAX ? LARK_ETOOLARGE : 0;
    if ((size_t)(end - p) + 4 > HTTP_RESP_HEAD_MAX)
        return LARK_ETOOLARGE;
    eol = find_crlf(p, (size_t)(end - p) + 2);
    if ((rc = status_line(r, p, (size_t)(eol - p))) != 0)
        return rc;
    interim = r->status < 200 && !(r->status == 101 && (r->flags & HTTP_RESP_UPGRADE));
    for (line = eol + 2; line < end + 2; line = eol + 2) { /* each pass takes one line */
        eol = find_crlf(line, (size_t)(end + 2 - line));
        if ((rc = header_field(r, &h, line, (size_t)(eol - line), !interim)) != 0)
            return rc;
    }
    if (interim) { /* 100, 102, 103...: the real head follows */
        r->status = 0;
        r->close = 0;
    } else if (r->status == 101) {
        r->phase = HTTP_RESP_UPGRADED;
        *events |= HTTP_RESP_EV_HEAD;
    } else {
        head_framing(r, &h, events);
    }
    return (long)(end + 4 - p);
}

/* "1a2b[ ][;ext...]" CRLF (RFC 9112 7.1): extensions are ignored. */
static long step_chunk_size(struct http_resp *r, const char *p, size_t n)
{
    const char *eol =
        find_crlf(p, n < HTTP_RESP_CHUNK_LINE_MAX + 2 ? n : HTTP_RESP_CHUNK_LINE_MAX + 2);
    size_t len, i = 0;
    uint64_t size = 0;
    if (!eol)
        return n >= HTTP_RESP_CHUNK_LINE_MAX + 2 ? LARK_ETOOLARGE : 0;
    len = (size_t)(eol - p);
    for (; i < len && hex_digit((unsigned char)p[i]) >= 0; i++) {
        if (i == 16)
            return LARK_EINVAL; /* over 64 bits */
        size = size << 4 | (uint64_t)hex_digit((unsigned char)p[i]);
    }
    if (i == 0)
        return LARK_EINVAL;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i < len && p[i] != ';')
        return LARK_EINVAL;
    if (memchr(p + i, '\r', len - i) || memchr(p + i, '\n', len - i))
        return LARK_EINVAL; /* a bare CR or LF inside the extensions */
    r->remain = size;
    r->phase = size ? HTTP_RESP_CHUNK_DATA : HTTP_RESP_TRAILER;
    return (long)(len + 2);
}

static long step_trailer(struct http_resp *r, const char *p, size_t n, unsigned *events)
{
    const char *eol = find_crlf(p, n);
    if (!eol)
        return n > HTTP_RESP_HEAD_MAX ? LARK_ETOOLARGE : 0;
    if (eol == p) {
        r->phase = HTTP_RESP_IDLE;
        *events |= HTTP_RESP_EV_DONE;
    }
    return (long)(eol + 2 - p);
}

/* Body bytes of the three framings that carry them. */
static long step_body(struct http_resp *r, const char *p, size_t n, struct http_resp_out *out)
{
    size_t take = r->phase == HTTP_RESP_EOF || n < r->remain ? n : (size_t)r->remain;
    out->body = p;
    out->body_len = take;
    if (r->phase != HTTP_RESP_EOF && (r->remain -= take) == 0) {
        if (r->phase == HTTP_RESP_LEN) {
            r->phase = HTTP_RESP_IDLE;
            out->events |= HTTP_RESP_EV_DONE;
        } else {
            r->phase = HTTP_RESP_CHUNK_END;
        }
    }
    return (long)take;
}

long http_resp_step(struct http_resp *r, const char *p, size_t n, struct http_resp_out *out)
{
    out->body = NULL;
    out->body_len = 0;
    out->events = 0;
    if (n == 0)
        return 0;
    switch (r->phase) {
    case HTTP_RESP_HEAD: return step_head(r, p, n, &out->events);
    case HTTP_RESP_CHUNK_SIZE: return step_chunk_size(r, p, n);
    case HTTP_RESP_LEN:
    case HTTP_RESP_CHUNK_DATA:
    case HTTP_RESP_EOF: return step_body(r, p, n, out);
    case HTTP_RESP_CHUNK_END:
        if (n < 2)
            return p[0] == '\r' ? 0 : LARK_EINVAL;
        if (p[0] != '\r' || p[1] != '\n')
            return LARK_EINVAL;
        r->phase = HTTP_RESP_CHUNK_SIZE;
        return 2;
    case HTTP_RESP_TRAILER: return step_trailer(r, p, n, &out->events);
    case HTTP_RESP_IDLE:
    case HTTP_RESP_UPGRADED: break;
    }
    return LARK_EINVAL; /* bytes nobody asked for */
}

int http_resp_eof(struct http_resp *r)
{
    int done = r->phase == HTTP_RESP_EOF;
    r->phase = HTTP_RESP_IDLE;
    return done;
}
