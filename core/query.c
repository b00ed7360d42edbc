/*
 * query.c - query strings, path segments, cookies, numbers.
 */
#include "core/query.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode [s, s+len) into out; plus: '+' means space. Length or -1. */
static long decode(const char *s, size_t len, char *out, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = hex_digit((unsigned char)s[i + 1]);
            lo = hex_digit((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0')
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

long url_decode_segment(const char *s, size_t len, char *out)
{
    return decode(s, len, out, 0);
}

int query_parse(const char *qs, size_t len, struct query *q, struct lark_err *err)
{
    size_t i = 0;
    char *w;

    memset(q, 0, sizeof(*q));
    if (len > LIMIT_URI_MAX)
        return lark_err_set(err, LARK_EINVAL, "the query string is too long");
    /* Decoding never lengthens; each piece needs two NULs at most. */
    q->mem = xmalloc(len + 2 * LIMIT_QUERY_PARAMS + 2);
    w = q->mem;
    while (i < len) {
        size_t end = i, eq;
        long klen, vlen;
        while (end < len && qs[end] != '&')
            end++;
        if (end == i) {
            i++;
            continue;
        }
        if (q->n == LIMIT_QUERY_PARAMS) {
            lark_err_set(err, LARK_EINVAL, "more than %d query parameters", LIMIT_QUERY_PARAMS);
            goto fail;
        }
        eq = i;
        while (eq < end && qs[eq] != '=')
            eq++;
        klen = decode(qs + i, eq - i, w, 1);
        if (klen < 0)
            goto bad;
        q->p[q->n].key = w;
        w += klen + 1;
        vlen = eq < end ? decode(qs + eq + 1, end - eq - 1, w, 1) : decode("", 0, w, 1);
        if (vlen < 0)
            goto bad;
        q->p[q->n].val = w;
        w += vlen + 1;
        if (query_get(q, q->p[q->n].key)) {
            lark_err_set(err, LARK_EINVAL, "query parameter '%.40s' is repeated", q->p[q->n].key);
            goto fail;
        }
        q->n++;
        i = end + 1;
    }
    return 0;
bad:
    lark_err_set(err, LARK_EINVAL, "malformed percent-escape in the query string");
fail:
    query_release(q);
    return LARK_EINVAL;
}

const char *query_get(const struct query *q, const char *key)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->p[i].key, key) == 0)
            return q->p[i].val;
    return NULL;
}

void query_release(struct query *q)
{
    free(q->mem);
    memset(q, 0, sizeof(*q));
}

const char *cookie_find(const char *header, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = header;

    while (p && *p) {
        const char *end;
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = (size_t)(end - v);
            /* Whitespace before the ';' first, so that a quoted value
             * followed by a space is still unquoted. */
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            /* RFC 6265 allows a quoted cookie value. */
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            *len = vlen;
            return v;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
