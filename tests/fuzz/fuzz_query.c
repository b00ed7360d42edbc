/*
 * fuzz_query.c - libFuzzer target for what the router reads from the URI
 * and headers: query_parse, url_decode_segment, cookie_find, parse_u64.
 *
 * The whole input is used as a query string, a path segment, a Cookie
 * header and a number. Beyond memory safety it checks:
 *   - a parsed query has at most LIMIT_QUERY_PARAMS distinct keys with no
 *     NUL inside; re-encoding them and parsing again gives the same
 *     parameters (no escape is read two ways); a refused query is released;
 *   - a decoded segment has no NUL, is no longer than its input, and
 *     round-trips through percent-encoding;
 *   - a found cookie value lies inside the header, right after "name=";
 *   - parse_u64 agrees with a plain reference implementation.
 */
#include "core/err.h"
#include "core/limits.h"
#include "core/query.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Percent-encode every byte but unreserved ones (RFC 3986) onto out. */
static size_t encode(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

static void check_query(const char *qs, size_t size)
{
    struct query q, again;
    struct lark_err err;
    char *re;
    size_t o = 0;
    int rc = query_parse(qs, size, &q, &err);

    if (rc) {
        CHECK(rc == LARK_EINVAL && err.code == rc);
        CHECK(q.mem == NULL && q.n == 0);
        return;
    }
    CHECK(size <= LIMIT_URI_MAX);
    CHECK(q.n >= 0 && q.n <= LIMIT_QUERY_PARAMS);
    /* Each byte encodes to at most 3, plus '=' and '&' per parameter. */
    re = malloc(3 * size + 2 * LIMIT_QUERY_PARAMS + 1);
    for (int i = 0; i < q.n; i++) {
        CHECK(strlen(q.p[i].key) + strlen(q.p[i].val) <= size);
        CHECK(query_get(&q, q.p[i].key) == q.p[i].val); /* keys are unique */
        o += encode(q.p[i].key, re + o);
        re[o++] = '=';
        o += encode(q.p[i].val, re + o);
        re[o++] = '&';
    }
    /* The re-encoded form may pass LIMIT_URI_MAX; parse it only if not. */
    if (o <= LIMIT_URI_MAX) {
        CHECK(query_parse(re, o, &again, &err) == 0);
        CHECK(again.n == q.n);
        for (int i = 0; i < q.n; i++) {
            CHECK(strcmp(again.p[i].key, q.p[i].key) == 0);
            CHECK(strcmp(again.p[i].val, q.p[i].val) == 0);
        }
        query_release(&again);
    }
    free(re);
    query_release(&q);
    CHECK(q.mem == NULL && q.n == 0);
}

static void check_segment(const char *s, size_t size)
{
    char *out = malloc(size + 1);
    long n = url_decode_segment(s, size, out);

    if (n >= 0) {
        char *enc = malloc(3 * (size_t)n + 1);
        char *back = malloc(3 * (size_t)n + 1);
        size_t elen;
        CHECK((size_t)n <= size);
        CHECK(out[n] == '\0' && strlen(out) == (size_t)n);
        elen = encode(out, enc);
        CHECK(url_decode_segment(enc, elen, back) == n);
        CHECK(memcmp(back, out, (size_t)n) == 0);
        free(enc);
        free(back);
    } else {
        CHECK(n == -1);
    }
    free(out);
}

static void check_cookie(const char *header, const char *name)
{
    size_t len = 0, nlen = strlen(name);
    const char *v = cookie_find(header, name, &len);
    size_t hlen = strlen(header);

    if (!v)
        return;
    CHECK(v >= header + nlen + 1 && v + len <= header + hlen);
    CHECK(memchr(v, ';', len) == NULL);
    /* "name=" sits right before the value, or before its opening quote. */
    {
        const char *eq = v[-1] == '"' && v - 1 >= header + nlen + 1 && v[-2] == '=' ? v - 2 : v - 1;
        CHECK(*eq == '=' && memcmp(eq - nlen, name, nlen) == 0);
        const char *start = eq - nlen; /* where the name begins */
        CHECK(start == header || start[-1] == ' ' || start[-1] == '\t' || start[-1] == ';');
    }
}

/* Reference: digits only, no overflow, at most max. */
static int ref_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - (uint64_t)(*s - '0'))
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static void check_u64(const char *s, uint64_t max)
{
    uint64_t got = 1, want = 2;
    int rc = parse_u64(s, max, &got);
    int ref = ref_u64(s, max, &want);
    CHECK(rc == ref);
    if (rc == 0)
        CHECK(got == want && got <= max);
    else
        CHECK(got == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copies, so that ASan sees any read past the end. */
    char *raw = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    size_t slen;

    memcpy(raw, data, size);
    check_query(raw, size);
    check_segment(raw, size);

    memcpy(str, data, size);
    str[size] = '\0';
    slen = strlen(str);
    check_cookie(str, "lark_token");
    check_cookie(str, "a");
    if (slen > 0 && slen < size) {
        /* After a NUL: the rest names the cookie to look for. */
        const char *name = str + slen + 1;
        if (*name && !strchr(name, '=') && !strchr(name, ';'))
            check_cookie(str, name);
    }
    if (slen <= 40) {
        check_u64(str, UINT64_MAX);
        check_u64(str, INT64_MAX);
        check_u64(str, LIMIT_POLL_EVENTS_MAX);
        check_u64(str, 0);
    }
    free(raw);
    free(str);
    return 0;
}
